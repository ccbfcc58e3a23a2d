// The f32 query-block kernel of FlashAttention: one (image, head, block of queries) against all
// keys, queries in vector lanes (S^T and O^T tiles), keys walked in L1-sized blocks with an
// online softmax. Used by attention_avx512.cpp, which packs K and V and spreads the blocks over
// threads.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sdc::cpu::attn_f32 {

// Queries per block (64, or 32 for heads wider than 64 so the tiles stay in L1).
int64_t block_queries(int64_t d);
// f32 scratch of one thread for heads of d.
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

}  // namespace sdc::cpu::attn_f32
