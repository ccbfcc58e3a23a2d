// The registry of primitives that run oneDNN's reference code (see reference_impls.h).
#include "backend/cpu/reference_impls.h"

#include <mutex>
#include <vector>

#include "backend/cpu/prepacked_weights.h"  // effective_isa_name

namespace sdc::cpu {
namespace {

struct ReferenceUse {
  std::string what;
  std::string impl;  // oneDNN's implementation name, e.g. "ref_int8:any"
};

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

size_t reference_use_count() {
  const std::lock_guard<std::mutex> lock(g_mutex);
  return g_uses.size();
}

std::string reference_uses_notice(size_t from) {
  const std::lock_guard<std::mutex> lock(g_mutex);
  if (from >= g_uses.size()) return "";
  const ReferenceUse& first = g_uses[from];
  return "warning: " + std::to_string(g_uses.size() - from) +
         " planned step(s) run oneDNN's reference code on this CPU (" + effective_isa_name() +
         "), which is slow — the first: " + first.what + " (" + first.impl + ")";
}

}  // namespace sdc::cpu
