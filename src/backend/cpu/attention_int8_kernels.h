// The int8 query-block kernel and K/V pack of one ISA, as Int8Attention (attention_int8.h) picks
// them. Queries sit in vector lanes as in the f32 kernel (attention_lanes_avx512.h); per block of
// keys:
//   S = Q K^T with vpdpbusd (u8 query codes x s8 key codes, s32 sums started at the keys' comp),
//   then S = s32 * key scale in f32 (the query's scale is folded into the softmax factor a);
//   online softmax in f32, probabilities as u8 codes relative to the block's own max
//   (attention_int8_codes.h);
//   O += P V with vpdpbusd (u8 probability codes x s8 value codes), s32 per block, added in f32
//   with the factor that takes the block's max to the running one.
// The 1/255 of the codes cancels against the sum of the codes; the value scales apply at the end.
// Non-causal only. Two builds of one algorithm (attention_int8_kernel.h): 16 lanes on AVX512-VNNI
// (attention_int8_avx512.cpp) and 8 lanes on AVX-VNNI, the VEX-encoded 256-bit dot product of
// Intel desktops from Alder Lake on (attention_int8_avxvnni.cpp).
#pragma once

#include <cstddef>
#include <cstdint>

#include "backend/cpu/attention_int8_pack.h"

namespace sdc::cpu::attn_int8 {

// Keys per block: the online softmax's step and the probability codes' scale (the tests'
// reference walks the same blocks). A multiple of 4 (key groups) and of every QK tile's keys;
// 96 was 5 % faster than 48 and as fast as 144 with SD1.5's heads (16 lanes).
constexpr int64_t key_block(int64_t /*d*/) {
  return 96;
}

struct QueryBlock {
  const void* q;       // first query row of the block, row stride C (this head's columns)
  bool q_bf16;         // q storage bf16 (else f32)
  void* out;           // first output row, row stride C
  bool out_bf16;       // out storage bf16 (else f32)
  int64_t C, d, rows;  // rows <= block_queries(d)
  PackedHead kv;
  int64_t Tk;
  float scale;    // of the scores (1 / sqrt(d))
  uint8_t* tile;  // tile_bytes(d), 64-byte aligned
};

struct Kernels {
  const char* isa;  // "avx512_vnni" or "avx_vnni"
  // Queries per block, and the scratch bytes of one thread, for heads of d.
  int64_t (*block_queries)(int64_t d);
  size_t (*tile_bytes)(int64_t d);
  // K and V of one (image, head): k, v its first rows, row stride C, f32 or bf16.
  void (*pack_head)(const void* k, const void* v, bool bf16, int64_t C, int64_t Tk, int64_t d,
                    const PackedHead& dst);
  void (*run_block)(const QueryBlock& b);
};

// Each needs its CPU feature (AVX512-VNNI, AVX-VNNI); Int8Attention checks.
extern const Kernels kAvx512Vnni;
extern const Kernels kAvxVnni;

}  // namespace sdc::cpu::attn_int8
