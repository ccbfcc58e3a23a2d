// K and V of one (image, head) quantised for the int8 attention kernels (attention_int8_kernels.h),
// once per run, and the layout of their pack (the packing itself: attention_int8_kernel.h):
//   K: the mean over keys is subtracted first ("K smoothing": it adds the same q.mean to every
//      score of a query, which softmax ignores, and takes the large shared component out of the
//      keys' range); then s8 codes with one scale per key, rows of d4 = ceil(d / 4) dwords
//      (zero padded), and comp = -128 * (sum of the key's codes), the correction for the u8
//      queries.
//   V: s8 codes with one scale per head column (absmax over keys), in groups of 4 keys:
//      [ceil(Tk / 4)][d][4], so one dword holds the 4 keys vpdpbusd reduces (missing keys 0).
#pragma once

#include <cstddef>
#include <cstdint>

namespace sdc::cpu::attn_int8 {

struct PackedHead {
  int8_t* k;       // [Tk][4 d4]
  int32_t* comp;   // [Tk]
  float* k_scale;  // [Tk]
  int8_t* v;       // [ceil(Tk / 4)][d][4]
  float* v_scale;  // [d]
  float* k_mean;   // [d] (kept for the tests)
};

// Bytes of one head's pack, and its parts carved from base (64-byte aligned).
size_t packed_head_bytes(int64_t Tk, int64_t d);
PackedHead packed_head_at(uint8_t* base, int64_t Tk, int64_t d);

}  // namespace sdc::cpu::attn_int8
