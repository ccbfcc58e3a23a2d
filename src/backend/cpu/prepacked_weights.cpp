// The registry of ahead-of-time packed weights and oneDNN's ISA naming (see prepacked_weights.h).
#include "backend/cpu/prepacked_weights.h"

#include <mutex>
#include <string>

#include <oneapi/dnnl/dnnl.hpp>

#include "backend/cpu/cpu_features.h"
#include "common/error.h"

namespace sdc::cpu {

PrepackedWeights& PrepackedWeights::global() {
  static PrepackedWeights registry;
  return registry;
}

void PrepackedWeights::add(const std::string& key, const std::string& format, const void* data,
                           size_t bytes, const std::shared_ptr<const void>& owner,
                           bool file_backed) {
  if (!owner) throw Error("prepacked weights", key, "an owner backing the bytes", "none");
  std::lock_guard<std::mutex> lock(mutex_);
  entries_.emplace(std::make_pair(key, format), Entry{data, bytes, owner, file_backed});
}

namespace {
bool same_owner(const std::weak_ptr<const void>& a, const std::shared_ptr<const void>& b) {
  return b && !a.owner_before(b) && !b.owner_before(a);
}
}  // namespace

std::shared_ptr<PackedWeight> PrepackedWeights::find(const std::string& key,
                                                     const std::string& format,
                                                     const TensorRef& source) {
  std::lock_guard<std::mutex> lock(mutex_);
  // One pass over the key's entries (ordered by (key, format), so they start at (key, "")): the
  // requested format of this owner is a hit; only other formats of this owner, a miss.
  bool other_format = false;
  for (auto it = entries_.lower_bound({key, std::string()});
       it != entries_.end() && it->first.first == key;) {
    std::shared_ptr<const void> owner = it->second.owner.lock();
    if (!owner) {
      it = entries_.erase(it);
      continue;
    }
    if (same_owner(it->second.owner, source.owner)) {
      if (it->first.second != format) {
        other_format = true;
      } else {
        ++hits_;
        return std::make_shared<PackedWeight>(it->second.data, it->second.bytes, std::move(owner),
                                              it->second.file_backed);
      }
    }
    ++it;
  }
  if (other_format) ++misses_;
  return nullptr;
}

void PrepackedWeights::clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  entries_.clear();
  hits_ = misses_ = 0;
}

size_t PrepackedWeights::size() {
  std::lock_guard<std::mutex> lock(mutex_);
  return entries_.size();
}

size_t PrepackedWeights::misses() {
  std::lock_guard<std::mutex> lock(mutex_);
  return misses_;
}

size_t PrepackedWeights::hits() {
  std::lock_guard<std::mutex> lock(mutex_);
  return hits_;
}

void PrepackedWeights::set_recorder(Recorder recorder) {
  std::lock_guard<std::mutex> lock(mutex_);
  recorder_ = std::move(recorder);
}

void PrepackedWeights::record(const std::string& key, const std::string& format,
                              const std::shared_ptr<PackedWeight>& packed) {
  Recorder r;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    r = recorder_;
  }
  if (r) r(key, format, packed);
}

namespace {
struct IsaName {
  const char* name;
  dnnl::cpu_isa isa;
};
constexpr IsaName kIsas[] = {
    {"avx512_core_amx", dnnl::cpu_isa::avx512_core_amx},
    {"avx512_core_bf16", dnnl::cpu_isa::avx512_core_bf16},
    {"avx512_core_vnni", dnnl::cpu_isa::avx512_core_vnni},
    {"avx512_core", dnnl::cpu_isa::avx512_core},
    {"avx2_vnni", dnnl::cpu_isa::avx2_vnni},
    {"avx2", dnnl::cpu_isa::avx2},
    {"avx", dnnl::cpu_isa::avx},
    {"sse41", dnnl::cpu_isa::sse41},
};
}  // namespace

std::string effective_isa_name() {
  const dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();
  for (const IsaName& n : kIsas)
    if (n.isa == isa) return n.name;
  return "isa" + std::to_string(int(isa));
}

bool isa_has_int8_dot() {
  const dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();
  return isa == dnnl::cpu_isa::avx2_vnni || isa == dnnl::cpu_isa::avx512_core_vnni ||
         isa == dnnl::cpu_isa::avx512_core_bf16 || isa == dnnl::cpu_isa::avx512_core_amx;
}

void limit_isa(const std::string& name) {
  if (name == "native") return;
  // oneDNN takes its cap once per process; `sdc convert` checks the name before any work and
  // packs under it later, so the same name again is a no-op, not a second (refused) setting.
  static std::mutex mutex;
  static std::string applied;
  const std::lock_guard lock(mutex);
  if (name == applied) return;
  for (const IsaName& n : kIsas) {
    if (name != n.name) continue;
    if (!applied.empty() || dnnl::set_max_cpu_isa(n.isa) != dnnl::status::success)
      throw UsageError("", "--target", "an ISA set before any oneDNN primitive exists", name);
    cap_cpu_features(name);  // the own kernels and precision choices follow, as under the variable
    applied = name;
    return;
  }
  std::string valid = "native";
  for (const IsaName& n : kIsas) valid += std::string(", ") + n.name;
  throw UsageError("", "--target", "one of " + valid, "\"" + name + "\"");
}

}  // namespace sdc::cpu
