// The int8 attention path of AttentionKernel (plans at Precision::INT8, CPUs with AVX512-VNNI or
// AVX-VNNI): K and V of every (image, head) are quantised once per run (attention_int8_pack.h),
// then work items (image, head, block of queries) are spread over the threads and run by the int8
// query-block kernel of the CPU's ISA (attention_int8_kernels.h). Non-causal attention only.
#pragma once

#include <cstddef>
#include <cstdint>

#include "backend/cpu/attention.h"

namespace sdc::cpu {
namespace attn_int8 {
struct Kernels;
}

class Int8Attention {
 public:
  // The kernels that take this attention on this CPU, or null: AVX512-VNNI where the own kernels
  // run AVX-512, AVX-VNNI where they run AVX2 (in both cases oneDNN allowed an int8 dot-product
  // ISA); no causal mask, heads up to 1024 wide.
  static const attn_int8::Kernels* kernels_for(const AttentionShape& s);
  static bool supported(const AttentionShape& s) { return kernels_for(s) != nullptr; }
  Int8Attention(const AttentionShape& s, int threads);
  size_t scratch_bytes() const {
    return pack_bytes_ * size_t(s_.N * s_.heads) + tile_bytes_ * size_t(threads_);
  }
  void run(const void* q, const void* k, const void* v, void* out, void* scratch) const;
  int64_t block_rows() const { return R_; }

 private:
  AttentionShape s_;
  const attn_int8::Kernels* k_;
  int threads_;
  int64_t d_, R_;
  size_t pack_bytes_, tile_bytes_;
};

}  // namespace sdc::cpu
