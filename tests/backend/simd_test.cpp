// The vector exp of the own kernels' AVX2 path (simd256::exp, simd_avx2.h) against std::exp over
// its whole range: the softmax's arguments (<= 0), SiLU's, and the top octave of f32 below
// overflow, where 2^n needs two factors; below the normal range it gives 0, above it +inf. Its
// exp2 (the queries-in-lanes attention's softmax) likewise against std::exp2, its division-free
// SiLU against x / (1 + e^-x), and AVX-512's
// gelu_fast against the erf GELU; the int8 GEGLU's form of gelu_fast (six vectors at once, each
// step across them) against one vector at a time, on both widths.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/simd.h"
#include "backend/cpu/simd_avx2.h"

namespace sdc::test {
namespace {

SDC_AVX2 void exp8(const float* x, float* y) {
  _mm256_storeu_ps(y, cpu::simd256::exp(_mm256_loadu_ps(x)));
}

TEST(Simd256, ExpMatchesStdExpOverItsRange) {
  if (!cpu::cpu_features().avx2) GTEST_SKIP() << "no AVX2 + FMA here";
  double worst = 0;
  for (float x0 = -87.25f; x0 < 88.7f; x0 += 8 * 0.0137f) {
    float x[8], y[8];
    for (int i = 0; i < 8; ++i) x[i] = std::min(x0 + float(i) * 0.0137f, 88.7f);
    exp8(x, y);
    for (int i = 0; i < 8; ++i) {
      const double want = std::exp(double(x[i]));
      if (want > std::numeric_limits<float>::max()) {
        EXPECT_TRUE(std::isinf(y[i])) << x[i];
        continue;
      }
      const double err = std::fabs(double(y[i]) - want) / want;
      worst = std::max(worst, err);
      ASSERT_LT(err, 1e-6) << "exp(" << x[i] << ") = " << y[i] << ", want " << want;
    }
  }
  EXPECT_LT(worst, 5e-7);
  float x[8] = {-1000.f, -90.f, -87.4f, 0.f, 88.5f, 88.72f, 90.f, 1000.f}, y[8];
  exp8(x, y);
  EXPECT_EQ(y[0], 0.f);
  EXPECT_EQ(y[1], 0.f);
  EXPECT_EQ(y[2], 0.f);
  EXPECT_EQ(y[3], 1.f);
  EXPECT_NEAR(y[4] / std::exp(88.5), 1.0, 1e-6) << "top octave: 2^128 in two factors";
  EXPECT_TRUE(std::isinf(y[5]) || std::fabs(y[5] / std::exp(88.72) - 1.0) < 1e-6);
  EXPECT_TRUE(std::isinf(y[6]));
  EXPECT_TRUE(std::isinf(y[7]));
}

SDC_AVX2 void exp2_8(const float* x, float* y) {
  _mm256_storeu_ps(y, cpu::simd256::exp2(_mm256_loadu_ps(x)));
}

TEST(Simd256, Exp2MatchesStdExp2OverItsRange) {
  if (!cpu::cpu_features().avx2) GTEST_SKIP() << "no AVX2 + FMA here";
  double worst = 0;
  for (float x0 = -126.f; x0 < 128.f; x0 += 8 * 0.00917f) {
    float x[8], y[8];
    for (int i = 0; i < 8; ++i) x[i] = std::min(x0 + float(i) * 0.00917f, 127.99f);
    exp2_8(x, y);
    for (int i = 0; i < 8; ++i) {
      const double want = std::exp2(double(x[i]));
      const double err = std::fabs(double(y[i]) - want) / want;
      worst = std::max(worst, err);
      ASSERT_LT(err, 1e-6) << "exp2(" << x[i] << ") = " << y[i] << ", want " << want;
    }
  }
  EXPECT_LT(worst, 3e-7);
  // Below -126 (subnormal results) 0, as for a masked score's -1e30 scaled; from 128 on +inf.
  float x[8] = {-2e29f, -1000.f, -126.5f, -126.f, 0.f, 1.f, 128.f, 1000.f}, y[8];
  exp2_8(x, y);
  EXPECT_EQ(y[0], 0.f);
  EXPECT_EQ(y[1], 0.f);
  EXPECT_EQ(y[2], 0.f);
  EXPECT_NEAR(y[3] / std::exp2(-126.0), 1.0, 3e-7) << "the smallest normal power";
  EXPECT_NEAR(y[4], 1.0, 3e-7);
  EXPECT_NEAR(y[5], 2.0, 6e-7);
  EXPECT_TRUE(std::isinf(y[6]));
  EXPECT_TRUE(std::isinf(y[7]));
}

SDC_AVX2 void silu8(const float* x, float* y) {
  _mm256_storeu_ps(y, cpu::simd256::silu(_mm256_loadu_ps(x)));
}

// SiLU without a division (the AVX2 GroupNorm+SiLU's): within a few ulps of x / (1 + e^-x) from
// -90 to 90, and its limits past them: 0 for very negative finite x, x for very positive x and
// +inf, NaN for NaN.
TEST(Simd256, SiluMatchesTheSigmoidFormOverItsRange) {
  if (!cpu::cpu_features().avx2) GTEST_SKIP() << "no AVX2 + FMA here";
  double worst = 0;
  for (float x0 = -90.f; x0 < 90.f; x0 += 8 * 0.0113f) {
    float x[8], y[8];
    for (int i = 0; i < 8; ++i) x[i] = x0 + float(i) * 0.0113f;
    silu8(x, y);
    for (int i = 0; i < 8; ++i) {
      const double want = double(x[i]) / (1.0 + std::exp(-double(x[i])));
      if (std::fabs(want) < 1e-30) {  // below f32's normal range: ~0 of either sign
        EXPECT_LT(std::fabs(y[i]), 1e-30f) << x[i];
        continue;
      }
      const double err = std::fabs(double(y[i]) - want) / std::fabs(want);
      worst = std::max(worst, err);
      ASSERT_LT(err, 1e-6) << "silu(" << x[i] << ") = " << y[i] << ", want " << want;
    }
  }
  EXPECT_LT(worst, 5e-7);
  const float inf = std::numeric_limits<float>::infinity();
  float x[8] = {-3e38f, -1e30f, -1000.f, 0.f,
                1e-30f, 1000.f, inf,     std::numeric_limits<float>::quiet_NaN()},
        y[8];
  silu8(x, y);
  EXPECT_EQ(y[0], 0.f);  // -0 compares equal
  EXPECT_EQ(y[1], 0.f);
  EXPECT_EQ(y[2], 0.f);
  EXPECT_EQ(y[3], 0.f);
  EXPECT_NEAR(y[4], 0.5e-30f, 1e-36f);
  EXPECT_FLOAT_EQ(y[5], 1000.f);
  EXPECT_EQ(y[6], inf);
  EXPECT_TRUE(std::isnan(y[7]));
}

SDC_AVX512 void gelu_fast16(const float* x, float* y) {
  _mm512_storeu_ps(y, cpu::simd::gelu_fast(_mm512_loadu_ps(x)));
}

TEST(Simd512, GeluFastIsTheErfGeluWithinItsBound) {
  if (!cpu::use_avx512_kernels()) GTEST_SKIP() << "no AVX-512 here";
  for (float x0 = -12.f; x0 < 12.f; x0 += 16 * 0.00731f) {
    float x[16], y[16];
    for (int i = 0; i < 16; ++i) x[i] = x0 + float(i) * 0.00731f;
    gelu_fast16(x, y);
    for (int i = 0; i < 16; ++i) {
      const double want = 0.5 * x[i] * std::erfc(-double(x[i]) / std::sqrt(2.0));
      ASSERT_LE(std::fabs(y[i] - want), 1e-6 * std::fabs(x[i])) << "x = " << x[i];
    }
  }
  const float big[16] = {1e30f, -1e30f, 50.f, -50.f, 0.f, -0.f, 1e-30f, -1e-30f,
                         3.f,   -3.f,   9.9f, -9.9f, 1.f, -1.f, 0.5f,   -0.5f};
  float y[16];
  gelu_fast16(big, y);
  EXPECT_EQ(y[0], 1e30f);
  EXPECT_EQ(y[1], 0.f);
  EXPECT_EQ(y[2], 50.f);
  EXPECT_EQ(y[4], 0.f);
}

// Six vectors at once (the int8 GEGLU epilogue's rows) and one at a time: the same operations
// in another order, so the same bits.
SDC_AVX512 void gelu_fast_both16(const float* x, float* one, float* six) {
  __m512 v[6];
  for (int i = 0; i < 6; ++i) {
    v[i] = _mm512_loadu_ps(x + 16 * i);
    _mm512_storeu_ps(one + 16 * i, cpu::simd::gelu_fast(v[i]));
  }
  cpu::simd::gelu_fast(v);
  for (int i = 0; i < 6; ++i) _mm512_storeu_ps(six + 16 * i, v[i]);
}
SDC_AVX2 void gelu_fast_both8(const float* x, float* one, float* six) {
  __m256 v[6];
  for (int i = 0; i < 6; ++i) {
    v[i] = _mm256_loadu_ps(x + 8 * i);
    _mm256_storeu_ps(one + 8 * i, cpu::simd256::gelu_fast(v[i]));
  }
  cpu::simd256::gelu_fast(v);
  for (int i = 0; i < 6; ++i) _mm256_storeu_ps(six + 8 * i, v[i]);
}

TEST(Simd, GeluFastOnSixVectorsIsOneVectorAtATime) {
  float x[96], one[96], six[96];
  // Both signs, the far tails (|x| / sqrt 2 >= 7) and 0.
  for (int i = 0; i < 96; ++i) x[i] = (float(i) - 47.5f) * 0.27f;
  x[0] = 0.f;
  if (cpu::use_avx512_kernels()) {
    gelu_fast_both16(x, one, six);
    for (int i = 0; i < 96; ++i) EXPECT_EQ(one[i], six[i]) << "AVX-512, x = " << x[i];
  }
  if (cpu::cpu_features().avx2) {
    gelu_fast_both8(x, one, six);
    for (int i = 0; i < 48; ++i) EXPECT_EQ(one[i], six[i]) << "AVX2, x = " << x[i];
  }
}

}  // namespace
}  // namespace sdc::test
