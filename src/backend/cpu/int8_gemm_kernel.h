// int8_gemm's product, GEGLU and row quantisation (the rules: int8_gemm.h) written once for any
// vector width. Included only by int8_gemm_avx512.cpp (16 lanes, AVX512-VNNI) and
// int8_gemm_avxvnni.cpp (8 lanes, AVX-VNNI), which supply a lanes policy and define
// SDC_GEMM_TARGET, their target attribute, before including it; everything lives in an anonymous
// namespace, so each includer compiles its own copies for its own target.
//
// A product tile is RM rows x kVecs vectors of kLanes channels: kVecs x RM s32 accumulators, per
// group of 4 input channels one dword of each row broadcast and kVecs vectors of the weight panel
// loaded (the panel of a block of 64 channels, K x 64 values, stays in L1/L2 while a thread walks
// its rows). A GEGLU tile holds kVecs / 2 vectors of the value product and as many of the gate's.
//
// A lanes policy P derives from vnni::Lanes512 or Lanes256 (VI, VF, kLanes, izero, iset1, iload,
// dpbusd(acc, u8 a, s8 b), cvt (s32 -> f32), fload, fzero, fset1, add, mul, fma(a, b, c) = a b +
// c, fnma(a, b, c) = c - a b) and has:
//   kVecs, kRows (RM at most), gelu_fast(VF (&x)[N]) (in place)
//   load_act(p) / store_act(p, v)   kLanes f32 (float*) or bf16 (uint16_t*) values
//   quantise_row(x, K, q, scale, zero)          int8_gemm.h's rule, for f32 and bf16 rows
#pragma once

#ifndef SDC_GEMM_TARGET
#error "int8_gemm_kernel.h: define SDC_GEMM_TARGET (the including file's target) first"
#endif

#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <utility>

#include "backend/cpu/int8_gemm.h"

namespace sdc::cpu::int8_gemm_kernel {
namespace {

// The panel's bytes between groups of 4 input channels: 64 channels of one dword each.
constexpr int64_t kGroupBytes = 256;

// acc[r][v] = sum over k of a[r K + k] x the s8 values of the kLanes channels at columns[v]: each
// a panel's group-of-4 column vector (a dword of 4 input channels per channel), the next group
// kGroupBytes on.
template <class P, int RM>
SDC_GEMM_TARGET inline __attribute__((always_inline)) void accumulate(
    const uint8_t* a, int64_t K, const int8_t* const (&columns)[P::kVecs],
    typename P::VI (&acc)[RM][P::kVecs]) {
  constexpr int NV = P::kVecs;
#pragma GCC unroll 8
  for (int r = 0; r < RM; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[r][v] = P::izero();
  for (int64_t k = 0; k < K / 4; ++k) {
    typename P::VI b[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) b[v] = P::iload(columns[v] + k * kGroupBytes);
#pragma GCC unroll 8
    for (int r = 0; r < RM; ++r) {
      int32_t dw;
      std::memcpy(&dw, a + r * K + k * 4, 4);
      const typename P::VI x = P::iset1(dw);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = P::dpbusd(acc[r][v], x, b[v]);
    }
  }
}

// The tile epilogues' per-row factors: scale[m] and scale[m] zero[m].
template <int RM>
struct RowFactors {
  float scale[RM], scaled_zero[RM];
  RowFactors(const float* s, const float* z, int64_t m0) {
    for (int r = 0; r < RM; ++r) {
      scale[r] = s[m0 + r];
      scaled_zero[r] = s[m0 + r] * z[m0 + r];
    }
  }
};

// The epilogues take everything they read as arguments and the output's element type and
// residual as template parameters: their vector stores may alias anything, so a field of w or out
// read inside the loops would be read again after every store, and a branch on the output's type
// per store kept the compiler from interleaving the tile's independent outputs (a third of a
// GEGLU tile's time went to its epilogue).
template <class P, int RM, GemmResidual R, class T, class A>
SDC_GEMM_TARGET inline __attribute__((always_inline)) void finish_tile(
    typename P::VI (&acc)[RM][P::kVecs], const RowFactors<RM>& f, const float* scales,
    const int32_t* sums, const float* bias, int64_t c0, int64_t N, T* y, const A* addend) {
  constexpr int NV = P::kVecs, L = P::kLanes;
  // y = acc (scale ws) - (scale zero) (sums ws) + bias, ws the channels' weight scales.
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    const int64_t c = c0 + v * L;
    const typename P::VF ws = P::fload(scales + c);
    const typename P::VF wsum = P::mul(P::cvt(P::iload(sums + c)), ws);
    const typename P::VF b = bias ? P::fload(bias + c) : P::fzero();
#pragma GCC unroll 8
    for (int r = 0; r < RM; ++r) {
      const typename P::VF rs = P::fset1(f.scale[r]), rz = P::fset1(f.scaled_zero[r]);
      typename P::VF o = P::fma(P::cvt(acc[r][v]), P::mul(rs, ws), P::fnma(rz, wsum, b));
      const int64_t at = r * N + v * L;
      if constexpr (R == GemmResidual::Sum)
        o = P::add(o, P::load_act(y + at));
      else if constexpr (R == GemmResidual::Add)
        o = P::add(o, P::load_act(addend + at));
      P::store_act(y + at, o);
    }
  }
}

// finish_tile for out's element types (at: the tile's first output element).
template <class P, int RM, GemmResidual R, class T>
SDC_GEMM_TARGET inline __attribute__((always_inline)) void finish_into(
    typename P::VI (&acc)[RM][P::kVecs], const RowFactors<RM>& f, const Int8GemmWeights& w,
    int64_t c0, const Int8GemmOutput& out, int64_t at, T* y) {
  if constexpr (R != GemmResidual::Add)
    finish_tile<P, RM, R>(acc, f, w.scales, w.sums, w.bias, c0, w.N, y,
                          static_cast<const float*>(nullptr));
  else if (out.addend_type == DType::BF16)
    finish_tile<P, RM, R>(acc, f, w.scales, w.sums, w.bias, c0, w.N, y,
                          static_cast<const uint16_t*>(out.addend) + at);
  else
    finish_tile<P, RM, R>(acc, f, w.scales, w.sums, w.bias, c0, w.N, y,
                          static_cast<const float*>(out.addend) + at);
}
template <class P, int RM, GemmResidual R>
SDC_GEMM_TARGET inline __attribute__((always_inline)) void finish_typed(
    typename P::VI (&acc)[RM][P::kVecs], const RowFactors<RM>& f, const Int8GemmWeights& w,
    int64_t c0, const Int8GemmOutput& out, int64_t at) {
  if (out.type == DType::BF16)
    finish_into<P, RM, R>(acc, f, w, c0, out, at, static_cast<uint16_t*>(out.y) + at);
  else
    finish_into<P, RM, R>(acc, f, w, c0, out, at, static_cast<float*>(out.y) + at);
}

// Rows m0 .. m0 + RM of the output, channels c0 .. c0 + kVecs kLanes (panel: their block's
// weight values).
template <class P, int RM>
SDC_GEMM_TARGET void tile(const uint8_t* q, const float* scale, const float* zero, int64_t m0,
                          int64_t c0, const int8_t* panel, const Int8GemmWeights& w,
                          const Int8GemmOutput& out) {
  constexpr int NV = P::kVecs, L = P::kLanes;
  const int64_t N = w.N, at = m0 * N + c0;
  typename P::VI acc[RM][NV];
  const int8_t* columns[NV];
  for (int v = 0; v < NV; ++v) columns[v] = panel + (c0 % 64 + v * L) * 4;
  accumulate<P, RM>(q + m0 * w.K, w.K, columns, acc);
  const RowFactors<RM> f(scale, zero, m0);
  switch (out.residual) {
    case GemmResidual::None:
      finish_typed<P, RM, GemmResidual::None>(acc, f, w, c0, out, at);
      break;
    case GemmResidual::Sum:
      finish_typed<P, RM, GemmResidual::Sum>(acc, f, w, c0, out, at);
      break;
    case GemmResidual::Add:
      finish_typed<P, RM, GemmResidual::Add>(acc, f, w, c0, out, at);
      break;
  }
}

// A GEGLU tile's epilogue (as finish_tile): out = value GELU(gate).
template <class P, int RM, class T>
SDC_GEMM_TARGET inline __attribute__((always_inline)) void finish_geglu_tile(
    typename P::VI (&acc)[RM][P::kVecs], const RowFactors<RM>& f, const Int8GemmWeights& value,
    const Int8GemmWeights& gate, int64_t c0, int64_t N, T* y) {
  constexpr int NV = P::kVecs, H = NV / 2, L = P::kLanes;
  const float *const value_scales = value.scales, *const gate_scales = gate.scales;
  const int32_t *const value_sums = value.sums, *const gate_sums = gate.sums;
  const float *const value_bias = value.bias, *const gate_bias = gate.bias;
#pragma GCC unroll 2
  for (int v = 0; v < H; ++v) {
    const int64_t c = c0 + v * L;
    const typename P::VF vs = P::fload(value_scales + c), gs = P::fload(gate_scales + c);
    const typename P::VF vsum = P::mul(P::cvt(P::iload(value_sums + c)), vs);
    const typename P::VF gsum = P::mul(P::cvt(P::iload(gate_sums + c)), gs);
    const typename P::VF vb = value_bias ? P::fload(value_bias + c) : P::fzero();
    const typename P::VF gb = gate_bias ? P::fload(gate_bias + c) : P::fzero();
    typename P::VF x[RM], g[RM];
#pragma GCC unroll 8
    for (int r = 0; r < RM; ++r) {
      const typename P::VF rs = P::fset1(f.scale[r]), rz = P::fset1(f.scaled_zero[r]);
      x[r] = P::fma(P::cvt(acc[r][v]), P::mul(rs, vs), P::fnma(rz, vsum, vb));
      g[r] = P::fma(P::cvt(acc[r][H + v]), P::mul(rs, gs), P::fnma(rz, gsum, gb));
    }
    P::gelu_fast(g);
#pragma GCC unroll 8
    for (int r = 0; r < RM; ++r) P::store_act(y + r * N + v * L, P::mul(x[r], g[r]));
  }
}

// kVecs / 2 vectors of channels from c0 (in their block of 64) of a GEGLU tile: RM rows of the
// value product and of the gate product.
template <class P, int RM>
SDC_GEMM_TARGET void geglu_tile(const uint8_t* q, const float* scale, const float* zero, int64_t m0,
                                int64_t c0, const int8_t* value_panel, const int8_t* gate_panel,
                                const Int8GemmWeights& value, const Int8GemmWeights& gate,
                                const Int8GemmOutput& out) {
  constexpr int NV = P::kVecs, H = NV / 2, L = P::kLanes;
  const int64_t N = value.N, at = (c0 % 64) * 4;
  typename P::VI acc[RM][NV];  // [r][0, H): value, [r][H, NV): gate
  const int8_t* columns[NV];
  for (int v = 0; v < H; ++v) {
    columns[v] = value_panel + at + v * L * 4;
    columns[H + v] = gate_panel + at + v * L * 4;
  }
  accumulate<P, RM>(q + m0 * value.K, value.K, columns, acc);
  const RowFactors<RM> f(scale, zero, m0);
  const int64_t first = m0 * N + c0;
  if (out.type == DType::BF16)
    finish_geglu_tile<P, RM>(acc, f, value, gate, c0, N, static_cast<uint16_t*>(out.y) + first);
  else
    finish_geglu_tile<P, RM>(acc, f, value, gate, c0, N, static_cast<float*>(out.y) + first);
}

using TileFn = void (*)(const uint8_t*, const float*, const float*, int64_t, int64_t, const int8_t*,
                        const Int8GemmWeights&, const Int8GemmOutput&);
using GegluTileFn = void (*)(const uint8_t*, const float*, const float*, int64_t, int64_t,
                             const int8_t*, const int8_t*, const Int8GemmWeights&,
                             const Int8GemmWeights&, const Int8GemmOutput&);
template <class P, int... R>
constexpr std::array<TileFn, sizeof...(R)> tile_table(std::integer_sequence<int, R...>) {
  return {&tile<P, R + 1>...};
}
template <class P, int... R>
constexpr std::array<GegluTileFn, sizeof...(R)> geglu_table(std::integer_sequence<int, R...>) {
  return {&geglu_tile<P, R + 1>...};
}

// Bytes of one block's panel: the layout pads K to a multiple of 64 (its blocks of 16 groups of
// 4) with zeros.
inline size_t panel_bytes(int64_t K) {
  return size_t((K + 63) / 64 * 64) * 64;
}

// Rows [m0, m1) of channel block nb.
template <class P>
void rows_of_block(const uint8_t* q, const float* scale, const float* zero, int64_t m0, int64_t m1,
                   int64_t nb, const Int8GemmWeights& w, const Int8GemmOutput& out) {
  constexpr int RM = P::kRows;
  static constexpr auto tiles = tile_table<P>(std::make_integer_sequence<int, RM>());
  const int8_t* panel = w.values + size_t(nb) * panel_bytes(w.K);
  for (int64_t c0 = nb * 64; c0 < nb * 64 + 64; c0 += P::kVecs * P::kLanes) {
    int64_t m = m0;
    for (; m + RM <= m1; m += RM) tile<P, RM>(q, scale, zero, m, c0, panel, w, out);
    if (m < m1) tiles[size_t(m1 - m - 1)](q, scale, zero, m, c0, panel, w, out);
  }
}

// The same for GEGLU, both halves of the block.
template <class P>
void geglu_rows_of_block(const uint8_t* q, const float* scale, const float* zero, int64_t m0,
                         int64_t m1, int64_t nb, const Int8GemmWeights& value,
                         const Int8GemmWeights& gate, const Int8GemmOutput& out) {
  constexpr int RM = P::kRows;
  static constexpr auto tiles = geglu_table<P>(std::make_integer_sequence<int, RM>());
  const int8_t* vp = value.values + size_t(nb) * panel_bytes(value.K);
  const int8_t* gp = gate.values + size_t(nb) * panel_bytes(gate.K);
  for (int64_t c0 = nb * 64; c0 < nb * 64 + 64; c0 += P::kVecs / 2 * P::kLanes) {
    int64_t m = m0;
    for (; m + RM <= m1; m += RM)
      geglu_tile<P, RM>(q, scale, zero, m, c0, vp, gp, value, gate, out);
    if (m < m1) tiles[size_t(m1 - m - 1)](q, scale, zero, m, c0, vp, gp, value, gate, out);
  }
}

// Runs block(m0, m1, nb) over M rows of `row_bytes` codes and `blocks` channel blocks of
// `block_bytes` packed weights on the team's threads.
template <int kRows, class Block>
void for_blocks(int64_t M, int64_t row_bytes, int64_t blocks, int64_t block_bytes, Block block) {
  constexpr int64_t kCacheShare = 512 << 10, kRowChunk = 64 << 10;
  const int64_t tiles = (M + kRows - 1) / kRows;
#pragma omp parallel
  {
    const int64_t t = omp_get_thread_num(), T = omp_get_num_threads();
    if (tiles >= 2 * T) {
      // Each thread its share of the rows, block after block: its codes stay in its L2 and each
      // block's panel in L1 while it walks them.
      const int64_t m0 = std::min(M, tiles * t / T * kRows),
                    m1 = std::min(M, tiles * (t + 1) / T * kRows);
      if ((m1 - m0) * row_bytes > kCacheShare && blocks * block_bytes <= kCacheShare) {
        // Codes too many for the L2 (the UNet's K = 1280 linear, the VAE's 1x1 shortcuts at
        // 256-512 pixels) would come from memory once per block: where every block's panel fits
        // instead, each chunk of rows goes through all the blocks.
        const int64_t step = std::max<int64_t>(kRows, kRowChunk / row_bytes / kRows * kRows);
        for (int64_t m = m0; m < m1; m += step)
          for (int64_t nb = 0; nb < blocks; ++nb) block(m, std::min(m + step, m1), nb);
      } else {
        for (int64_t nb = 0; nb < blocks; ++nb) block(m0, m1, nb);
      }
    } else {
      // Few rows (the 8x8 level, a small image): split the channel blocks.
      for (int64_t nb = blocks * t / T; nb < blocks * (t + 1) / T; ++nb) block(0, M, nb);
    }
  }
}

template <class P>
void quantise_rows(const void* x, DType type, int64_t M, int64_t K, const RowCodes& c) {
#pragma omp parallel for schedule(static) if (M * K > 32768)
  for (int64_t m = 0; m < M; ++m) {
    if (type == DType::BF16)
      P::quantise_row(static_cast<const uint16_t*>(x) + m * K, K, c.q + m * K, c.scale[m],
                      c.zero[m]);
    else
      P::quantise_row(static_cast<const float*>(x) + m * K, K, c.q + m * K, c.scale[m], c.zero[m]);
  }
}

template <class P>
void quantise_row_f32(const float* x, int64_t K, uint8_t* q, float& scale, float& zero) {
  P::quantise_row(x, K, q, scale, zero);
}

template <class P>
void gemm(const RowCodes& c, int64_t M, const Int8GemmWeights& w, const Int8GemmOutput& out) {
  for_blocks<P::kRows>(M, w.K, w.N / 64, int64_t(panel_bytes(w.K)),
                       [&](int64_t m0, int64_t m1, int64_t nb) {
                         rows_of_block<P>(c.q, c.scale, c.zero, m0, m1, nb, w, out);
                       });
}

template <class P>
void gemm_geglu(const RowCodes& c, int64_t M, const Int8GemmWeights& value,
                const Int8GemmWeights& gate, const Int8GemmOutput& out) {
  const int64_t both = int64_t(panel_bytes(value.K) + panel_bytes(gate.K));
  for_blocks<P::kRows>(M, value.K, value.N / 64, both, [&](int64_t m0, int64_t m1, int64_t nb) {
    geglu_rows_of_block<P>(c.q, c.scale, c.zero, m0, m1, nb, value, gate, out);
  });
}

}  // namespace
}  // namespace sdc::cpu::int8_gemm_kernel
