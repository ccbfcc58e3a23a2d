// The query-block kernels of FlashAttention with queries in vector lanes: one (image, head, block
// of queries) against all keys (S^T and O^T tiles), keys walked in L1-sized blocks with an online
// softmax. f32 (FMA) and bf16 (vdpbf16ps on pairs of head columns for QK^T and of keys for PV,
// f32 scores, softmax and accumulators). Used by attention_avx512.cpp, which packs K and V and
// spreads the blocks over threads.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sdc::cpu::attn_lanes {

// Queries per block (64, or 32 for heads wider than 64 so the tiles stay in L1).
int64_t block_queries(int64_t d);
// f32 scratch of one thread for heads of d (enough for either kernel).
size_t tile_floats(int64_t d);

struct QueryBlock {
  const float* q;  // first query row of the block, row stride C (this head's columns)
  float* out;      // first output row, row stride C; or null with out_bf16 set
  uint16_t* out_bf16;
  int64_t C, d, rows, q0;  // rows <= block_queries(d); q0 = index of the first query
  const float* kp;         // K of this head, [Tk][d]
  const float* vp;         // V of this head, [Tk][d]
  int64_t Tk;
  bool causal;
  float scale;
  float* tile;  // tile_floats(d)
};

void run_block(const QueryBlock& b);

// bf16 inputs: the same block with Q, K and V as bf16 (d2 = ceil(d / 2), odd heads zero-padded).
struct QueryBlockBf16 {
  const uint16_t* q;  // first query row of the block, row stride C
  float* out;         // first output row, row stride C; or null with out_bf16 set
  uint16_t* out_bf16;
  int64_t C, d, rows, q0;
  const uint16_t* kp;  // K of this head, [Tk][2 d2]
  const uint32_t*
      vp;      // V of this head in key pairs, [ceil(Tk / 2)][vs] words (V[2i][e], V[2i+1][e])
  int64_t vs;  // words per key pair in vp (>= d)
  int64_t Tk;
  bool causal;
  float scale;
  float* tile;  // tile_floats(d)
};

// Needs AVX512-BF16.
void run_block_bf16(const QueryBlockBf16& b);

}  // namespace sdc::cpu::attn_lanes
