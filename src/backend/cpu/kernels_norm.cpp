// GroupNorm (+ optional fused time-embedding add and SiLU) and LayerNorm on channels-last data,
// on AVX-512, AVX2 (f32) or scalar code (kernel_isa).
// GroupNorm statistics: each thread sums (x - pivot_c) and (x - pivot_c)^2 per channel over a
// slice of pixels in f32 blocks of kBlock pixels, flushed into double; the group mean/variance are
// then assembled exactly from the per-channel shifted sums. Normalisation is one more pass
// y = x * a_c + b_c (a, b folded per (n, c)), so a tensor is read twice and written once; with
// statistics given from outside (GroupNormStatsIo, VAE tiling) only once.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/int8_gemm.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/simd.h"
#include "backend/cpu/simd_avx2.h"

namespace sdc::cpu {
namespace {

constexpr int64_t kBlock = 32;  // pixels summed in f32 before flushing to double

// Accumulates sums of x - pivot and (x - pivot)^2 over pixels [p0, p1) into s1/s2 (double, C
// each), through f32 block accumulators acc (2 * C floats).
template <class TX>
SDC_AVX512 void gn_stats_avx512(const TX* x, const TX* pivot, int64_t p0, int64_t p1, int64_t C,
                                float* acc, double* s1, double* s2) {
  for (int64_t pb = p0; pb < p1; pb += kBlock) {
    const int64_t pe = std::min(p1, pb + kBlock);
    for (int64_t c = 0; c < C; c += 16) {
      const __mmask16 m = simd::tail_mask(C - c);
      const __m512 sh = simd::load(pivot + c, m);
      __m512 a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps();
      for (int64_t p = pb; p < pe; ++p) {
        const __m512 d = _mm512_sub_ps(simd::load(x + p * C + c, m), sh);
        a1 = _mm512_add_ps(a1, d);
        a2 = _mm512_fmadd_ps(d, d, a2);
      }
      _mm512_mask_storeu_ps(acc + c, m, a1);
      _mm512_mask_storeu_ps(acc + C + c, m, a2);
    }
    for (int64_t c = 0; c < C; ++c) {
      s1[c] += acc[c];
      s2[c] += acc[C + c];
    }
  }
}

// The same on 8 lanes for f32 data, on CPUs without AVX-512 (whole vectors as plain loads and
// stores, masks only for a tail of channels).
SDC_AVX2 void gn_stats_avx2(const float* x, const float* pivot, int64_t p0, int64_t p1, int64_t C,
                            float* acc, double* s1, double* s2) {
  for (int64_t pb = p0; pb < p1; pb += kBlock) {
    const int64_t pe = std::min(p1, pb + kBlock);
    for (int64_t c = 0; c < C; c += 8) {
      const __m256 sh = simd256::load(pivot + c, C - c);
      __m256 a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps();
      for (int64_t p = pb; p < pe; ++p) {
        const __m256 d = _mm256_sub_ps(simd256::load(x + p * C + c, C - c), sh);
        a1 = _mm256_add_ps(a1, d);
        a2 = _mm256_fmadd_ps(d, d, a2);
      }
      simd256::store(acc + c, a1, C - c);
      simd256::store(acc + C + c, a2, C - c);
    }
    for (int64_t c = 0; c < C; ++c) {
      s1[c] += acc[c];
      s2[c] += acc[C + c];
    }
  }
}

template <class TX>
void gn_stats_scalar(const TX* x, const TX* pivot, int64_t p0, int64_t p1, int64_t C, float* acc,
                     double* s1, double* s2) {
  for (int64_t pb = p0; pb < p1; pb += kBlock) {
    const int64_t pe = std::min(p1, pb + kBlock);
    std::fill(acc, acc + 2 * C, 0.f);
    for (int64_t p = pb; p < pe; ++p)
      for (int64_t c = 0; c < C; ++c) {
        const float d = scalar::load(x + p * C + c) - scalar::load(pivot + c);
        acc[c] += d;
        acc[C + c] += d * d;
      }
    for (int64_t c = 0; c < C; ++c) {
      s1[c] += acc[c];
      s2[c] += acc[C + c];
    }
  }
}

template <class TX, class T>
SDC_AVX512 void gn_apply_avx512(const TX* x, const float* a, const float* b, int64_t p0, int64_t p1,
                                int64_t C, bool silu, T* y) {
  for (int64_t p = p0; p < p1; ++p)
    for (int64_t c = 0; c < C; c += 16) {
      const __mmask16 m = simd::tail_mask(C - c);
      __m512 v =
          _mm512_fmadd_ps(simd::load(x + p * C + c, m), simd::load(a + c, m), simd::load(b + c, m));
      // bf16 results take the short SiLU: its error is far below bf16 rounding.
      if (silu) v = sizeof(T) == 2 ? simd::swish_fast(v) : simd::swish(v, 1.f);
      simd::store(y + p * C + c, v, m);
    }
}

// The same on 8 lanes for f32 data, on CPUs without AVX-512.
SDC_AVX2 void gn_apply_avx2(const float* x, const float* a, const float* b, int64_t p0, int64_t p1,
                            int64_t C, bool silu, float* y) {
  for (int64_t p = p0; p < p1; ++p)
    for (int64_t c = 0; c < C; c += 8) {
      const int64_t n = C - c;
      __m256 v = _mm256_fmadd_ps(simd256::load(x + p * C + c, n), simd256::load(a + c, n),
                                 simd256::load(b + c, n));
      if (silu) v = simd256::silu(v);
      simd256::store(y + p * C + c, v, n);
    }
}

template <class TX, class T>
void gn_apply_scalar(const TX* x, const float* a, const float* b, int64_t p0, int64_t p1, int64_t C,
                     bool silu, T* y) {
  for (int64_t p = p0; p < p1; ++p)
    for (int64_t c = 0; c < C; ++c) {
      float v = scalar::load(x + p * C + c) * a[c] + b[c];
      if (silu) v = scalar::swish(v, 1.f);
      scalar::store(y + p * C + c, v);
    }
}

// Scratch layout (doubles): per thread [N][2C] sums; then a, b as floats [N][C] each, then per
// thread f32 block accumulators [2C].
struct GnScratch {
  double* sums;
  float* a;
  float* b;
  float* acc;
};
GnScratch gn_scratch(void* base, int64_t N, int64_t C, int threads) {
  GnScratch s;
  s.sums = static_cast<double*>(base);
  s.a = reinterpret_cast<float*>(s.sums + size_t(threads) * N * 2 * C);
  s.b = s.a + N * C;
  s.acc = s.b + N * C;
  return s;
}

// Folds a group's mean/variance with gamma/beta into y = x * a_c + b_c for its channels.
void gn_fold(double mu, double var, float eps, const float* gamma, const float* beta,
             const float* add_nc, int64_t n, int64_t C, int64_t c0, int64_t c1,
             const GnScratch& s) {
  const double rstd = 1.0 / std::sqrt(var + double(eps));
  for (int64_t c = c0; c < c1; ++c) {
    const double a = rstd * gamma[c];
    const double addc = add_nc ? add_nc[n * C + c] : 0.0;
    s.a[n * C + c] = float(a);
    s.b[n * C + c] = float(beta[c] + (addc - mu) * a);
  }
}

template <class TX>
void gn_statistics(const TX* x, const float* add_nc, const float* gamma, const float* beta,
                   int64_t N, int64_t P, int64_t C, int64_t G, float eps, int threads,
                   const GnScratch& s, const GroupNormStatsIo& io) {
  const KernelIsa isa = kernel_isa();
  std::fill(s.sums, s.sums + size_t(threads) * N * 2 * C, 0.0);
  // Pass 1: per-thread shifted sums; pivot = the first pixel of each image (plus the add).
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    float* acc = s.acc + size_t(t) * 2 * C;
    for (int64_t n = 0; n < N; ++n) {
      const int64_t per = (P + nt - 1) / nt;
      const int64_t p0 = std::min(P, t * per), p1 = std::min(P, p0 + per);
      const TX* xn = x + n * P * C;
      double* s1 = s.sums + (size_t(t) * N + n) * 2 * C;
      if (p0 >= p1) continue;
      if (isa == KernelIsa::Avx512) {
        gn_stats_avx512(xn, xn, p0, p1, C, acc, s1, s1 + C);
      } else if constexpr (std::is_same_v<TX, float>) {
        if (isa == KernelIsa::Avx2)
          gn_stats_avx2(xn, xn, p0, p1, C, acc, s1, s1 + C);
        else
          gn_stats_scalar(xn, xn, p0, p1, C, acc, s1, s1 + C);
      } else {
        gn_stats_scalar(xn, xn, p0, p1, C, acc, s1, s1 + C);
      }
    }
  }
  // Group statistics from per-channel shifted sums. With v = x + add and pivot K_c = x[0, c] +
  // add_c, the stats pass summed v - K_c = x - x[0, c]; then
  // sum v = S1_c + P K_c and sum (v - mu)^2 = S2_c + 2 (K_c - mu) S1_c + P (K_c - mu)^2.
  const int64_t cg = C / G;
  for (int64_t n = 0; n < N; ++n) {
    const TX* xn = x + n * P * C;
    double* tot = s.sums + size_t(n) * 2 * C;  // thread 0's slot collects all threads
    for (int t = 1; t < threads; ++t) {
      const double* st = s.sums + (size_t(t) * N + n) * 2 * C;
      for (int64_t c = 0; c < 2 * C; ++c) tot[c] += st[c];
    }
    for (int64_t g = 0; g < G; ++g) {
      auto pivot = [&](int64_t c) {
        return double(scalar::load(xn + c)) + (add_nc ? double(add_nc[n * C + c]) : 0.0);
      };
      double sum = 0;
      for (int64_t c = g * cg; c < (g + 1) * cg; ++c) sum += tot[c] + double(P) * pivot(c);
      const double count = double(P) * double(cg);
      const double mu = sum / count;
      double ss = 0;
      for (int64_t c = g * cg; c < (g + 1) * cg; ++c) {
        const double k = pivot(c) - mu;
        ss += tot[C + c] + 2.0 * k * tot[c] + double(P) * k * k;
      }
      const double var = std::max(0.0, ss / count);
      if (io.record_mean) io.record_mean[n * G + g] = mu;
      if (io.record_var) io.record_var[n * G + g] = var;
      gn_fold(mu, var, eps, gamma, beta, add_nc, n, C, g * cg, (g + 1) * cg, s);
    }
  }
}

template <class TX, class T>
void group_norm_t(const TX* x, const float* add_nc, const float* gamma, const float* beta,
                  int64_t N, int64_t P, int64_t C, int64_t G, float eps, bool silu, T* y,
                  void* scratch, const GroupNormStatsIo& io, const RowCodes& codes = {}) {
  // codes.q set: write the rows' codes (group_norm_row_codes), not y
  const int threads = omp_get_max_threads();
  const GnScratch s = gn_scratch(scratch, N, C, threads);
  const KernelIsa isa = kernel_isa();
  if (io.replay_mean && io.replay_var) {
    const int64_t cg = C / G;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t g = 0; g < G; ++g)
        gn_fold(io.replay_mean[n * G + g], io.replay_var[n * G + g], eps, gamma, beta, add_nc, n, C,
                g * cg, (g + 1) * cg, s);
  } else {
    gn_statistics(x, add_nc, gamma, beta, N, P, C, G, eps, threads, s, io);
  }
  if (codes.q) {  // group_norm_row_codes: each pixel's row normalised in f32, then its codes
    const RowQuantiser quantise_row = row_quantiser();
#pragma omp parallel num_threads(threads)
    {
      std::vector<float> row(static_cast<size_t>(C));
#pragma omp for schedule(static)
      for (int64_t i = 0; i < N * P; ++i) {
        const int64_t n = i / P, p = i % P;
        const TX* xr = x + (n * P + p) * C;
        if (isa == KernelIsa::Avx512)
          gn_apply_avx512(xr, s.a + n * C, s.b + n * C, 0, 1, C, silu, row.data());
        else if constexpr (std::is_same_v<TX, float>)
          gn_apply_avx2(xr, s.a + n * C, s.b + n * C, 0, 1, C, silu, row.data());
        else
          gn_apply_scalar(xr, s.a + n * C, s.b + n * C, 0, 1, C, silu, row.data());
        quantise_row(row.data(), C, codes.q + i * C, codes.scale[i], codes.zero[i]);
      }
    }
    return;
  }
  // Pass 2: y = x * a + b (+ SiLU), parallel over pixel blocks of all images.
  const int64_t blocks_per_image = (P + 63) / 64;
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int64_t i = 0; i < N * blocks_per_image; ++i) {
    const int64_t n = i / blocks_per_image, p0 = (i % blocks_per_image) * 64;
    const int64_t p1 = std::min(P, p0 + 64);
    const TX* xn = x + n * P * C;
    T* yn = y + n * P * C;
    if (isa == KernelIsa::Avx512) {
      gn_apply_avx512(xn, s.a + n * C, s.b + n * C, p0, p1, C, silu, yn);
    } else if constexpr (std::is_same_v<TX, float> && std::is_same_v<T, float>) {
      if (isa == KernelIsa::Avx2)
        gn_apply_avx2(xn, s.a + n * C, s.b + n * C, p0, p1, C, silu, yn);
      else
        gn_apply_scalar(xn, s.a + n * C, s.b + n * C, p0, p1, C, silu, yn);
    } else {
      gn_apply_scalar(xn, s.a + n * C, s.b + n * C, p0, p1, C, silu, yn);
    }
  }
}

template <class TX, class T>
SDC_AVX512 void ln_row_avx512(const TX* x, const float* gamma, const float* beta, int64_t C,
                              float eps, T* y) {
  __m512 s = _mm512_setzero_ps();
  for (int64_t c = 0; c < C; c += 16)
    s = _mm512_add_ps(s, simd::load(x + c, simd::tail_mask(C - c)));
  const float mean = simd::hsum(s) / float(C);
  const __m512 vm = _mm512_set1_ps(mean);
  __m512 q = _mm512_setzero_ps();
  for (int64_t c = 0; c < C; c += 16) {
    const __mmask16 m = simd::tail_mask(C - c);
    const __m512 d = _mm512_maskz_sub_ps(m, simd::load(x + c, m), vm);
    q = _mm512_fmadd_ps(d, d, q);
  }
  const float rstd = 1.f / std::sqrt(simd::hsum(q) / float(C) + eps);
  const __m512 vr = _mm512_set1_ps(rstd);
  for (int64_t c = 0; c < C; c += 16) {
    const __mmask16 m = simd::tail_mask(C - c);
    const __m512 d = _mm512_mul_ps(_mm512_sub_ps(simd::load(x + c, m), vm), vr);
    simd::store(y + c, _mm512_fmadd_ps(d, simd::load(gamma + c, m), simd::load(beta + c, m)), m);
  }
}

// The same on 8 lanes for f32 rows, on CPUs without AVX-512.
SDC_AVX2 void ln_row_avx2(const float* x, const float* gamma, const float* beta, int64_t C,
                          float eps, float* y) {
  __m256 s = _mm256_setzero_ps();
  for (int64_t c = 0; c < C; c += 8) s = _mm256_add_ps(s, simd256::load(x + c, C - c));
  const __m256 vm = _mm256_set1_ps(simd256::hsum(s) / float(C));
  __m256 q = _mm256_setzero_ps();
  for (int64_t c = 0; c < C; c += 8) {
    __m256 d = _mm256_sub_ps(simd256::load(x + c, C - c), vm);
    if (C - c < 8) d = _mm256_and_ps(d, _mm256_castsi256_ps(simd256::tail_mask(C - c)));
    q = _mm256_fmadd_ps(d, d, q);
  }
  const __m256 vr = _mm256_set1_ps(1.f / std::sqrt(simd256::hsum(q) / float(C) + eps));
  for (int64_t c = 0; c < C; c += 8) {
    const int64_t n = C - c;
    const __m256 d = _mm256_mul_ps(_mm256_sub_ps(simd256::load(x + c, n), vm), vr);
    simd256::store(y + c,
                   _mm256_fmadd_ps(d, simd256::load(gamma + c, n), simd256::load(beta + c, n)), n);
  }
}

template <class TX, class T>
void ln_row_scalar(const TX* x, const float* gamma, const float* beta, int64_t C, float eps, T* y) {
  double s = 0;
  for (int64_t c = 0; c < C; ++c) s += scalar::load(x + c);
  const float mean = float(s / double(C));
  double q = 0;
  for (int64_t c = 0; c < C; ++c)
    q += double(scalar::load(x + c) - mean) * double(scalar::load(x + c) - mean);
  const float rstd = float(1.0 / std::sqrt(q / double(C) + double(eps)));
  for (int64_t c = 0; c < C; ++c)
    scalar::store(y + c, (scalar::load(x + c) - mean) * rstd * gamma[c] + beta[c]);
}

template <class TX, class T>
void layer_norm_t(const TX* x, const float* gamma, const float* beta, int64_t rows, int64_t C,
                  float eps, T* y) {
  const KernelIsa isa = kernel_isa();
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    if (isa == KernelIsa::Avx512) {
      ln_row_avx512(x + r * C, gamma, beta, C, eps, y + r * C);
    } else if constexpr (std::is_same_v<TX, float> && std::is_same_v<T, float>) {
      if (isa == KernelIsa::Avx2)
        ln_row_avx2(x + r * C, gamma, beta, C, eps, y + r * C);
      else
        ln_row_scalar(x + r * C, gamma, beta, C, eps, y + r * C);
    } else {
      ln_row_scalar(x + r * C, gamma, beta, C, eps, y + r * C);
    }
  }
}

}  // namespace

size_t group_norm_scratch_bytes(int64_t N, int64_t C, int threads) {
  return size_t(threads) * N * 2 * C * sizeof(double) + 2 * size_t(N * C) * sizeof(float) +
         size_t(threads) * 2 * C * sizeof(float);
}

void group_norm(const void* x, DType xdt, const float* add_nc, const float* gamma,
                const float* beta, int64_t N, int64_t P, int64_t C, int64_t G, float eps, bool silu,
                void* y, DType ydt, void* scratch, const GroupNormStatsIo& stats) {
  const bool xb = xdt == DType::BF16, yb = ydt == DType::BF16;
  auto* xf = static_cast<const float*>(x);
  auto* xh = static_cast<const uint16_t*>(x);
  auto* yf = static_cast<float*>(y);
  auto* yh = static_cast<uint16_t*>(y);
  if (xb && yb) group_norm_t(xh, add_nc, gamma, beta, N, P, C, G, eps, silu, yh, scratch, stats);
  if (xb && !yb) group_norm_t(xh, add_nc, gamma, beta, N, P, C, G, eps, silu, yf, scratch, stats);
  if (!xb && yb) group_norm_t(xf, add_nc, gamma, beta, N, P, C, G, eps, silu, yh, scratch, stats);
  if (!xb && !yb) group_norm_t(xf, add_nc, gamma, beta, N, P, C, G, eps, silu, yf, scratch, stats);
}

void group_norm_row_codes(const void* x, DType xdt, const float* add_nc, const float* gamma,
                          const float* beta, int64_t N, int64_t P, int64_t C, int64_t G, float eps,
                          bool silu, const RowCodes& codes, void* scratch,
                          const GroupNormStatsIo& stats) {
  float* none = nullptr;  // y is not written
  if (xdt == DType::BF16)
    group_norm_t(static_cast<const uint16_t*>(x), add_nc, gamma, beta, N, P, C, G, eps, silu, none,
                 scratch, stats, codes);
  else
    group_norm_t(static_cast<const float*>(x), add_nc, gamma, beta, N, P, C, G, eps, silu, none,
                 scratch, stats, codes);
}

void layer_norm_row_codes(const void* x, DType xdt, const float* gamma, const float* beta,
                          int64_t rows, int64_t C, float eps, const RowCodes& codes) {
  // Codes exist where int8_gemm runs: AVX512-VNNI or AVX-VNNI (AVX2 kernels, f32 rows there).
  const KernelIsa isa = kernel_isa();
  const RowQuantiser quantise_row = row_quantiser();
#pragma omp parallel
  {
    std::vector<float> row(static_cast<size_t>(C));  // the normalised row, in L1
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const auto* xh = static_cast<const uint16_t*>(x) + r * C;
      const auto* xf = static_cast<const float*>(x) + r * C;
      if (isa == KernelIsa::Avx512 && xdt == DType::BF16)
        ln_row_avx512(xh, gamma, beta, C, eps, row.data());
      else if (isa == KernelIsa::Avx512)
        ln_row_avx512(xf, gamma, beta, C, eps, row.data());
      else if (xdt == DType::BF16)
        ln_row_scalar(xh, gamma, beta, C, eps, row.data());
      else
        ln_row_avx2(xf, gamma, beta, C, eps, row.data());
      quantise_row(row.data(), C, codes.q + r * C, codes.scale[r], codes.zero[r]);
    }
  }
}

void layer_norm(const void* x, DType xdt, const float* gamma, const float* beta, int64_t rows,
                int64_t C, float eps, void* y, DType ydt) {
  const bool xb = xdt == DType::BF16, yb = ydt == DType::BF16;
  auto* xf = static_cast<const float*>(x);
  auto* xh = static_cast<const uint16_t*>(x);
  auto* yf = static_cast<float*>(y);
  auto* yh = static_cast<uint16_t*>(y);
  if (xb && yb) layer_norm_t(xh, gamma, beta, rows, C, eps, yh);
  if (xb && !yb) layer_norm_t(xh, gamma, beta, rows, C, eps, yf);
  if (!xb && yb) layer_norm_t(xf, gamma, beta, rows, C, eps, yh);
  if (!xb && !yb) layer_norm_t(xf, gamma, beta, rows, C, eps, yf);
}

}  // namespace sdc::cpu
