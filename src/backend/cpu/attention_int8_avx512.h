// The int8 query-block kernel (AVX512-VNNI): one (image, head, block of queries) against all keys
// of a head packed by attention_int8_pack.h. Queries sit in vector lanes as in the f32 kernel
// (attention_lanes_avx512.h); per block of keys:
//   S = Q K^T with vpdpbusd (u8 query codes x s8 key codes, s32 sums started at the keys' comp),
//   then S = s32 * key scale in f32 (the query's scale is folded into the softmax factor a);
//   online softmax in f32, probabilities as u8 codes relative to the block's own max
//   (attention_int8_codes.h);
//   O += P V with vpdpbusd (u8 probability codes x s8 value codes), s32 per block, added in f32
//   with the factor that takes the block's max to the running one.
// The 1/255 of the codes cancels against the sum of the codes; the value scales apply at the end.
// Non-causal only.
#pragma once

#include <cstddef>
#include <cstdint>

#include "backend/cpu/attention_int8_pack.h"

namespace sdc::cpu::attn_int8 {

// Queries per block (64, or 32 for heads wider than 96 so the tiles stay in L1).
int64_t block_queries(int64_t d);
// Keys per block (the online softmax's step and the probability codes' scale: the tests'
// reference walks the same blocks).
int64_t key_block(int64_t d);
// Scratch bytes of one thread for heads of d.
size_t tile_bytes(int64_t d);

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

// Needs AVX512-VNNI.
void run_block(const QueryBlock& b);

}  // namespace sdc::cpu::attn_int8
