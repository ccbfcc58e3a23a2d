// PyTorch CPU generator and randn, reproduced; see torch_generator.h for the algorithm.

#include "common/strict_float.h"  // first: PyTorch rounding, no fused multiply-add

#include "sampling/rng/torch_generator.h"

#include <cmath>
#include <cstring>
#include <numbers>
#include <string>

#include "common/error.h"

namespace sdc::sampling {
namespace {

// PyTorch's randn fills float tensors with its AVX2 kernel (normal_fill_16_AVX2), whose log, sin
// and cos are the Cephes single-precision polynomials (avx_mathfun), compiled with fused
// multiply-adds. Reproducing those exact operations — each std::fma below stands where GCC fused
// a multiply into the add or subtract that uses it (the first such multiply in program order) —
// gives bit-identical values (verified on every randn of the fixtures); libm's logf/sinf/cosf, or
// other fusion choices, differ by an ulp here and there. No product here feeds a plain addition
// any more, so a compiler has nothing left to contract.

// Natural log for x in (0, 1] (the Box–Muller radius): x = m * 2^e with m in [sqrt(1/2), sqrt(2)),
// then a degree-9 polynomial in (m - 1) and ln 2 split in two parts.
float cephes_logf(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  const int exponent = static_cast<int>(bits >> 23) - 0x7f;
  bits = (bits & ~0x7f800000u) | 0x3f000000u;  // mantissa with exponent of 0.5: [0.5, 1)
  float m;
  std::memcpy(&m, &bits, sizeof m);
  float e = static_cast<float>(exponent) + 1.0f;
  if (m < 0.707106781186547524f) {
    m = (m - 1.0f) + m;  // 2m - 1
    e = e - 1.0f;
  } else {
    m = m - 1.0f;
  }
  const float z = m * m;
  float y = 7.0376836292e-2f;
  y = std::fma(y, m, -1.1514610310e-1f);
  y = std::fma(y, m, 1.1676998740e-1f);
  y = std::fma(y, m, -1.2420140846e-1f);
  y = std::fma(y, m, 1.4249322787e-1f);
  y = std::fma(y, m, -1.6668057665e-1f);
  y = std::fma(y, m, 2.0000714765e-1f);
  y = std::fma(y, m, -2.4999993993e-1f);
  y = std::fma(y, m, 3.3333331174e-1f);
  y = y * m;
  y = std::fma(y, z, e * -2.12194440e-4f);
  y = std::fma(-z, 0.5f, y);
  return std::fma(e, 0.693359375f, m + y);
}

// sin and cos of x >= 0 (the Box–Muller angle 2 pi u lies in [0, 2 pi)): reduction by pi/4 in
// three parts (octant j made even), then the sine or cosine polynomial depending on the octant.
void cephes_sincosf(float x, float* sin_out, float* cos_out) {
  const bool negative = x < 0.0f;
  x = std::fabs(x);
  int j = static_cast<int>(x * 1.27323954473516f);  // x * 4/pi, truncated
  j = (j + 1) & ~1;
  const float y = static_cast<float>(j);
  const bool sin_negative = negative != ((j & 4) != 0);
  const bool cos_negative = ((~(j - 2)) & 4) != 0;
  const bool sine_poly_for_sin = (j & 2) == 0;
  x = std::fma(y, -0.78515625f, x);
  x = std::fma(y, -2.4187564849853515625e-4f, x);
  x = std::fma(y, -3.77489497744594108e-8f, x);
  const float z = x * x;

  float c = 2.443315711809948e-5f;
  c = std::fma(c, z, -1.388731625493765e-3f);
  c = std::fma(c, z, 4.166664568298827e-2f);
  c = c * z;
  c = std::fma(c, z, -(z * 0.5f));
  c = c + 1.0f;

  float s = -1.9515295891e-4f;
  s = std::fma(s, z, 8.3321608736e-3f);
  s = std::fma(s, z, -1.6666654611e-1f);
  s = s * z;
  s = std::fma(s, x, x);

  const float sin_v = sine_poly_for_sin ? s : c;
  const float cos_v = sine_poly_for_sin ? c : s;
  *sin_out = sin_negative ? -sin_v : sin_v;
  *cos_out = cos_negative ? -cos_v : cos_v;
}

// One Box–Muller block of 16 uniforms: element j pairs with j + 8.
void normal_fill_16(float* data) {
  const float two_pi = static_cast<float>(2.0 * std::numbers::pi);
  for (int j = 0; j < 8; ++j) {
    const float u1 = 1.0f - data[j];  // [0, 1) -> (0, 1] for the log
    const float u2 = data[j + 8];
    const float radius = std::sqrt(-2.0f * cephes_logf(u1));
    float sin_t, cos_t;
    cephes_sincosf(two_pi * u2, &sin_t, &cos_t);
    data[j] = radius * cos_t;
    data[j + 8] = radius * sin_t;
  }
}

}  // namespace

TorchGenerator::TorchGenerator(uint64_t seed) {
  manual_seed(seed);
}

void TorchGenerator::manual_seed(uint64_t seed) {
  seed_ = seed;
  engine_.seed(static_cast<uint32_t>(seed & 0xffffffffu));
  next_double_normal_.reset();
}

uint32_t TorchGenerator::random() {
  return static_cast<uint32_t>(engine_());
}

uint64_t TorchGenerator::random64() {
  const uint64_t hi = random();
  const uint64_t lo = random();
  return (hi << 32) | lo;
}

float TorchGenerator::uniform_float() {
  constexpr uint32_t kMask = (1u << 24) - 1;
  return static_cast<float>(random() & kMask) * (1.0f / static_cast<float>(1u << 24));
}

double TorchGenerator::uniform_double() {
  constexpr uint64_t kMask = (uint64_t(1) << 53) - 1;
  return static_cast<double>(random64() & kMask) * (1.0 / static_cast<double>(uint64_t(1) << 53));
}

double TorchGenerator::normal_double() {
  if (next_double_normal_) {
    const double v = *next_double_normal_;
    next_double_normal_.reset();
    return v;
  }
  const double u1 = uniform_double();
  const double u2 = uniform_double();
  const double r = std::sqrt(-2.0 * std::log1p(-u2));
  const double theta = 2.0 * std::numbers::pi * u1;
  next_double_normal_ = r * std::sin(theta);
  return r * std::cos(theta);
}

void TorchGenerator::normal_fill(float* data, size_t n) {
  for (size_t i = 0; i < n; ++i) data[i] = uniform_float();
  for (size_t i = 0; i + 16 <= n; i += 16) normal_fill_16(data + i);
  if (n % 16 != 0) {
    // PyTorch redraws the last 16 values (overlapping the last full block) and transforms them.
    float* tail = data + n - 16;
    for (size_t i = 0; i < 16; ++i) tail[i] = uniform_float();
    normal_fill_16(tail);
  }
}

void TorchGenerator::randn(float* out, size_t n) {
  if (n >= 16) {
    normal_fill(out, n);
  } else {
    for (size_t i = 0; i < n; ++i) out[i] = static_cast<float>(normal_double());
  }
}

std::vector<float> TorchGenerator::randn(size_t n) {
  std::vector<float> v(n);
  randn(v.data(), n);
  return v;
}

std::vector<float> TorchGenerator::randn(const std::vector<int64_t>& shape) {
  size_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw Error("", "randn shape", "dimensions >= 0", std::to_string(d));
    n *= static_cast<size_t>(d);
  }
  return randn(n);
}

uint64_t random_seed() {
  std::random_device rd;
  return static_cast<uint64_t>(rd()) & 0xffffffffu;
}

}  // namespace sdc::sampling
