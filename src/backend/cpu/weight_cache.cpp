// WeightCache lookups: a linear scan over live entries (a few thousand at most), pruning dead ones.
#include "backend/cpu/weight_cache.h"

#include <cstdlib>
#include <cstring>
#include <new>

namespace sdc::cpu {

PackedWeight::PackedWeight(size_t bytes) : bytes_(bytes) {
  const size_t rounded = (std::max<size_t>(bytes, 1) + 63) / 64 * 64;
  data_ = std::aligned_alloc(64, rounded);
  if (!data_) throw std::bad_alloc();
}

PackedWeight::~PackedWeight() {
  std::free(data_);
}

namespace {
// Content hash for weights that no owner identifies (FNV-1a over 8-byte words).
uint64_t content_hash(const TensorRef& t) {
  const auto* p = static_cast<const uint8_t*>(t.data);
  uint64_t h = 1469598103934665603ull;
  size_t i = 0;
  for (; i + 8 <= t.nbytes; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    h = (h ^ w) * 1099511628211ull;
  }
  for (; i < t.nbytes; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h ^ t.nbytes;
}

bool same_owner(const std::weak_ptr<const void>& a, const std::shared_ptr<const void>& b) {
  return !a.owner_before(b) && !b.owner_before(a);
}
}  // namespace

WeightCache& WeightCache::global() {
  static WeightCache cache;
  return cache;
}

std::shared_ptr<PackedWeight> WeightCache::get(const TensorRef& t, const std::string& format,
                                               const Maker& make) {
  const bool has_owner = t.owner != nullptr;
  const uint64_t hash = has_owner ? 0 : content_hash(t);
  std::lock_guard<std::mutex> lock(mutex_);
  for (size_t i = 0; i < entries_.size();) {
    Entry& e = entries_[i];
    std::shared_ptr<PackedWeight> packed = e.packed.lock();
    if (!packed || (e.has_owner && e.owner.expired())) {
      entries_[i] = std::move(entries_.back());
      entries_.pop_back();
      continue;
    }
    if (e.data == t.data && e.has_owner == has_owner && e.format == format &&
        (has_owner ? same_owner(e.owner, t.owner) : e.content_hash == hash))
      return packed;
    ++i;
  }
  std::shared_ptr<PackedWeight> packed = make();
  Entry e{t.data, t.owner, has_owner, hash, format, packed};
  entries_.push_back(std::move(e));
  return packed;
}

size_t WeightCache::live_entries() {
  std::lock_guard<std::mutex> lock(mutex_);
  size_t n = 0;
  for (const Entry& e : entries_)
    if (!e.packed.expired()) ++n;
  return n;
}

}  // namespace sdc::cpu
