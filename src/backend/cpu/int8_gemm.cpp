// int8_gemm and quantise_rows (int8_gemm.h). The product's tile is RM rows x 64 channels: 4 x RM
// s32 accumulators of 16 lanes, per group of 4 input channels one dword of each row broadcast and
// 4 vectors of the weight panel loaded (the panel, K x 64 values, stays in L1/L2 while a thread
// walks its rows).
#include "backend/cpu/int8_gemm.h"

#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <utility>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/memory_plan.h"
#include "backend/cpu/prepacked_weights.h"
#include "backend/cpu/simd.h"

#define SDC_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c")))
#define SDC_VNNI_INLINE SDC_VNNI static inline __attribute__((always_inline))

namespace sdc::cpu {
namespace {

constexpr int kRows = 6;  // rows a tile: 24 accumulators, 4 weight vectors, 1 broadcast

// acc += u8 a x s8 b, 4 products a lane. Through asm: GCC 12's _mm512_dpbusd_epi32 builtin
// spills the accumulators around each instruction of an unrolled tile.
SDC_VNNI_INLINE __m512i dpbusd(__m512i acc, __m512i a, __m512i b) {
  asm("vpdpbusd %[b], %[a], %[acc]" : [acc] "+v"(acc) : [a] "v"(a), [b] "v"(b));
  return acc;
}

// The outputs' and addends' element size (f32 or bf16), inline: called per stored vector.
inline int64_t bytes_of(DType t) {
  return t == DType::BF16 ? 2 : 4;
}

SDC_VNNI_INLINE __m512 load_f32(const void* p, DType t) {
  return t == DType::BF16 ? simd::load(static_cast<const uint16_t*>(p), __mmask16(0xffff))
                          : _mm512_loadu_ps(p);
}

SDC_VNNI_INLINE void store_f32(void* p, DType t, __m512 v) {
  if (t == DType::BF16)
    simd::store(static_cast<uint16_t*>(p), v, __mmask16(0xffff));
  else
    _mm512_storeu_ps(p, v);
}

// acc[r][v] = sum over k of a[r K + k] x the s8 values of the 16 channels at columns[v]: each
// a panel's group-of-4 column vector (a dword of 4 input channels per channel), the next group
// 256 bytes on.
template <int RM>
SDC_VNNI_INLINE void accumulate(const uint8_t* a, int64_t K, const int8_t* const columns[4],
                                __m512i (&acc)[RM][4]) {
#pragma GCC unroll 8
  for (int r = 0; r < RM; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) acc[r][v] = _mm512_setzero_si512();
  for (int64_t k = 0; k < K / 4; ++k) {
    __m512i b[4];
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) b[v] = _mm512_loadu_si512(columns[v] + k * 256);
#pragma GCC unroll 8
    for (int r = 0; r < RM; ++r) {
      int32_t dw;
      std::memcpy(&dw, a + r * K + k * 4, 4);
      const __m512i x = _mm512_set1_epi32(dw);
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) acc[r][v] = dpbusd(acc[r][v], x, b[v]);
    }
  }
}

// Rows m0 .. m0 + RM of the output, channels c0 .. c0 + 64 (panel: their weight values).
template <int RM>
SDC_VNNI void tile(const uint8_t* q, const float* scale, const float* zero, int64_t m0, int64_t c0,
                   const int8_t* panel, const Int8GemmWeights& w, const Int8GemmOutput& out) {
  const int64_t N = w.N;
  __m512i acc[RM][4];
  const int8_t* columns[4] = {panel, panel + 64, panel + 128, panel + 192};
  accumulate<RM>(q + m0 * w.K, w.K, columns, acc);
  // y = acc (scale ws) - (scale zero) (sums ws) + bias, ws the channels' weight scales.
#pragma GCC unroll 4
  for (int v = 0; v < 4; ++v) {
    const int64_t c = c0 + v * 16;
    const __m512 ws = _mm512_loadu_ps(w.scales + c);
    const __m512 wsum = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_loadu_si512(w.sums + c)), ws);
    const __m512 bias = w.bias ? _mm512_loadu_ps(w.bias + c) : _mm512_setzero_ps();
#pragma GCC unroll 8
    for (int r = 0; r < RM; ++r) {
      const int64_t m = m0 + r;
      const __m512 rs = _mm512_set1_ps(scale[m]), rz = _mm512_set1_ps(scale[m] * zero[m]);
      __m512 y = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[r][v]), _mm512_mul_ps(rs, ws),
                                 _mm512_fnmadd_ps(rz, wsum, bias));
      const int64_t at = m * N + c;
      char* yp = static_cast<char*>(out.y) + at * bytes_of(out.type);
      if (out.residual == GemmResidual::Sum)
        y = _mm512_add_ps(y, load_f32(yp, out.type));
      else if (out.residual == GemmResidual::Add)
        y = _mm512_add_ps(
            y, load_f32(static_cast<const char*>(out.addend) + at * bytes_of(out.addend_type),
                        out.addend_type));
      store_f32(yp, out.type, y);
    }
  }
}

// One half (32 channels from c0, in the block's 64) of a GEGLU tile: RM rows x 2 vectors of the
// value product and 2 of the gate product, out = value GELU(gate).
template <int RM>
SDC_VNNI void geglu_tile(const uint8_t* q, const float* scale, const float* zero, int64_t m0,
                         int64_t c0, const int8_t* value_panel, const int8_t* gate_panel,
                         const Int8GemmWeights& value, const Int8GemmWeights& gate,
                         const Int8GemmOutput& out) {
  const int64_t N = value.N, at = (c0 % 64) * 4;
  __m512i acc[RM][4];  // [r][0, 1]: value, [r][2, 3]: gate
  const int8_t* columns[4] = {value_panel + at, value_panel + at + 64, gate_panel + at,
                              gate_panel + at + 64};
  accumulate<RM>(q + m0 * value.K, value.K, columns, acc);
#pragma GCC unroll 2
  for (int v = 0; v < 2; ++v) {
    const int64_t c = c0 + v * 16;
    const __m512 vs = _mm512_loadu_ps(value.scales + c), gs = _mm512_loadu_ps(gate.scales + c);
    const __m512 vsum = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_loadu_si512(value.sums + c)), vs);
    const __m512 gsum = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_loadu_si512(gate.sums + c)), gs);
    const __m512 vb = value.bias ? _mm512_loadu_ps(value.bias + c) : _mm512_setzero_ps();
    const __m512 gb = gate.bias ? _mm512_loadu_ps(gate.bias + c) : _mm512_setzero_ps();
#pragma GCC unroll 8
    for (int r = 0; r < RM; ++r) {
      const int64_t m = m0 + r;
      const __m512 rs = _mm512_set1_ps(scale[m]), rz = _mm512_set1_ps(scale[m] * zero[m]);
      const __m512 y = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[r][v]), _mm512_mul_ps(rs, vs),
                                       _mm512_fnmadd_ps(rz, vsum, vb));
      const __m512 g = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[r][v + 2]), _mm512_mul_ps(rs, gs),
                                       _mm512_fnmadd_ps(rz, gsum, gb));
      store_f32(static_cast<char*>(out.y) + (m * N + c) * bytes_of(out.type), out.type,
                _mm512_mul_ps(y, simd::gelu_fast(g)));
    }
  }
}

using TileFn = void (*)(const uint8_t*, const float*, const float*, int64_t, int64_t, const int8_t*,
                        const Int8GemmWeights&, const Int8GemmOutput&);
using GegluTileFn = void (*)(const uint8_t*, const float*, const float*, int64_t, int64_t,
                             const int8_t*, const int8_t*, const Int8GemmWeights&,
                             const Int8GemmWeights&, const Int8GemmOutput&);
template <int... R>
constexpr std::array<TileFn, sizeof...(R)> tile_table(std::integer_sequence<int, R...>) {
  return {&tile<R + 1>...};
}
template <int... R>
constexpr std::array<GegluTileFn, sizeof...(R)> geglu_table(std::integer_sequence<int, R...>) {
  return {&geglu_tile<R + 1>...};
}

// Bytes of one block's panel: the layout pads K to a multiple of 64 (its blocks of 16 groups of
// 4) with zeros.
size_t panel_bytes(int64_t K) {
  return size_t((K + 63) / 64 * 64) * 64;
}

// Rows [m0, m1) of channel block nb.
void rows_of_block(const uint8_t* q, const float* scale, const float* zero, int64_t m0, int64_t m1,
                   int64_t nb, const Int8GemmWeights& w, const Int8GemmOutput& out) {
  static constexpr auto tiles = tile_table(std::make_integer_sequence<int, kRows>());
  const int8_t* panel = w.values + size_t(nb) * panel_bytes(w.K);
  int64_t m = m0;
  for (; m + kRows <= m1; m += kRows) tile<kRows>(q, scale, zero, m, nb * 64, panel, w, out);
  if (m < m1) tiles[size_t(m1 - m - 1)](q, scale, zero, m, nb * 64, panel, w, out);
}

// The same for GEGLU, both halves of the block.
void geglu_rows_of_block(const uint8_t* q, const float* scale, const float* zero, int64_t m0,
                         int64_t m1, int64_t nb, const Int8GemmWeights& value,
                         const Int8GemmWeights& gate, const Int8GemmOutput& out) {
  static constexpr auto tiles = geglu_table(std::make_integer_sequence<int, kRows>());
  const int8_t* vp = value.values + size_t(nb) * panel_bytes(value.K);
  const int8_t* gp = gate.values + size_t(nb) * panel_bytes(gate.K);
  for (int64_t c0 = nb * 64; c0 < nb * 64 + 64; c0 += 32) {
    int64_t m = m0;
    for (; m + kRows <= m1; m += kRows)
      geglu_tile<kRows>(q, scale, zero, m, c0, vp, gp, value, gate, out);
    if (m < m1) tiles[size_t(m1 - m - 1)](q, scale, zero, m, c0, vp, gp, value, gate, out);
  }
}

// Runs block(m0, m1, nb) over M rows and `blocks` channel blocks on the team's threads.
template <class Block>
void for_blocks(int64_t M, int64_t blocks, Block block) {
  const int64_t tiles = (M + kRows - 1) / kRows;
#pragma omp parallel
  {
    const int64_t t = omp_get_thread_num(), T = omp_get_num_threads();
    if (tiles >= 2 * T) {
      // Each thread its share of the rows, block after block: its codes stay in its L2 and each
      // block's panel in L1 while it walks them.
      const int64_t m0 = std::min(M, tiles * t / T * kRows),
                    m1 = std::min(M, tiles * (t + 1) / T * kRows);
      for (int64_t nb = 0; nb < blocks; ++nb) block(m0, m1, nb);
    } else {
      // Few rows (the 8x8 level, a small image): split the channel blocks.
      for (int64_t nb = blocks * t / T; nb < blocks * (t + 1) / T; ++nb) block(0, M, nb);
    }
  }
}

template <class T>
SDC_VNNI void quantise_row_t(const T* x, int64_t K, uint8_t* q, float& scale, float& zero) {
  __m512 lo = _mm512_setzero_ps(), hi = _mm512_setzero_ps();  // the range holds 0
  for (int64_t k = 0; k < K; k += 16) {
    const __m512 v = simd::load(x + k, simd::tail_mask(K - k));  // masked lanes read as 0
    lo = _mm512_min_ps(lo, v);
    hi = _mm512_max_ps(hi, v);
  }
  const float l = _mm512_reduce_min_ps(lo), h = _mm512_reduce_max_ps(hi);
  scale = h > l ? (h - l) / 255.f : 1.f;
  zero = std::clamp(std::nearbyint(-l / scale), 0.f, 255.f);
  const __m512 inv = _mm512_set1_ps(1.f / scale), zp = _mm512_set1_ps(zero);
  const __m512 floor = _mm512_setzero_ps(), ceil = _mm512_set1_ps(255.f);
  for (int64_t k = 0; k < K; k += 16) {
    const __mmask16 m = simd::tail_mask(K - k);
    // round(x / scale) + zero, clamped: roundscale rounds to nearest even like std::nearbyint.
    const __m512 r = _mm512_roundscale_ps(_mm512_mul_ps(simd::load(x + k, m), inv),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 c = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(r, zp), floor), ceil);
    _mm_mask_storeu_epi8(q + k, m, _mm512_cvtusepi32_epi8(_mm512_cvtps_epu32(c)));
  }
}

}  // namespace

bool int8_gemm_fits(int64_t K, int64_t N) {
  static const bool vnni = __builtin_cpu_supports("avx512vnni");
  return vnni && use_avx512_kernels() && isa_has_int8_dot() && K > 0 && K % 16 == 0 && N > 0 &&
         N % 64 == 0;
}

void quantise_row(const float* x, int64_t K, uint8_t* q, float& scale, float& zero) {
  quantise_row_t(x, K, q, scale, zero);
}

size_t row_codes_bytes(int64_t M, int64_t K) {
  return arena_aligned(size_t(M * K)) + size_t(2 * M) * sizeof(float);
}

RowCodes row_codes_in(void* buffer, int64_t M, int64_t K) {
  RowCodes c;
  c.q = static_cast<uint8_t*>(buffer);
  c.scale = reinterpret_cast<float*>(c.q + arena_aligned(size_t(M * K)));
  c.zero = c.scale + M;
  return c;
}

void quantise_rows(const void* x, DType type, int64_t M, int64_t K, const RowCodes& c) {
#pragma omp parallel for schedule(static) if (M * K > 32768)
  for (int64_t m = 0; m < M; ++m) {
    if (type == DType::BF16)
      quantise_row_t(static_cast<const uint16_t*>(x) + m * K, K, c.q + m * K, c.scale[m],
                     c.zero[m]);
    else
      quantise_row_t(static_cast<const float*>(x) + m * K, K, c.q + m * K, c.scale[m], c.zero[m]);
  }
}

void int8_gemm(const RowCodes& c, int64_t M, const Int8GemmWeights& w, const Int8GemmOutput& out) {
  for_blocks(M, w.N / 64, [&](int64_t m0, int64_t m1, int64_t nb) {
    rows_of_block(c.q, c.scale, c.zero, m0, m1, nb, w, out);
  });
}

void int8_gemm_geglu(const RowCodes& c, int64_t M, const Int8GemmWeights& value,
                     const Int8GemmWeights& gate, const Int8GemmOutput& out) {
  for_blocks(M, value.N / 64, [&](int64_t m0, int64_t m1, int64_t nb) {
    geglu_rows_of_block(c.q, c.scale, c.zero, m0, m1, nb, value, gate, out);
  });
}

}  // namespace sdc::cpu
