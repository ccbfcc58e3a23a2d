// The int8 attention path of AttentionKernel (plans at Precision::INT8, CPUs with AVX512-VNNI):
// K and V of every (image, head) are quantised once per run (attention_int8_pack.h), then work
// items (image, head, block of queries) are spread over the threads and run by the int8
// query-block kernel (attention_int8_avx512.h). Non-causal attention only.
#pragma once

#include <cstddef>
#include <cstdint>

#include "backend/cpu/attention.h"

namespace sdc::cpu {

class Int8Attention {
 public:
  // Whether the path takes this attention on this CPU: AVX-512 with VNNI (and oneDNN allowed an
  // int8 dot-product ISA), no causal mask, heads up to 1024 wide.
  static bool supported(const AttentionShape& s);
  Int8Attention(const AttentionShape& s, int threads);
  size_t scratch_bytes() const {
    return pack_bytes_ * size_t(s_.N * s_.heads) + tile_bytes_ * size_t(threads_);
  }
  void run(const void* q, const void* k, const void* v, void* out, void* scratch) const;
  int64_t block_rows() const { return R_; }

 private:
  AttentionShape s_;
  int threads_;
  int64_t d_, R_;
  size_t pack_bytes_, tile_bytes_;
};

}  // namespace sdc::cpu
