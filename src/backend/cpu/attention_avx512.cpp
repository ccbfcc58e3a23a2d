// FlashAttention: packing and work split for all paths; the row-tiled bf16 path's register-tiled
// QK^T and PV micro-kernels (vdpbf16ps) and softmax with deferred normalisation. The query-block
// kernels with queries in lanes (f32, and bf16 for heads of up to 64 over many keys) are in
// attention_lanes_avx512.cpp.
//
// Layouts per (image, head), d = head size, pairs of d for bf16 (d2 = ceil(d / 2)):
//   bf16: Kp[tk16 / 64][d2][64][2]  Vp[tk2][dv16][2]  (tk16 = Tk rounded to 16, tk2 =
//         ceil(Tk / 2), dv16 = d rounded to 16; padding is zero; the last key block of Kp is
//         tk16 mod 64 wide when that is not 0)
//   bf16 in lanes: Kp[Tk][2 d2]  Vp as above
//   f32:  Kp[Tk][d]  Vp[Tk][d]
// bf16, per thread: Qp[R][2 d2] (the query block of this head), S[R][ss] f32 scores, P[R][ps]
// bf16 probabilities, O[R][dv16] f32, inv[R].
#include "backend/cpu/attention_avx512.h"

#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <utility>

#include "backend/cpu/attention_lanes_avx2.h"
#include "backend/cpu/attention_lanes_avx512.h"
#include "backend/cpu/cpu_features.h"
#include "backend/cpu/memory_plan.h"
#include "backend/cpu/simd.h"

#define SDC_AVX512BF16 \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma,f16c")))

namespace sdc::cpu {
namespace {

// Index of (key j, reduction row e) in the block-major K pack: blocks of 64 keys (the last
// one tk16 - j0 wide), each [rows][width].
inline int64_t kp_index(int64_t j, int64_t e, int64_t rows, int64_t tk16) {
  const int64_t j0 = j / 64 * 64, w = std::min<int64_t>(64, tk16 - j0);
  return j0 * rows + e * w + (j - j0);
}
constexpr int kMaxNv = 10;  // 16-column vectors per PV tile (register budget); wider heads are
                            // done in column chunks

// ---- bf16 micro-kernels ---------------------------------------------------------------------

// The tiles' fixed-count loops carry `#pragma GCC unroll`: without it GCC keeps the __m512
// accumulator arrays on the stack around the reduction loop.
template <int RM, int NB>
SDC_AVX512BF16 void qk_tile_bf16(const uint16_t* qp, int64_t qs, const uint16_t* kp, int64_t ks,
                                 int64_t d2, float* s, int64_t ss) {
  __m512 acc[RM][NB];
#pragma GCC unroll 32
  for (int r = 0; r < RM; ++r)
#pragma GCC unroll 32
    for (int v = 0; v < NB; ++v) acc[r][v] = _mm512_setzero_ps();
  for (int64_t kk = 0; kk < d2; ++kk) {
    __m512bh b[NB];
#pragma GCC unroll 32
    for (int v = 0; v < NB; ++v) b[v] = (__m512bh)_mm512_loadu_si512(kp + kk * ks + v * 32);
#pragma GCC unroll 32
    for (int r = 0; r < RM; ++r) {
      int32_t pair;
      std::memcpy(&pair, qp + r * qs + 2 * kk, 4);
      const __m512bh a = (__m512bh)_mm512_set1_epi32(pair);
#pragma GCC unroll 32
      for (int v = 0; v < NB; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], a, b[v]);
    }
  }
#pragma GCC unroll 32
  for (int r = 0; r < RM; ++r)
#pragma GCC unroll 32
    for (int v = 0; v < NB; ++v) _mm512_storeu_ps(s + r * ss + v * 16, acc[r][v]);
}

// Scores of `rows` query rows against all keys. Key tiles outside, rows inside: a 64-key tile of
// Kp stays in L1 while every row of the block uses it.
template <int NB>
void qk_cols_bf16(const uint16_t* qp, int64_t qs, const uint16_t* kp, int64_t ks, int64_t d2,
                  float* s, int64_t ss, int64_t rows) {
  int64_t r = 0;
  for (; r + 6 <= rows; r += 6) qk_tile_bf16<6, NB>(qp + r * qs, qs, kp, ks, d2, s + r * ss, ss);
  for (; r + 2 <= rows; r += 2) qk_tile_bf16<2, NB>(qp + r * qs, qs, kp, ks, d2, s + r * ss, ss);
  for (; r < rows; ++r) qk_tile_bf16<1, NB>(qp + r * qs, qs, kp, ks, d2, s + r * ss, ss);
}

// Kp is block-major (key blocks of 64, the last one narrower): a block is contiguous, so its
// rows do not alias in L1 the way rows of a whole-Tk stride (a multiple of 4 KiB) do.
void qk_block_bf16(const uint16_t* qp, int64_t qs, const uint16_t* kp, int64_t tk16, int64_t d2,
                   float* s, int64_t ss, int64_t rows) {
  for (int64_t j = 0; j < tk16; j += 64) {
    const int64_t w = std::min<int64_t>(64, tk16 - j);
    const uint16_t* kb = kp + j * d2 * 2;
    switch (w / 16) {
      case 4:
        qk_cols_bf16<4>(qp, qs, kb, w * 2, d2, s + j, ss, rows);
        break;
      case 3:
        qk_cols_bf16<3>(qp, qs, kb, w * 2, d2, s + j, ss, rows);
        break;
      case 2:
        qk_cols_bf16<2>(qp, qs, kb, w * 2, d2, s + j, ss, rows);
        break;
      default:
        qk_cols_bf16<1>(qp, qs, kb, w * 2, d2, s + j, ss, rows);
        break;
    }
  }
}

// P V tile: RM rows x NV column vectors; with HALF the last vector is 8 columns wide (256-bit
// operations: a head of 40 = 2.5 vectors wastes nothing).
template <int RM, int NV, bool HALF>
SDC_AVX512BF16 void pv_tile_bf16(const uint16_t* p, int64_t ps, const uint16_t* vp, int64_t vs,
                                 int64_t tk2, float* o, int64_t os) {
  constexpr int NF = HALF ? NV - 1 : NV;  // full vectors
  __m512 acc[RM][NF > 0 ? NF : 1];
  __m256 acch[RM];
#pragma GCC unroll 32
  for (int r = 0; r < RM; ++r) {
#pragma GCC unroll 32
    for (int v = 0; v < NF; ++v) acc[r][v] = _mm512_setzero_ps();
    acch[r] = _mm256_setzero_ps();
  }
  for (int64_t jj = 0; jj < tk2; ++jj) {
    __m512bh b[NF > 0 ? NF : 1];
#pragma GCC unroll 32
    for (int v = 0; v < NF; ++v) b[v] = (__m512bh)_mm512_loadu_si512(vp + (jj * vs + v) * 32);
    __m256bh bh;
    if constexpr (HALF)
      bh = (__m256bh)_mm256_loadu_si256(reinterpret_cast<const __m256i*>(vp + (jj * vs + NF) * 32));
#pragma GCC unroll 32
    for (int r = 0; r < RM; ++r) {
      // One broadcast load of the probability pair serves both widths (the 256-bit operand is
      // the low half of the 512-bit one).
      float pair;
      std::memcpy(&pair, p + r * ps + 2 * jj, 4);
      const __m512 a = _mm512_set1_ps(pair);
#pragma GCC unroll 32
      for (int v = 0; v < NF; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], (__m512bh)a, b[v]);
      if constexpr (HALF)
        acch[r] = _mm256_dpbf16_ps(acch[r], (__m256bh)_mm512_castps512_ps256(a), bh);
    }
  }
#pragma GCC unroll 32
  for (int r = 0; r < RM; ++r) {
#pragma GCC unroll 32
    for (int v = 0; v < NF; ++v) _mm512_storeu_ps(o + r * os + v * 16, acc[r][v]);
    if constexpr (HALF) _mm256_storeu_ps(o + r * os + NF * 16, acch[r]);
  }
}

// Rows [0, rows) of P V for output columns [16 c0, 16 (c0 + NV)) of nvt vectors: full tiles of
// RM rows, then single rows. O has nvt * 16 columns.
template <int NV, bool HALF>
void pv_rows(const uint16_t* p, int64_t ps, const uint16_t* vp, int64_t nvt, int64_t c0,
             int64_t kdim, int64_t rows, float* o) {
  constexpr int RM = std::clamp((31 - NV) / NV, 1, 8);
  const int64_t os = nvt * 16;
  o += c0 * 16;
  vp += c0 * 32;
  int64_t r = 0;
  for (; r + RM <= rows; r += RM)
    pv_tile_bf16<RM, NV, HALF>(p + r * ps, ps, vp, nvt, kdim, o + r * os, os);
  for (; r < rows; ++r) pv_tile_bf16<1, NV, HALF>(p + r * ps, ps, vp, nvt, kdim, o + r * os, os);
}

using PvFn = void (*)(const uint16_t*, int64_t, const uint16_t*, int64_t, int64_t, int64_t, int64_t,
                      float*);

template <bool HALF, int... N>
constexpr std::array<PvFn, sizeof...(N)> pv_table(std::integer_sequence<int, N...>) {
  return {&pv_rows<N + 1, HALF>...};
}

// All nvt column vectors of a head of d columns, in even chunks of at most kMaxNv vectors; when
// d is 8 more than a multiple of 16 the very last vector is a half one.
void pv_dispatch(int nvt, int64_t d, const uint16_t* p, int64_t ps, const uint16_t* vp,
                 int64_t kdim, int64_t rows, float* o) {
  static constexpr auto full = pv_table<false>(std::make_integer_sequence<int, kMaxNv>());
  static constexpr auto half = pv_table<true>(std::make_integer_sequence<int, kMaxNv>());
  const int chunks = (nvt + kMaxNv - 1) / kMaxNv, per = (nvt + chunks - 1) / chunks;
  for (int c0 = 0; c0 < nvt; c0 += per) {
    const int n = std::min(per, nvt - c0);
    const bool last_half = c0 + n == nvt && d % 16 == 8;
    (last_half ? half : full)[size_t(n - 1)](p, ps, vp, nvt, c0, kdim, rows, o);
  }
}

// ---- softmax ----------------------------------------------------------------------------------

// Row softmax numerators exp(scale (s - max)) for j < len (zero up to `width`) as bf16; returns
// the reciprocal of their sum. One FMA for scale and shift (in log2 units), the short exp2,
// native round-to-nearest-even conversion to bf16.
SDC_AVX512BF16 float softmax_row_bf16(const float* s, uint16_t* p, int64_t len, int64_t width,
                                      float scale) {
  __m512 mx = _mm512_set1_ps(-INFINITY);
  for (int64_t j = 0; j < len; j += 16) {
    const __mmask16 m = simd::tail_mask(len - j);
    mx = _mm512_mask_max_ps(mx, m, mx, _mm512_maskz_loadu_ps(m, s + j));
  }
  const float a = scale * 1.44269504088896341f;
  const __m512 va = _mm512_set1_ps(a);
  const __m512 vshift = _mm512_set1_ps(-simd::hmax(mx) * a);
  __m512 sum = _mm512_setzero_ps();
  int64_t j = 0;
  for (; j + 16 <= len; j += 16) {
    const __m512 e = simd::exp2_fast(_mm512_fmadd_ps(_mm512_loadu_ps(s + j), va, vshift));
    sum = _mm512_add_ps(sum, e);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p + j), (__m256i)_mm512_cvtneps_pbh(e));
  }
  for (; j < width; j += 16) {
    const __mmask16 m = simd::tail_mask(width - j);
    const __mmask16 valid = j < len ? simd::tail_mask(len - j) : __mmask16(0);
    const __m512 e = _mm512_maskz_mov_ps(
        valid, simd::exp2_fast(_mm512_fmadd_ps(_mm512_maskz_loadu_ps(valid, s + j), va, vshift)));
    sum = _mm512_add_ps(sum, e);
    _mm256_mask_storeu_epi16(p + j, m, (__m256i)_mm512_cvtneps_pbh(e));
  }
  return 1.f / simd::hsum(sum);
}

// O row * inv -> out row (d values).
template <class T>
SDC_AVX512 void store_row(const float* o, float inv, int64_t d, T* out) {
  const __m512 vi = _mm512_set1_ps(inv);
  for (int64_t e = 0; e < d; e += 16) {
    const __mmask16 m = simd::tail_mask(d - e);
    simd::store(out + e, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, o + e), vi), m);
  }
}

}  // namespace

bool FlashAttention::supported(const AttentionShape& s) {
  // Without AVX-512: f32 heads of up to 128 through the AVX2 lanes kernel (attention_lanes_avx2.h).
  // Against oneDNN's matmul tiles on a Zen 3 (2 threads, sdc_bench_kernels BM_Attention f32):
  // 4096 tokens x 40 386-398 -> 204-209 ms, 1024 x 80 31-34 -> 24-25 ms, but 256 x 160 4.0-4.4 ->
  // 4.8-5.0 ms: its 16 vector registers leave a PV tile 6 head columns, which re-reads P 27
  // times over a head of 160.
  if (!use_avx512_kernels())
    return s.in == DType::F32 && kernel_isa() == KernelIsa::Avx2 && s.C / s.heads <= 128;
  if (s.in == DType::BF16 && !cpu_features().avx512_bf16) return false;
  return true;
}

FlashAttention::FlashAttention(const AttentionShape& s, int threads) : s_(s), threads_(threads) {
  d_ = s.C / s.heads;
  d2_ = (d_ + 1) / 2;
  tk16_ = (s.Tk + 15) / 16 * 16;
  tk2_ = (s.Tk + 1) / 2;
  dv16_ = (d_ + 15) / 16 * 16;
  if (s.in != DType::BF16) {
    // f32: K and V rows of the head, [Tk][d]; the query-block kernel's own tile.
    avx2_ = !use_avx512_kernels();
    R_ = avx2_ ? attn_lanes_avx2::block_queries(d_) : attn_lanes::block_queries(d_);
    kp_bytes_ = vp_bytes_ = arena_aligned(size_t(s.Tk * d_) * 4);
    pack_bytes_ = size_t(s.N * s.heads) * (kp_bytes_ + vp_bytes_);
    tile_bytes_ =
        arena_aligned((avx2_ ? attn_lanes_avx2::tile_floats(d_) : attn_lanes::tile_floats(d_)) * 4);
    return;
  }
  // Heads of up to 64 over many keys (the UNet's 4096-token self-attention, heads of 40) run
  // ~1.3x faster with queries in lanes: the row-tiled QK kernel below has only a 20-step
  // reduction per tile there. Wider heads and short key sets (cross-attention's 77) are faster
  // row-tiled (`sdc_bench_kernels --benchmark_filter=Attention`, 2-core Zen 5).
  lanes_ = d_ <= 64 && s.Tk >= 256;
  if (lanes_) {
    // K rows [Tk][2 d2] (pairs of head columns), V in key pairs as below; the lanes tile.
    R_ = attn_lanes::block_queries(d_);
    kp_bytes_ = arena_aligned(size_t(s.Tk * d2_ * 2) * 2);
    vp_bytes_ = arena_aligned(size_t(tk2_ * dv16_ * 2) * 2);
    pack_bytes_ = size_t(s.N * s.heads) * (kp_bytes_ + vp_bytes_);
    tile_bytes_ = arena_aligned(attn_lanes::tile_floats(d_) * 4);
    return;
  }
  // Query rows per work item: the scores block stays within ~384 KiB (L2), a multiple of 24
  // rows (whole QK tiles of 6 rows and PV tiles of 8) from 24 to 120; fewer for short queries.
  R_ = std::clamp<int64_t>((384 * 1024 / 4) / tk16_ / 24 * 24, 24, 120);
  R_ = std::min<int64_t>(R_, (s.Tq + 7) / 8 * 8);
  kp_bytes_ = arena_aligned(size_t(d2_ * tk16_ * 2) * 2);
  vp_bytes_ = arena_aligned(size_t(tk2_ * dv16_ * 2) * 2);
  pack_bytes_ = size_t(s.N * s.heads) * (kp_bytes_ + vp_bytes_);
  // Row strides one cache line longer than the rows: rows a multiple of 4 KiB apart would share
  // L1 sets when a tile touches several of them.
  ss_ = tk16_ + 16;
  ps_ = 2 * tk2_ + 32;
  tile_bytes_ = arena_aligned(size_t(R_ * d2_ * 2) * 2) + arena_aligned(size_t(R_ * ss_) * 4) +
                arena_aligned(size_t(R_ * ps_) * 2) + arena_aligned(size_t(R_ * dv16_) * 4) +
                arena_aligned(size_t(R_) * 4);
}

void FlashAttention::pack(int64_t nh, const void* k, const void* v, uint8_t* dst) const {
  const AttentionShape& s = s_;
  const int64_t n = nh / s.heads, h = nh % s.heads, d = d_, C = s.C;
  const size_t off = size_t(n * s.Tk * C + h * d);
  if (s.in != DType::BF16) {
    auto* K = static_cast<const float*>(k) + off;
    auto* V = static_cast<const float*>(v) + off;
    auto* kp = reinterpret_cast<float*>(dst);
    auto* vp = reinterpret_cast<float*>(dst + kp_bytes_);
    for (int64_t j = 0; j < s.Tk; ++j) {
      std::memcpy(kp + j * d, K + j * C, size_t(d) * 4);
      std::memcpy(vp + j * d, V + j * C, size_t(d) * 4);
    }
    return;
  }
  auto* K = static_cast<const uint16_t*>(k) + off;
  auto* V = static_cast<const uint16_t*>(v) + off;
  auto* kp = reinterpret_cast<uint16_t*>(dst);
  auto* vp = reinterpret_cast<uint16_t*>(dst + kp_bytes_);
  std::memset(kp, 0, kp_bytes_);
  std::memset(vp, 0, vp_bytes_);
  if (lanes_) {
    for (int64_t j = 0; j < s.Tk; ++j) {
      std::memcpy(kp + j * 2 * d2_, K + j * C, size_t(d) * 2);
      for (int64_t e = 0; e < d; ++e) vp[((j / 2) * dv16_ + e) * 2 + (j & 1)] = V[j * C + e];
    }
    return;
  }
  for (int64_t j = 0; j < s.Tk; ++j)
    for (int64_t e = 0; e < d; ++e) {
      kp[kp_index(j, e / 2, d2_, tk16_) * 2 + (e & 1)] = K[j * C + e];
      vp[((j / 2) * dv16_ + e) * 2 + (j & 1)] = V[j * C + e];
    }
}

namespace {
// The fields of a queries-in-lanes block that do not depend on its element type.
template <class In, class Block>
void fill_lanes_block(Block& b, const AttentionShape& s, int64_t d, int64_t rows, int64_t q0,
                      size_t off, const void* q, void* out, uint8_t* tile) {
  b.q = static_cast<const In*>(q) + off;
  if (s.out == DType::BF16)
    b.out_bf16 = static_cast<uint16_t*>(out) + off;
  else
    b.out = static_cast<float*>(out) + off;
  b.C = s.C;
  b.d = d;
  b.rows = rows;
  b.q0 = q0;
  b.Tk = s.Tk;
  b.causal = s.causal;
  b.scale = 1.f / std::sqrt(float(d));
  b.tile = reinterpret_cast<float*>(tile);
}
}  // namespace

void FlashAttention::block_lanes(int64_t nh, int64_t q0, const void* q, const uint8_t* packed,
                                 void* out, uint8_t* tile) const {
  const AttentionShape& s = s_;
  const int64_t n = nh / s.heads, h = nh % s.heads, rows = std::min(R_, s.Tq - q0);
  const size_t off = size_t((n * s.Tq + q0) * s.C + h * d_);
  if (s.in == DType::BF16) {
    attn_lanes::QueryBlockBf16 b{};
    fill_lanes_block<uint16_t>(b, s, d_, rows, q0, off, q, out, tile);
    b.kp = reinterpret_cast<const uint16_t*>(packed);
    b.vp = reinterpret_cast<const uint32_t*>(packed + kp_bytes_);
    b.vs = dv16_;
    attn_lanes::run_block_bf16(b);
    return;
  }
  attn_lanes::QueryBlock b{};
  fill_lanes_block<float>(b, s, d_, rows, q0, off, q, out, tile);
  b.kp = reinterpret_cast<const float*>(packed);
  b.vp = reinterpret_cast<const float*>(packed + kp_bytes_);
  if (avx2_)
    attn_lanes_avx2::run_block(b);
  else
    attn_lanes::run_block(b);
}

void FlashAttention::block_bf16(int64_t nh, int64_t q0, const void* q, const uint8_t* packed,
                                void* out, uint8_t* tile) const {
  const AttentionShape& s = s_;
  const int64_t n = nh / s.heads, h = nh % s.heads;
  const int64_t d = d_, d2 = d2_, tk2 = tk2_, dv16 = dv16_, R = R_, C = s.C, ss = ss_, ps = ps_;
  const int64_t rows = std::min(R, s.Tq - q0);
  auto* qd = reinterpret_cast<uint16_t*>(tile);
  float* S = reinterpret_cast<float*>(tile + arena_aligned(size_t(R * d2 * 2) * 2));
  auto* P = reinterpret_cast<uint16_t*>(reinterpret_cast<uint8_t*>(S) +
                                        arena_aligned(size_t(R * ss) * 4));
  float* O =
      reinterpret_cast<float*>(reinterpret_cast<uint8_t*>(P) + arena_aligned(size_t(R * ps) * 2));
  float* inv = O + R * dv16;
  // Q block of this head, zero-padded to pairs.
  auto* Q = static_cast<const uint16_t*>(q) + (n * s.Tq + q0) * C + h * d;
  for (int64_t r = 0; r < rows; ++r) {
    std::memcpy(qd + r * 2 * d2, Q + r * C, size_t(d) * 2);
    if (d & 1) qd[r * 2 * d2 + d] = 0;
  }
  qk_block_bf16(qd, 2 * d2, reinterpret_cast<const uint16_t*>(packed), tk16_, d2, S, ss, rows);
  const float scale = 1.f / std::sqrt(float(d));
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t len = s.causal ? std::min(s.Tk, q0 + r + 1) : s.Tk;
    inv[r] = softmax_row_bf16(S + r * ss, P + r * ps, len, 2 * tk2, scale);
  }
  pv_dispatch(int(dv16 / 16), d, P, ps, reinterpret_cast<const uint16_t*>(packed + kp_bytes_), tk2,
              rows, O);
  const size_t out_off = size_t((n * s.Tq + q0) * C + h * d);
  for (int64_t r = 0; r < rows; ++r) {
    if (s.out == DType::BF16)
      store_row(O + r * dv16, inv[r], d, static_cast<uint16_t*>(out) + out_off + r * C);
    else
      store_row(O + r * dv16, inv[r], d, static_cast<float*>(out) + out_off + r * C);
  }
}

void FlashAttention::run(const void* q, const void* k, const void* v, void* out,
                         void* scratch) const {
  const AttentionShape& s = s_;
  auto* base = static_cast<uint8_t*>(scratch);
  const int64_t nqb = (s.Tq + R_ - 1) / R_, heads = s.N * s.heads;
  auto packed = [&](int64_t nh) { return base + size_t(nh) * (kp_bytes_ + vp_bytes_); };
#pragma omp parallel num_threads(threads_)
  {
#pragma omp for schedule(static)
    for (int64_t nh = 0; nh < heads; ++nh) pack(nh, k, v, packed(nh));
    // The implicit barrier of the loop above: all packs are ready.
    uint8_t* tile = base + pack_bytes_ + tile_bytes_ * size_t(omp_get_thread_num());
#pragma omp for schedule(dynamic)
    for (int64_t item = 0; item < heads * nqb; ++item) {
      const int64_t nh = item / nqb, q0 = item % nqb * R_;
      if (lanes_)
        block_lanes(nh, q0, q, packed(nh), out, tile);
      else
        block_bf16(nh, q0, q, packed(nh), out, tile);
    }
  }
}

}  // namespace sdc::cpu
