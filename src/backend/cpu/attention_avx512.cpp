// FlashAttention: packing, register-tiled QK^T and PV micro-kernels (bf16 vdpbf16ps or f32 FMA),
// softmax with deferred normalisation.
//
// Layouts per (image, head), d = head size, pairs of d for bf16 (d2 = ceil(d / 2)):
//   bf16: Kp[d2][tk16][2]  Vp[tk2][dv16][2]  (tk16 = Tk rounded to 16, tk2 = ceil(Tk / 2),
//                                             dv16 = d rounded to 16; padding is zero)
//   f32:  Kp[d][tk16]      Vp[Tk][dv16]
// Per thread: Qp[R][dpad] (the query block of this head), S[R][tk16] f32 scores, P[R][2 tk2]
// bf16 probabilities (f32: P is S), O[R][dv16] f32, inv[R].
#include "backend/cpu/attention_avx512.h"

#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <utility>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/simd.h"

#define SDC_AVX512BF16 \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma,f16c")))

namespace sdc::cpu {
namespace {

size_t align64(size_t v) {
  return (v + 63) / 64 * 64;
}
constexpr int kMaxNv = 10;  // 16-column vectors per PV tile (register budget); wider heads are
                            // done in column chunks

// ---- bf16 micro-kernels ---------------------------------------------------------------------

template <int RM, int NB>
SDC_AVX512BF16 void qk_tile_bf16(const uint16_t* qp, int64_t qs, const uint16_t* kp, int64_t ks,
                                 int64_t d2, float* s, int64_t ss) {
  __m512 acc[RM][NB];
  for (int r = 0; r < RM; ++r)
    for (int v = 0; v < NB; ++v) acc[r][v] = _mm512_setzero_ps();
  for (int64_t kk = 0; kk < d2; ++kk) {
    __m512bh b[NB];
    for (int v = 0; v < NB; ++v) b[v] = (__m512bh)_mm512_loadu_si512(kp + kk * ks + v * 32);
    for (int r = 0; r < RM; ++r) {
      int32_t pair;
      std::memcpy(&pair, qp + r * qs + 2 * kk, 4);
      const __m512bh a = (__m512bh)_mm512_set1_epi32(pair);
      for (int v = 0; v < NB; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], a, b[v]);
    }
  }
  for (int r = 0; r < RM; ++r)
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

void qk_block_bf16(const uint16_t* qp, int64_t qs, const uint16_t* kp, int64_t tk16, int64_t d2,
                   float* s, int64_t rows) {
  const int64_t ks = tk16 * 2;
  for (int64_t j = 0; j < tk16; j += 64) {
    switch (std::min<int64_t>(4, (tk16 - j) / 16)) {
      case 4:
        qk_cols_bf16<4>(qp, qs, kp + j * 2, ks, d2, s + j, tk16, rows);
        break;
      case 3:
        qk_cols_bf16<3>(qp, qs, kp + j * 2, ks, d2, s + j, tk16, rows);
        break;
      case 2:
        qk_cols_bf16<2>(qp, qs, kp + j * 2, ks, d2, s + j, tk16, rows);
        break;
      default:
        qk_cols_bf16<1>(qp, qs, kp + j * 2, ks, d2, s + j, tk16, rows);
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
  for (int r = 0; r < RM; ++r) {
    for (int v = 0; v < NF; ++v) acc[r][v] = _mm512_setzero_ps();
    acch[r] = _mm256_setzero_ps();
  }
  for (int64_t jj = 0; jj < tk2; ++jj) {
    __m512bh b[NF > 0 ? NF : 1];
    for (int v = 0; v < NF; ++v) b[v] = (__m512bh)_mm512_loadu_si512(vp + (jj * vs + v) * 32);
    __m256bh bh;
    if constexpr (HALF)
      bh = (__m256bh)_mm256_loadu_si256(reinterpret_cast<const __m256i*>(vp + (jj * vs + NF) * 32));
    for (int r = 0; r < RM; ++r) {
      // One broadcast load of the probability pair serves both widths (the 256-bit operand is
      // the low half of the 512-bit one).
      float pair;
      std::memcpy(&pair, p + r * ps + 2 * jj, 4);
      const __m512 a = _mm512_set1_ps(pair);
      for (int v = 0; v < NF; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], (__m512bh)a, b[v]);
      if constexpr (HALF)
        acch[r] = _mm256_dpbf16_ps(acch[r], (__m256bh)_mm512_castps512_ps256(a), bh);
    }
  }
  for (int r = 0; r < RM; ++r) {
    for (int v = 0; v < NF; ++v) _mm512_storeu_ps(o + r * os + v * 16, acc[r][v]);
    if constexpr (HALF) _mm256_storeu_ps(o + r * os + NF * 16, acch[r]);
  }
}

// ---- f32 micro-kernels ----------------------------------------------------------------------

template <int RM, int NB>
SDC_AVX512 void qk_tile_f32(const float* qp, int64_t qs, const float* kp, int64_t ks, int64_t d,
                            float* s, int64_t ss) {
  __m512 acc[RM][NB];
  for (int r = 0; r < RM; ++r)
    for (int v = 0; v < NB; ++v) acc[r][v] = _mm512_setzero_ps();
  for (int64_t k = 0; k < d; ++k) {
    __m512 b[NB];
    for (int v = 0; v < NB; ++v) b[v] = _mm512_loadu_ps(kp + k * ks + v * 16);
    for (int r = 0; r < RM; ++r) {
      const __m512 a = _mm512_set1_ps(qp[r * qs + k]);
      for (int v = 0; v < NB; ++v) acc[r][v] = _mm512_fmadd_ps(a, b[v], acc[r][v]);
    }
  }
  for (int r = 0; r < RM; ++r)
    for (int v = 0; v < NB; ++v) _mm512_storeu_ps(s + r * ss + v * 16, acc[r][v]);
}

template <int NB>
void qk_cols_f32(const float* qp, int64_t qs, const float* kp, int64_t ks, int64_t d, float* s,
                 int64_t ss, int64_t rows) {
  int64_t r = 0;
  for (; r + 6 <= rows; r += 6) qk_tile_f32<6, NB>(qp + r * qs, qs, kp, ks, d, s + r * ss, ss);
  for (; r + 2 <= rows; r += 2) qk_tile_f32<2, NB>(qp + r * qs, qs, kp, ks, d, s + r * ss, ss);
  for (; r < rows; ++r) qk_tile_f32<1, NB>(qp + r * qs, qs, kp, ks, d, s + r * ss, ss);
}

void qk_block_f32(const float* qp, int64_t qs, const float* kp, int64_t tk16, int64_t d, float* s,
                  int64_t rows) {
  for (int64_t j = 0; j < tk16; j += 64) {
    switch (std::min<int64_t>(4, (tk16 - j) / 16)) {
      case 4:
        qk_cols_f32<4>(qp, qs, kp + j, tk16, d, s + j, tk16, rows);
        break;
      case 3:
        qk_cols_f32<3>(qp, qs, kp + j, tk16, d, s + j, tk16, rows);
        break;
      case 2:
        qk_cols_f32<2>(qp, qs, kp + j, tk16, d, s + j, tk16, rows);
        break;
      default:
        qk_cols_f32<1>(qp, qs, kp + j, tk16, d, s + j, tk16, rows);
        break;
    }
  }
}

template <int RM, int NV, bool HALF>
SDC_AVX512 void pv_tile_f32(const float* p, int64_t ps, const float* vp, int64_t vs, int64_t tk,
                            float* o, int64_t os) {
  constexpr int NF = HALF ? NV - 1 : NV;
  __m512 acc[RM][NF > 0 ? NF : 1];
  __m256 acch[RM];
  for (int r = 0; r < RM; ++r) {
    for (int v = 0; v < NF; ++v) acc[r][v] = _mm512_setzero_ps();
    acch[r] = _mm256_setzero_ps();
  }
  for (int64_t j = 0; j < tk; ++j) {
    __m512 b[NF > 0 ? NF : 1];
    for (int v = 0; v < NF; ++v) b[v] = _mm512_loadu_ps(vp + (j * vs + v) * 16);
    __m256 bh;
    if constexpr (HALF) bh = _mm256_loadu_ps(vp + (j * vs + NF) * 16);
    for (int r = 0; r < RM; ++r) {
      const __m512 a = _mm512_set1_ps(p[r * ps + j]);
      for (int v = 0; v < NF; ++v) acc[r][v] = _mm512_fmadd_ps(a, b[v], acc[r][v]);
      if constexpr (HALF) acch[r] = _mm256_fmadd_ps(_mm512_castps512_ps256(a), bh, acch[r]);
    }
  }
  for (int r = 0; r < RM; ++r) {
    for (int v = 0; v < NF; ++v) _mm512_storeu_ps(o + r * os + v * 16, acc[r][v]);
    if constexpr (HALF) _mm256_storeu_ps(o + r * os + NF * 16, acch[r]);
  }
}

// Rows [0, rows) of P V for output columns [16 c0, 16 (c0 + NV)) of nvt vectors: full tiles of
// RM rows, then single rows. O has nvt * 16 columns.
template <int NV, bool BF16, bool HALF>
void pv_rows(const void* p, int64_t ps, const void* vp, int64_t nvt, int64_t c0, int64_t kdim,
             int64_t rows, float* o) {
  constexpr int RM = std::clamp((31 - NV) / NV, 1, 8);
  const int64_t os = nvt * 16;
  o += c0 * 16;
  int64_t r = 0;
  if constexpr (BF16) {
    auto* pp = static_cast<const uint16_t*>(p);
    auto* v = static_cast<const uint16_t*>(vp) + c0 * 32;
    for (; r + RM <= rows; r += RM)
      pv_tile_bf16<RM, NV, HALF>(pp + r * ps, ps, v, nvt, kdim, o + r * os, os);
    for (; r < rows; ++r) pv_tile_bf16<1, NV, HALF>(pp + r * ps, ps, v, nvt, kdim, o + r * os, os);
  } else {
    auto* pp = static_cast<const float*>(p);
    auto* v = static_cast<const float*>(vp) + c0 * 16;
    for (; r + RM <= rows; r += RM)
      pv_tile_f32<RM, NV, HALF>(pp + r * ps, ps, v, nvt, kdim, o + r * os, os);
    for (; r < rows; ++r) pv_tile_f32<1, NV, HALF>(pp + r * ps, ps, v, nvt, kdim, o + r * os, os);
  }
}

using PvFn = void (*)(const void*, int64_t, const void*, int64_t, int64_t, int64_t, int64_t,
                      float*);

template <bool BF16, bool HALF, int... N>
constexpr std::array<PvFn, sizeof...(N)> pv_table(std::integer_sequence<int, N...>) {
  return {&pv_rows<N + 1, BF16, HALF>...};
}

// All nvt column vectors of a head of d columns, in even chunks of at most kMaxNv vectors; when
// d is 8 more than a multiple of 16 the very last vector is a half one.
template <bool BF16>
void pv_dispatch(int nvt, int64_t d, const void* p, int64_t ps, const void* vp, int64_t kdim,
                 int64_t rows, float* o) {
  static constexpr auto full = pv_table<BF16, false>(std::make_integer_sequence<int, kMaxNv>());
  static constexpr auto half = pv_table<BF16, true>(std::make_integer_sequence<int, kMaxNv>());
  const int chunks = (nvt + kMaxNv - 1) / kMaxNv, per = (nvt + chunks - 1) / chunks;
  for (int c0 = 0; c0 < nvt; c0 += per) {
    const int n = std::min(per, nvt - c0);
    const bool last_half = c0 + n == nvt && d % 16 == 8;
    (last_half ? half : full)[size_t(n - 1)](p, ps, vp, nvt, c0, kdim, rows, o);
  }
}

// ---- softmax ----------------------------------------------------------------------------------

// Row softmax numerators exp(scale (s - max)) for j < len (zero up to `width`), as T; returns the
// reciprocal of their sum.
// f32 path: exp(scale (s - max)) = 2^t with t = s a - max a (a = scale log2 e, one FMA), 2^f on
// f in [-0.5, 0.5] by its degree-6 Taylor polynomial (relative error < 1.3e-7) and scalef.
SDC_AVX512 inline __m512 exp2_f32(__m512 t) {
  const __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(t, n);
  __m512 p = _mm512_set1_ps(1.5403530393e-4f);
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.3333558146e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.6181291076e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.5504108665e-2f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.4022650696e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.9314718056e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.f));
  return _mm512_scalef_ps(p, n);
}

SDC_AVX512 float softmax_row(float* s, float* p, int64_t len, int64_t width, float scale) {
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
    const __m512 e = exp2_f32(_mm512_fmadd_ps(_mm512_loadu_ps(s + j), va, vshift));
    sum = _mm512_add_ps(sum, e);
    _mm512_storeu_ps(p + j, e);
  }
  for (; j < width; j += 16) {
    const __mmask16 m = simd::tail_mask(width - j);
    const __mmask16 valid = j < len ? simd::tail_mask(len - j) : __mmask16(0);
    const __m512 e = _mm512_maskz_mov_ps(
        valid, exp2_f32(_mm512_fmadd_ps(_mm512_maskz_loadu_ps(valid, s + j), va, vshift)));
    sum = _mm512_add_ps(sum, e);
    _mm512_mask_storeu_ps(p + j, m, e);
  }
  return 1.f / simd::hsum(sum);
}

// The bf16 path's softmax numerators: one FMA for scale and shift (in log2 units), the short
// exp2, native round-to-nearest-even conversion to bf16.
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
  if (!use_avx512_kernels()) return false;
  if (s.in == DType::BF16 && !cpu_features().avx512_bf16) return false;
  return true;
}

FlashAttention::FlashAttention(const AttentionShape& s, int threads) : s_(s), threads_(threads) {
  const bool bf16 = s.in == DType::BF16;
  d_ = s.C / s.heads;
  d2_ = (d_ + 1) / 2;
  tk16_ = (s.Tk + 15) / 16 * 16;
  tk2_ = (s.Tk + 1) / 2;
  dv16_ = (d_ + 15) / 16 * 16;
  // Query rows per work item: the scores block stays within ~384 KiB (L2), a multiple of 24
  // rows (whole QK tiles of 6 rows and PV tiles of 8) from 24 to 120; fewer for short queries.
  R_ = std::clamp<int64_t>((384 * 1024 / 4) / tk16_ / 24 * 24, 24, 120);
  R_ = std::min<int64_t>(R_, (s.Tq + 7) / 8 * 8);
  kp_bytes_ = align64(bf16 ? size_t(d2_ * tk16_ * 2) * 2 : size_t(d_ * tk16_) * 4);
  vp_bytes_ = align64(bf16 ? size_t(tk2_ * dv16_ * 2) * 2 : size_t(s.Tk * dv16_) * 4);
  pack_bytes_ = size_t(s.N * s.heads) * (kp_bytes_ + vp_bytes_);
  const size_t qp = align64(bf16 ? size_t(R_ * d2_ * 2) * 2 : size_t(R_ * d_) * 4);
  const size_t sc = align64(size_t(R_ * tk16_) * 4);
  const size_t pb = bf16 ? align64(size_t(R_ * tk2_ * 2) * 2) : 0;
  const size_t ob = align64(size_t(R_ * dv16_) * 4) + align64(size_t(R_) * 4);
  tile_bytes_ = qp + sc + pb + ob;
}

void FlashAttention::run(const void* q, const void* k, const void* v, void* out,
                         void* scratch) const {
  const AttentionShape& s = s_;
  const bool bf16 = s.in == DType::BF16;
  const int64_t d = d_, d2 = d2_, tk16 = tk16_, tk2 = tk2_, dv16 = dv16_, R = R_, C = s.C;
  const int nv = int(dv16 / 16);
  auto* base = static_cast<uint8_t*>(scratch);
  const int64_t nqb = (s.Tq + R - 1) / R;
  const int64_t items = s.N * s.heads * nqb;
  const float scale = 1.f / std::sqrt(float(d));
  auto kp_of = [&](int64_t nh) { return base + size_t(nh) * (kp_bytes_ + vp_bytes_); };
  auto vp_of = [&](int64_t nh) { return kp_of(nh) + kp_bytes_; };

#pragma omp parallel num_threads(threads_)
  {
    // Pack K and V of every (image, head).
#pragma omp for schedule(static)
    for (int64_t nh = 0; nh < s.N * s.heads; ++nh) {
      const int64_t n = nh / s.heads, h = nh % s.heads;
      if (bf16) {
        auto* K = static_cast<const uint16_t*>(k) + n * s.Tk * C + h * d;
        auto* V = static_cast<const uint16_t*>(v) + n * s.Tk * C + h * d;
        auto* kp = reinterpret_cast<uint16_t*>(kp_of(nh));
        auto* vp = reinterpret_cast<uint16_t*>(vp_of(nh));
        std::memset(kp, 0, kp_bytes_);
        std::memset(vp, 0, vp_bytes_);
        for (int64_t j = 0; j < s.Tk; ++j)
          for (int64_t e = 0; e < d; ++e) {
            kp[((e / 2) * tk16 + j) * 2 + (e & 1)] = K[j * C + e];
            vp[((j / 2) * dv16 + e) * 2 + (j & 1)] = V[j * C + e];
          }
      } else {
        auto* K = static_cast<const float*>(k) + n * s.Tk * C + h * d;
        auto* V = static_cast<const float*>(v) + n * s.Tk * C + h * d;
        auto* kp = reinterpret_cast<float*>(kp_of(nh));
        auto* vp = reinterpret_cast<float*>(vp_of(nh));
        std::memset(kp, 0, kp_bytes_);
        std::memset(vp, 0, vp_bytes_);
        for (int64_t j = 0; j < s.Tk; ++j)
          for (int64_t e = 0; e < d; ++e) {
            kp[e * tk16 + j] = K[j * C + e];
            vp[j * dv16 + e] = V[j * C + e];
          }
      }
    }
    // The implicit barrier of the loop above: all packs are ready.
    uint8_t* tile = base + pack_bytes_ + tile_bytes_ * size_t(omp_get_thread_num());
    const size_t qp_b = align64(bf16 ? size_t(R * d2 * 2) * 2 : size_t(R * d) * 4);
    const size_t s_b = align64(size_t(R * tk16) * 4);
    const size_t p_b = bf16 ? align64(size_t(R * tk2 * 2) * 2) : 0;
    uint8_t* qp = tile;
    float* S = reinterpret_cast<float*>(tile + qp_b);
    void* P = bf16 ? static_cast<void*>(tile + qp_b + s_b) : static_cast<void*>(S);
    float* O = reinterpret_cast<float*>(tile + qp_b + s_b + p_b);
    float* inv = O + R * dv16;
#pragma omp for schedule(dynamic)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t qb = item % nqb, h = (item / nqb) % s.heads, n = item / (nqb * s.heads);
      const int64_t nh = n * s.heads + h, q0 = qb * R, rows = std::min(R, s.Tq - q0);
      // Q block of this head, zero-padded to pairs.
      if (bf16) {
        auto* Q = static_cast<const uint16_t*>(q) + (n * s.Tq + q0) * C + h * d;
        auto* qd = reinterpret_cast<uint16_t*>(qp);
        for (int64_t r = 0; r < rows; ++r) {
          std::memcpy(qd + r * 2 * d2, Q + r * C, size_t(d) * 2);
          if (d & 1) qd[r * 2 * d2 + d] = 0;
        }
        qk_block_bf16(qd, 2 * d2, reinterpret_cast<const uint16_t*>(kp_of(nh)), tk16, d2, S, rows);
      } else {
        auto* Q = static_cast<const float*>(q) + (n * s.Tq + q0) * C + h * d;
        auto* qd = reinterpret_cast<float*>(qp);
        for (int64_t r = 0; r < rows; ++r) std::memcpy(qd + r * d, Q + r * C, size_t(d) * 4);
        qk_block_f32(qd, d, reinterpret_cast<const float*>(kp_of(nh)), tk16, d, S, rows);
      }
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t len = s.causal ? std::min(s.Tk, q0 + r + 1) : s.Tk;
        inv[r] = bf16 ? softmax_row_bf16(S + r * tk16, static_cast<uint16_t*>(P) + r * 2 * tk2, len,
                                         2 * tk2, scale)
                      : softmax_row(S + r * tk16, S + r * tk16, len, s.Tk, scale);
      }
      if (bf16)
        pv_dispatch<true>(nv, d, P, 2 * tk2, vp_of(nh), tk2, rows, O);
      else
        pv_dispatch<false>(nv, d, P, tk16, vp_of(nh), s.Tk, rows, O);
      const size_t out_off = size_t((n * s.Tq + q0) * C + h * d);
      for (int64_t r = 0; r < rows; ++r) {
        if (s.out == DType::BF16)
          store_row(O + r * dv16, inv[r], d, static_cast<uint16_t*>(out) + out_off + r * C);
        else
          store_row(O + r * dv16, inv[r], d, static_cast<float*>(out) + out_off + r * C);
      }
    }
  }
}

}  // namespace sdc::cpu
