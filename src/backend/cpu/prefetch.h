// prefetch_rows: asks for every cache line of a set of rows at once. Attention's query blocks read
// rows that lie a whole activation row apart and were written long before (the projections):
// loaded one after the other they miss the caches in turn; requested together, the misses overlap.
#pragma once

#include <xmmintrin.h>  // _mm_prefetch (SSE: every x86-64 CPU)

#include <cstddef>
#include <cstdint>

namespace sdc::cpu {

// Rows [0, rows) of `row_bytes` bytes each, the first at `first`, `stride_bytes` apart, into L1.
inline void prefetch_rows(const void* first, int64_t rows, size_t stride_bytes, size_t row_bytes) {
  const char* row = static_cast<const char*>(first);
  for (int64_t r = 0; r < rows; ++r, row += stride_bytes) {
    for (size_t at = 0; at < row_bytes; at += 64) _mm_prefetch(row + at, _MM_HINT_T0);
    _mm_prefetch(row + row_bytes - 1, _MM_HINT_T0);  // a row that ends in a line of its own
  }
}

}  // namespace sdc::cpu
