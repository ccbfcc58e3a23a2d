// FlashAttention's f32 query-block kernel for CPUs without AVX-512 (attention_lanes_avx512.h has
// the scheme): queries in the 8 lanes of AVX2 vectors, keys in L1-sized blocks with an online
// softmax, f32 FMA throughout. Before it, f32 attention there ran as oneDNN matmul tiles with
// reductions of one head's 40 columns (~43 % of the f32 peak on a Zen 3).
#pragma once

#include <cstddef>
#include <cstdint>

#include "backend/cpu/attention_lanes_avx512.h"  // attn_lanes::QueryBlock

namespace sdc::cpu::attn_lanes_avx2 {

// Queries per block (16: two vectors of 8).
int64_t block_queries(int64_t d);
// f32 scratch of one thread for heads of d.
size_t tile_floats(int64_t d);

// The block b (rows <= block_queries(b.d)); needs AVX2 + FMA.
void run_block(const attn_lanes::QueryBlock& b);

}  // namespace sdc::cpu::attn_lanes_avx2
