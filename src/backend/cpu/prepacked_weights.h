// Weights packed ahead of time: a compiled .gguf can carry each UNet/VAE/text-encoder weight
// already in the blocked layout oneDNN's kernels use on one ISA (`sdc convert --target`), so that
// planning at load maps them instead of reading, casting and reordering gigabytes.
//
// Entries are keyed by the weight's graph name (plus a row range for split weights) and by the
// exact packed format the planner asks for (dtype, shape and oneDNN's memory descriptor). A plan
// whose primitive wants another layout (another ISA, precision or shape) simply finds nothing and
// packs as usual. An entry also applies only to a source tensor backed by the same owner (the
// same file mapping) it was offered with: two models with the same weight names in one server,
// or a model whose weights a LoRA changed at load, never pick up each other's packed bytes.
//
// The same registry records, on request, every weight the planner packs: that is how
// `sdc convert --target` collects what to store.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "backend/cpu/weight_cache.h"

namespace sdc::cpu {

class PrepackedWeights {
 public:
  static PrepackedWeights& global();

  // Offers `bytes` at `data` (backed by `owner`, the owner the source tensors share, e.g. the
  // file mapping) as the packed form of weight `key` in `format`. `file_backed`: the bytes lie in
  // a read-only file mapping (their pages are dropped when the last plan using them goes).
  void add(const std::string& key, const std::string& format, const void* data, size_t bytes,
           const std::shared_ptr<const void>& owner, bool file_backed = false);
  // The packed weight offered for (key, format) with the same owner as `source`, or null.
  std::shared_ptr<PackedWeight> find(const std::string& key, const std::string& format,
                                     const TensorRef& source);
  void clear();
  size_t size();
  size_t hits();  // finds that returned an entry since the last clear()
  // Finds since the last clear() that returned nothing although the same owner offered the key
  // in another format: a file compiled for other plans (precision, size, another sdc version).
  size_t misses();

  // While set, the planner reports every weight it packs or finds (key, format, bytes).
  using Recorder = std::function<void(const std::string& key, const std::string& format,
                                      const std::shared_ptr<PackedWeight>& packed)>;
  void set_recorder(Recorder recorder);
  void record(const std::string& key, const std::string& format,
              const std::shared_ptr<PackedWeight>& packed);

 private:
  std::mutex mutex_;
  // Holds the owner weakly: the registry never keeps a model's mapping alive; an entry whose
  // owner is gone is dropped when next looked at.
  struct Entry {
    const void* data;
    size_t bytes;
    std::weak_ptr<const void> owner;
    bool file_backed;
  };
  std::multimap<std::pair<std::string, std::string>, Entry> entries_;
  size_t hits_ = 0, misses_ = 0;
  Recorder recorder_;
};

// The ISA oneDNN dispatches to in this process ("avx512_core_bf16", "avx2", …): what packed
// layouts depend on.
std::string effective_isa_name();
// Caps oneDNN's ISA (before any primitive is created): "native" (no cap), "avx512_core_amx",
// "avx512_core_bf16", "avx512_core_vnni", "avx512_core", "avx2_vnni", "avx2". The same name again
// is a no-op. sdc::UsageError for anything else, for a second, different name, or when oneDNN
// refuses (primitives already created).
void limit_isa(const std::string& name);

// Whether oneDNN's int8 kernels here have a VNNI dot product (AVX512-VNNI or AVX-VNNI, under any
// ISA cap). Without one they fall back to 16-bit pair sums that saturate, which oneDNN avoids by
// halving the weights — a lost bit that the W8A8 steps would not account for.
bool isa_has_int8_dot();

}  // namespace sdc::cpu
