// Weights as the kernels want them (cast, reordered to oneDNN's blocked layouts), shared by every
// plan that needs the same tensor in the same format: a UNet planned for 512x512 and for 768x768
// holds one copy. A lookup matches by identity first (same bytes of the same owner, e.g. the same
// mapping: no extra reads) and then by content (a 64-bit hash of the bytes, so a file mapped
// again, after the first mapping was dropped, still finds its packed weights). Entries live as
// long as some plan holds them. Packed copies never point into the source, so the mapping can go.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/tensor.h"

namespace sdc::cpu {

// An aligned, owned block of packed weight bytes — or, for weights packed ahead of time (a
// compiled .gguf's packed section), bytes someone else owns, kept alive by `keepalive` (the
// file's mapping). Kernels only read weights, so mapped read-only pages serve as they are.
//
// When the last holder lets go, the memory goes back to the system at once: blocks of a MiB or
// more are their own anonymous mappings (malloc would keep them in its heap), and file-backed
// external bytes drop their resident pages (a model component released after its last use).
class PackedWeight {
 public:
  explicit PackedWeight(size_t bytes);
  PackedWeight(const void* external, size_t bytes, std::shared_ptr<const void> keepalive,
               bool file_backed = false);
  ~PackedWeight();
  PackedWeight(const PackedWeight&) = delete;
  PackedWeight& operator=(const PackedWeight&) = delete;
  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  bool external() const { return keepalive_ != nullptr; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0, mapped_ = 0;  // mapped_: length of an own mapping, 0 for malloc'd blocks
  bool file_backed_ = false;
  std::shared_ptr<const void> keepalive_;
};

class WeightCache {
 public:
  static WeightCache& global();

  using Maker = std::function<std::shared_ptr<PackedWeight>()>;
  // The packed form of `t` in `format`, made by `make` unless a live plan already holds it.
  // `hash`, when given, carries t's content hash from one lookup to the next (a caller asking
  // for several formats of one tensor reads its bytes for the hash once).
  std::shared_ptr<PackedWeight> get(const TensorRef& t, const std::string& format,
                                    const Maker& make, std::optional<uint64_t>* hash = nullptr);

  size_t live_entries();  // for tests

  // The hash used for content matching (parallel, ~memory speed).
  static uint64_t content_hash(const void* data, size_t nbytes);

 private:
  struct Entry {
    const void* data;
    std::weak_ptr<const void> owner;
    bool has_owner;
    size_t nbytes;
    uint64_t content_hash;
    std::string format;
    std::weak_ptr<PackedWeight> packed;
  };
  std::mutex mutex_;
  std::vector<Entry> entries_;
};

}  // namespace sdc::cpu
