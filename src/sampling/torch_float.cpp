// PyTorch- and numpy-exact float helpers; see torch_float.h.

#include "common/strict_float.h"  // first: PyTorch rounding, no fused multiply-add

#include "sampling/torch_float.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include <immintrin.h>

// libsleef's AVX2 entry points (sleef.h declares them only when the whole file is built with
// AVX; here only the functions calling them are). The target attribute on each declaration keeps
// the vector ABI right under GCC and clang alike.
#define SDC_SLEEF_AVX2 __attribute__((target("avx2,fma")))
extern "C" {
SDC_SLEEF_AVX2 __m256 Sleef_logf8_u10avx2(__m256);
SDC_SLEEF_AVX2 __m256 Sleef_expf8_u10avx2(__m256);
SDC_SLEEF_AVX2 __m256 Sleef_tanf8_u10avx2(__m256);
SDC_SLEEF_AVX2 __m256 Sleef_expm1f8_u10avx2(__m256);
SDC_SLEEF_AVX2 __m256 Sleef_powf8_u10avx2(__m256, __m256);
}

namespace sdc::sampling {
namespace {

constexpr size_t kLanes = 8;                  // AVX2 Vectorized<float>
constexpr size_t kVectorStride = 2 * kLanes;  // vectorized_loop takes two vectors at a time

size_t vectorised_count(size_t n) {
  return n / kVectorStride * kVectorStride;
}

}  // namespace

// at::vml: every element through SLEEF, the tail as one partial vector (zero-padded).
#define SDC_TORCH_UNARY(name, sleef_fn)                                    \
  __attribute__((target("avx2,fma"))) void name(std::span<float> values) { \
    for (size_t i = 0; i < values.size(); i += kLanes) {                   \
      const size_t count = std::min(kLanes, values.size() - i);            \
      alignas(32) float lanes[kLanes] = {};                                \
      std::copy_n(values.data() + i, count, lanes);                        \
      _mm256_store_ps(lanes, sleef_fn(_mm256_load_ps(lanes)));             \
      std::copy_n(lanes, count, values.data() + i);                        \
    }                                                                      \
  }

SDC_TORCH_UNARY(torch_log_f32, Sleef_logf8_u10avx2)
SDC_TORCH_UNARY(torch_exp_f32, Sleef_expf8_u10avx2)
SDC_TORCH_UNARY(torch_tan_f32, Sleef_tanf8_u10avx2)
SDC_TORCH_UNARY(torch_expm1_f32, Sleef_expm1f8_u10avx2)
#undef SDC_TORCH_UNARY

__attribute__((target("avx2,fma"))) void torch_pow_f32(std::span<float> values, double exponent) {
  // pow_tensor_scalar's special cases first (exact formulas, no libm).
  if (exponent == 1.0) return;
  if (exponent == 2.0) {
    for (float& v : values) v = v * v;
    return;
  }
  if (exponent == 3.0) {
    for (float& v : values) v = v * v * v;
    return;
  }
  if (exponent == 0.5) {
    for (float& v : values) v = std::sqrt(v);
    return;
  }
  const __m256 e = _mm256_set1_ps(static_cast<float>(exponent));
  const size_t vectorised = vectorised_count(values.size());
  for (size_t i = 0; i < vectorised; i += kLanes)
    _mm256_storeu_ps(values.data() + i, Sleef_powf8_u10avx2(_mm256_loadu_ps(values.data() + i), e));
  for (size_t i = vectorised; i < values.size(); ++i)
    values[i] = static_cast<float>(std::pow(static_cast<double>(values[i]), exponent));
}

float t_log(float x) {
  torch_log_f32({&x, 1});
  return x;
}
float t_exp(float x) {
  torch_exp_f32({&x, 1});
  return x;
}
float t_expm1(float x) {
  torch_expm1_f32({&x, 1});
  return x;
}

// PyTorch 1.13's AVX2 linspace kernel (later versions dropped the vectorised path): step =
// (end - start) / (n - 1); elements come in vectors of 8 whose base is start + step * v
// (v < n / 2) or end - step * (n - 1 - v) otherwise, lane j adding j * step; the elements past the
// last pair of vectors use the scalar formula. GCC fused each multiply-add; std::fma reproduces
// that, and the sigmas then equal the fixtures' bit for bit.
std::vector<float> torch_linspace_f32(float start, float end, int n) {
  if (n <= 0) return {};
  if (n == 1) return {start};
  const int lanes = static_cast<int>(kLanes);
  const float step = (end - start) / static_cast<float>(n - 1);
  const int halfway = n / 2;
  const int vectorised = n / (2 * lanes) * (2 * lanes);  // whole pairs of vectors
  auto scalar = [&](int i) {
    return i < halfway ? std::fma(step, static_cast<float>(i), start)
                       : std::fma(-step, static_cast<float>(n - 1 - i), end);
  };
  std::vector<float> out(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    if (i >= vectorised) {
      out[i] = scalar(i);
      continue;
    }
    const int lane = i % lanes;
    const float base = scalar(i - lane);
    out[i] = base + static_cast<float>(lane) * step;
  }
  return out;
}

std::vector<double> numpy_linspace(double start, double stop, int n) {
  if (n <= 0) return {};
  if (n == 1) return {start};
  const double step = (stop - start) / static_cast<double>(n - 1);
  std::vector<double> out(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) out[i] = static_cast<double>(i) * step + start;
  out.back() = stop;
  return out;
}

double python_round(double x, int ndigits) {
  // glibc's printf converts the exact binary value and rounds it to nearest, ties to even, as
  // CPython's dtoa-based round() does; strtod then reads the decimal back correctly rounded.
  char buf[512];
  std::snprintf(buf, sizeof buf, "%.*f", ndigits, x);
  return std::strtod(buf, nullptr);
}

}  // namespace sdc::sampling
