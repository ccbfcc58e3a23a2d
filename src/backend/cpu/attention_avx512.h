// The AVX-512 attention path (and f32 on AVX2-only CPUs): K and V of every (image, head) are
// packed once per run into micro-kernel layouts (bf16 pairs for vdpbf16ps, or f32 rows for FMA),
// then work items (image, head, block of R query rows) are spread over the threads.
//   bf16: the R x Tk scores with register-tiled micro-kernels, a softmax that writes the
//   un-normalised probabilities as bf16, P V into a small f32 tile, 1/sum scaling on the way out.
//   lanes (f32, and bf16 for heads of up to 64): queries in vector lanes and keys in L1-sized
//   blocks with an online softmax (attention_lanes_avx512.h; f32 without AVX-512:
//   attention_lanes_avx2.h).
#pragma once

#include <cstddef>
#include <cstdint>

#include "backend/cpu/attention.h"

namespace sdc::cpu {

class FlashAttention {
 public:
  // Whether this CPU can take the path (AVX-512; bf16 storage needs AVX512-BF16; f32 heads of up
  // to 128 also on AVX2 + FMA).
  static bool supported(const AttentionShape& s);
  FlashAttention(const AttentionShape& s, int threads);
  size_t scratch_bytes() const { return pack_bytes_ + tile_bytes_ * size_t(threads_); }
  void run(const void* q, const void* k, const void* v, void* out, void* scratch) const;
  int64_t block_rows() const { return R_; }

 private:
  // K and V of (image, head) nh into their layouts at dst.
  void pack(int64_t nh, const void* k, const void* v, uint8_t* dst) const;
  // Work item (image, head) nh, queries from q0 (R_ or fewer), with tile = this thread's scratch.
  // Through the queries-in-lanes kernels (f32, or bf16 when lanes_).
  void block_lanes(int64_t nh, int64_t q0, const void* q, const uint8_t* packed, void* out,
                   uint8_t* tile) const;
  void block_bf16(int64_t nh, int64_t q0, const void* q, const uint8_t* packed, void* out,
                  uint8_t* tile) const;

  AttentionShape s_;
  int threads_;
  bool lanes_ = true;  // queries in lanes: always for f32, for some shapes for bf16
  bool avx2_ = false;  // f32 through the AVX2 lanes kernel (no AVX-512 here)
  int64_t d_, d2_, tk16_, tk2_, dv16_, R_, ss_ = 0, ps_ = 0;
  size_t kp_bytes_, vp_bytes_, pack_bytes_, tile_bytes_;
};

}  // namespace sdc::cpu
