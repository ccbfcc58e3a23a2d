// The AVX-512 attention path: K and V of every (image, head) are packed once per run into
// micro-kernel layouts (bf16 pairs for vdpbf16ps, or f32 rows for FMA), then each work item
// (image, head, block of R query rows) computes its R x Tk scores with register-tiled
// micro-kernels, a softmax that writes the un-normalised probabilities straight in the matmul
// type, P V into a small f32 tile, and the 1/sum row scaling on the way out.
#pragma once

#include <cstddef>
#include <cstdint>

#include "backend/cpu/attention.h"

namespace sdc::cpu {

class FlashAttention {
 public:
  // Whether this CPU can take the path (AVX-512; bf16 storage needs AVX512-BF16).
  static bool supported(const AttentionShape& s);
  FlashAttention(const AttentionShape& s, int threads);
  size_t scratch_bytes() const { return pack_bytes_ + tile_bytes_ * size_t(threads_); }
  void run(const void* q, const void* k, const void* v, void* out, void* scratch) const;
  int64_t block_rows() const { return R_; }

 private:
  AttentionShape s_;
  int threads_;
  int64_t d_, d2_, tk16_, tk2_, dv16_, R_;
  size_t kp_bytes_, vp_bytes_, pack_bytes_, tile_bytes_;
};

}  // namespace sdc::cpu
