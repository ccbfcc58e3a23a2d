// The registry of primitives that run oneDNN's reference code (see reference_impls.h).
#include "backend/cpu/reference_impls.h"

#include <mutex>

#include "backend/cpu/prepacked_weights.h"  // effective_isa_name

namespace sdc::cpu {
namespace {

std::mutex g_mutex;
std::vector<ReferenceUse> g_uses;

}  // namespace

bool is_reference_impl(std::string_view impl_info) {
  return impl_info.starts_with("ref");
}

void note_primitive(const std::string& what, std::string_view impl_info) {
  if (!is_reference_impl(impl_info)) return;
  const std::lock_guard<std::mutex> lock(g_mutex);
  g_uses.push_back({what, std::string(impl_info)});
}

std::vector<ReferenceUse> reference_uses() {
  const std::lock_guard<std::mutex> lock(g_mutex);
  return g_uses;
}

size_t reference_use_count() {
  const std::lock_guard<std::mutex> lock(g_mutex);
  return g_uses.size();
}

std::string reference_uses_notice() {
  const std::vector<ReferenceUse> uses = reference_uses();
  if (uses.empty()) return "";
  return "warning: " + std::to_string(uses.size()) +
         " planned step(s) run oneDNN's reference code on this CPU (" + effective_isa_name() +
         "), which is slow — the first: " + uses.front().what + " (" + uses.front().impl + ")";
}

}  // namespace sdc::cpu
