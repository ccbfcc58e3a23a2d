// WeightCache lookups: a linear scan over live entries (a few thousand at most), pruning dead ones.
#include "backend/cpu/weight_cache.h"

#include <stdexcept>

#include <omp.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "common/huge_pages.h"

namespace sdc::cpu {

PackedWeight::PackedWeight(size_t bytes) : bytes_(bytes) {
  constexpr size_t kOwnMapping = size_t(1) << 20;
  if (bytes >= kOwnMapping) {
    data_ = map_anonymous(bytes, PROT_READ | PROT_WRITE, 0, &mapped_);
    if (data_ == MAP_FAILED) throw std::bad_alloc();
    return;
  }
  const size_t rounded = (std::max<size_t>(bytes, 1) + 63) / 64 * 64;
  data_ = std::aligned_alloc(64, rounded);
  if (!data_) throw std::bad_alloc();
}

PackedWeight::PackedWeight(const void* external, size_t bytes,
                           std::shared_ptr<const void> keepalive, bool file_backed)
    : data_(const_cast<void*>(external)),
      bytes_(bytes),
      file_backed_(file_backed),
      keepalive_(std::move(keepalive)) {
  if (!keepalive_) throw std::invalid_argument("PackedWeight: external bytes need an owner");
}

PackedWeight::~PackedWeight() {
  if (keepalive_) {
    // Nobody reads these bytes through this holder any more; another holder of the same bytes
    // reads them again from the page cache.
    if (file_backed_) release_file_pages(data_, bytes_);
  } else if (mapped_) {
    munmap(data_, mapped_);
  } else {
    std::free(data_);
  }
}

namespace {
bool same_owner(const std::weak_ptr<const void>& a, const std::shared_ptr<const void>& b) {
  return !a.owner_before(b) && !b.owner_before(a);
}

uint64_t mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  return h ^ (h >> 33);
}

// Four independent multiply-xor lanes over 32-byte blocks (fast enough to be memory-bound).
uint64_t hash_block(const uint8_t* p, size_t n, uint64_t seed) {
  uint64_t h[4] = {seed, seed ^ 0x9e3779b97f4a7c15ull, seed ^ 0xbf58476d1ce4e5b9ull,
                   seed ^ 0x94d049bb133111ebull};
  size_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int k = 0; k < 4; ++k) {
      uint64_t w;
      std::memcpy(&w, p + i + 8 * size_t(k), 8);
      h[k] = (h[k] ^ w) * 0x100000001b3ull + (h[k] >> 29);
    }
  uint64_t tail = 0;
  for (; i < n; ++i) tail = (tail << 8 | p[i]) * 31;
  return mix(h[0] ^ mix(h[1]) ^ mix(mix(h[2])) ^ mix(mix(mix(h[3]))) ^ tail ^ n);
}
}  // namespace

uint64_t WeightCache::content_hash(const void* data, size_t nbytes) {
  const auto* p = static_cast<const uint8_t*>(data);
  constexpr size_t kChunk = size_t(1) << 20;
  const int64_t chunks = int64_t((nbytes + kChunk - 1) / kChunk);
  std::vector<uint64_t> parts(size_t(std::max<int64_t>(chunks, 1)), 0);
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (int64_t c = 0; c < chunks; ++c) {
    const size_t b = size_t(c) * kChunk;
    parts[size_t(c)] = hash_block(p + b, std::min(kChunk, nbytes - b), uint64_t(c) + 1);
  }
  uint64_t h = nbytes;
  for (uint64_t x : parts) h = mix(h ^ x) + 0x9e3779b97f4a7c15ull;
  return h;
}

WeightCache& WeightCache::global() {
  static WeightCache cache;
  return cache;
}

std::shared_ptr<PackedWeight> WeightCache::get(const TensorRef& t, const std::string& format,
                                               const Maker& make, std::optional<uint64_t>* hash) {
  std::lock_guard<std::mutex> lock(mutex_);
  // Drop entries no plan holds any more.
  for (size_t i = 0; i < entries_.size();) {
    if (entries_[i].packed.expired()) {
      entries_[i] = std::move(entries_.back());
      entries_.pop_back();
    } else {
      ++i;
    }
  }
  const bool has_owner = t.owner != nullptr;
  // 1. The same bytes of the same (live) owner.
  bool candidates = false;
  for (const Entry& e : entries_) {
    if (e.format != format || e.nbytes != t.nbytes) continue;
    if (has_owner && e.has_owner && e.data == t.data && same_owner(e.owner, t.owner) &&
        !e.owner.expired())
      if (auto packed = e.packed.lock()) return packed;
    candidates = true;
  }
  // 2. The same content (another mapping of the same file, a copy).
  std::optional<uint64_t> own;
  if (!hash) hash = &own;
  if (!*hash) *hash = content_hash(t.data, t.nbytes);
  if (candidates)
    for (const Entry& e : entries_)
      if (e.format == format && e.nbytes == t.nbytes && e.content_hash == **hash)
        if (auto packed = e.packed.lock()) {
          t.release_pages();  // read for the hash only
          return packed;
        }
  std::shared_ptr<PackedWeight> packed = make();
  entries_.push_back(Entry{t.data, t.owner, has_owner, t.nbytes, **hash, format, packed});
  // The packed copy is what runs: the mapped source need not stay resident beside it (at 512x512
  // bf16 that is the difference between ~2 and ~4 GB). A later plan re-reads it from the file.
  t.release_pages();
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
