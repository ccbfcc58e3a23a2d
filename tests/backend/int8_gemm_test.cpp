// int8_gemm and quantise_rows against scalar references: the row codes, scales and zero points by
// the formula int8_gemm.h states; the product from the weights' own s8 values (quantised here by
// pack_int8_weight's rule, not read back from the packed layout, so a wrong reading of oneDNN's
// BA16a64b4a layout fails), accumulated exactly, for row counts around the tile's 6, one to three
// threads, each residual mode and f32/bf16 outputs and addends.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <ostream>
#include <string>

#include <oneapi/dnnl/dnnl.hpp>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/int8_gemm.h"
#include "backend/cpu/int8_weights.h"
#include "reference.h"

namespace sdc::test {
namespace {

using dnnl::memory;

// Runs body once per int8_gemm build this CPU has: AVX512-VNNI (the own kernels at full width)
// and AVX-VNNI (capped at AVX2, the build Intel desktops without AVX-512 run); how many ran.
int for_each_gemm_build(const std::function<void()>& body) {
  int ran = 0;
  for (const cpu::KernelIsa cap : {cpu::KernelIsa::Avx512, cpu::KernelIsa::Avx2}) {
    cpu::force_kernel_isa(cap);
    const std::string isa = cpu::int8_gemm_isa();
    if (isa.empty() || (cap == cpu::KernelIsa::Avx512) != (isa == "avx512_vnni")) continue;
    SCOPED_TRACE(isa);
    body();
    ++ran;
  }
  cpu::force_kernel_isa(cpu::KernelIsa::Avx512);
  return ran;
}

TEST(QuantiseRows, EachRowGetsItsOwnScaleAndZeroPoint) {
  const int builds = for_each_gemm_build([&] {
    const int64_t M = 7, K = 45;  // a masked tail in every row
    Vec x = random_vec(M * K, 3, -2.f, 1.f);
    for (int64_t k = 0; k < K; ++k) {
      x[size_t(1 * K + k)] = 0.f;                           // all zero
      x[size_t(2 * K + k)] = 0.5f + 0.01f * float(k);       // all positive
      x[size_t(3 * K + k)] = -3.f + 0.02f * float(k);       // all negative
      x[size_t(4 * K + k)] = 100.f * x[size_t(4 * K + k)];  // far from the others
    }
    for (DType t : {DType::F32, DType::BF16}) {
      SCOPED_TRACE(dtype_name(t));
      std::vector<uint16_t> xb(x.size());
      for (size_t i = 0; i < x.size(); ++i) xb[i] = f32_to_bf16(x[i]);
      std::vector<uint8_t> q(size_t(M * K), 7);
      std::vector<float> scale(static_cast<size_t>(M)), zero(static_cast<size_t>(M));
      cpu::quantise_rows(t == DType::BF16 ? static_cast<const void*>(xb.data()) : x.data(), t, M, K,
                         {q.data(), scale.data(), zero.data()});
      for (int64_t m = 0; m < M; ++m) {
        auto value = [&](int64_t k) {
          const size_t i = size_t(m * K + k);
          return t == DType::BF16 ? bf16_to_f32(xb[i]) : x[i];
        };
        float lo = 0.f, hi = 0.f;
        for (int64_t k = 0; k < K; ++k) lo = std::min(lo, value(k)), hi = std::max(hi, value(k));
        const float s = hi > lo ? (hi - lo) / 255.f : 1.f;
        const float z = std::clamp(std::nearbyint(-lo / s), 0.f, 255.f);
        EXPECT_EQ(scale[size_t(m)], s) << "row " << m;
        EXPECT_EQ(zero[size_t(m)], z) << "row " << m;
        for (int64_t k = 0; k < K; ++k) {
          const float want = std::clamp(std::nearbyint(value(k) * (1.f / s)) + z, 0.f, 255.f);
          ASSERT_EQ(q[size_t(m * K + k)], uint8_t(want)) << "row " << m << " column " << k;
          // and the code stands for the value within half a step
          EXPECT_LE(std::fabs((float(q[size_t(m * K + k)]) - z) * s - value(k)),
                    0.5f * s * 1.0001f);
        }
      }
      EXPECT_EQ(zero[1], 0.f);  // a row of zeros: codes 0 stand for 0
      EXPECT_EQ(zero[2], 0.f);
      EXPECT_EQ(zero[3], 255.f);
    }
  });
  if (builds == 0) GTEST_SKIP() << "no VNNI int8 GEMM here";
}

TEST(Int8Gemm, FitsOnlyWholeChannelBlocksAndInputGroups) {
  const int builds = for_each_gemm_build([&] {
    EXPECT_TRUE(cpu::int8_gemm_fits(320, 1280));
    EXPECT_FALSE(cpu::int8_gemm_fits(320, 1000));  // N not a multiple of 64
    EXPECT_FALSE(cpu::int8_gemm_fits(24, 64));     // K not a multiple of 16
    EXPECT_FALSE(cpu::int8_gemm_fits(0, 64));
  });
  if (builds == 0) GTEST_SKIP() << "no VNNI int8 GEMM here";
}

struct GemmCase {
  int64_t M, K, N;
  cpu::GemmResidual residual;
  DType out, addend;
  bool bias;
  int threads;
};
void PrintTo(const GemmCase& c, std::ostream* os) {
  *os << c.M << "x" << c.K << " -> " << c.N << " residual " << int(c.residual) << " out "
      << dtype_name(c.out) << " addend " << dtype_name(c.addend) << (c.bias ? " bias" : "")
      << " threads " << c.threads;
}

class Int8GemmProduct : public testing::TestWithParam<GemmCase> {};

TEST_P(Int8GemmProduct, MatchesTheExactProductOfItsCodes) {
  const int builds = for_each_gemm_build([&] {
    const GemmCase c = GetParam();
    const int64_t M = c.M, K = c.K, N = c.N;
    // Weights [N, K] as PyTorch holds them; their s8 values by pack_int8_weight's rule.
    Vec wf = random_vec(N * K, 11, -0.3f, 0.3f);
    for (int64_t k = 0; k < K; ++k) wf[size_t(5 * K + k)] = 0.f;  // an all-zero channel
    const Vec bias = random_vec(N, 12, -1.f, 1.f);
    const TensorRef wt = TensorRef::from_f32(wf, {N, K}, DType::F32);
    const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    const cpu::Int8Packed packed = cpu::pack_int8_weight(
        wt, memory::desc({K, N}, memory::data_type::s8, memory::format_tag::ba),
        memory::desc({K, N}, memory::data_type::s8, memory::format_tag::BA16a64b4a), engine);
    std::vector<float> ws(static_cast<size_t>(N));
    std::vector<int8_t> v(size_t(N * K));
    for (int64_t o = 0; o < N; ++o) {
      float m = 0.f;
      for (int64_t k = 0; k < K; ++k) m = std::max(m, std::fabs(wf[size_t(o * K + k)]));
      ws[size_t(o)] = m > 0.f ? m / 127.f : 1.f;
      for (int64_t k = 0; k < K; ++k)
        v[size_t(o * K + k)] = int8_t(std::nearbyint(wf[size_t(o * K + k)] / ws[size_t(o)]));
    }
    ASSERT_EQ(0, std::memcmp(ws.data(), packed.scales->data(), ws.size() * sizeof(float)));

    // Codes of every value, rows with their own scales and zero points.
    std::vector<uint8_t> q(size_t(M * K));
    std::vector<float> scale(static_cast<size_t>(M)), zero(static_cast<size_t>(M));
    std::mt19937 rng(13);
    for (auto& x : q) x = uint8_t(rng() % 256);
    for (int64_t m = 0; m < M; ++m) {
      scale[size_t(m)] = std::ldexp(1.f + float(m % 5) * 0.1f, -int(m % 4) - 6);
      zero[size_t(m)] = float(rng() % 256);
    }
    const Vec base = random_vec(M * N, 14, -2.f, 2.f);
    std::vector<uint16_t> base_bf16(base.size());
    for (size_t i = 0; i < base.size(); ++i) base_bf16[i] = f32_to_bf16(base[i]);
    auto base_at = [&](size_t i, DType t) {
      return t == DType::BF16 ? bf16_to_f32(base_bf16[i]) : base[i];
    };

    // The output buffer (holding the residual for Sum) and the addend (Add).
    Vec y32(size_t(M * N), 0.f);
    std::vector<uint16_t> y16(size_t(M * N), 0);
    if (c.residual == cpu::GemmResidual::Sum) {
      y32 = base;
      y16 = base_bf16;
    }
    cpu::Int8GemmWeights w;
    w.values = static_cast<const int8_t*>(packed.values->data());
    w.scales = static_cast<const float*>(packed.scales->data());
    w.sums = static_cast<const int32_t*>(packed.sums->data());
    w.bias = c.bias ? bias.data() : nullptr;
    w.K = K;
    w.N = N;
    cpu::Int8GemmOutput out;
    out.y = c.out == DType::BF16 ? static_cast<void*>(y16.data()) : y32.data();
    out.type = c.out;
    out.residual = c.residual;
    out.addend = c.addend == DType::BF16 ? static_cast<const void*>(base_bf16.data()) : base.data();
    out.addend_type = c.addend;
    const int saved = omp_get_max_threads();
    omp_set_num_threads(c.threads);
    cpu::int8_gemm({q.data(), scale.data(), zero.data()}, M, w, out);
    omp_set_num_threads(saved);

    double worst = 0.0;
    for (int64_t m = 0; m < M; ++m)
      for (int64_t o = 0; o < N; ++o) {
        int64_t acc = 0, sum = 0;
        for (int64_t k = 0; k < K; ++k) {
          acc += int64_t(q[size_t(m * K + k)]) * v[size_t(o * K + k)];
          sum += v[size_t(o * K + k)];
        }
        const double f = double(scale[size_t(m)]) * ws[size_t(o)];
        const double a = f * double(acc), b = f * zero[size_t(m)] * double(sum);
        double want = a - b + (c.bias ? bias[size_t(o)] : 0.0),
               size = std::fabs(a) + std::fabs(b) + 1.0;
        const size_t i = size_t(m * N + o);
        if (c.residual == cpu::GemmResidual::Sum) want += base_at(i, c.out);
        if (c.residual == cpu::GemmResidual::Add) want += base_at(i, c.addend);
        if (c.residual != cpu::GemmResidual::None) size += 2.0;
        const double got = c.out == DType::BF16 ? bf16_to_f32(y16[i]) : y32[i];
        // f32 arithmetic on exact sums; a bf16 output rounds once more, at 2^-9 of the value.
        const double bound = 2e-6 * size + (c.out == DType::BF16 ? std::fabs(want) / 256.0 : 0.0);
        worst = std::max(worst, std::fabs(got - want) / bound);
        ASSERT_LE(std::fabs(got - want), bound) << "row " << m << " channel " << o;
      }
    EXPECT_LE(worst, 1.0);
  });
  if (builds == 0) GTEST_SKIP() << "no VNNI int8 GEMM here";
}

using R = cpu::GemmResidual;
INSTANTIATE_TEST_SUITE_P(
    Shapes, Int8GemmProduct,
    testing::Values(GemmCase{1, 16, 64, R::None, DType::F32, DType::F32, false, 1},
                    GemmCase{5, 48, 128, R::None, DType::F32, DType::F32, true, 2},
                    GemmCase{6, 64, 64, R::Sum, DType::BF16, DType::F32, true, 1},
                    GemmCase{7, 320, 320, R::Sum, DType::F32, DType::F32, true, 2},
                    GemmCase{13, 320, 192, R::Add, DType::BF16, DType::BF16, true, 3},
                    GemmCase{64, 128, 256, R::Add, DType::F32, DType::BF16, false, 2},
                    GemmCase{11, 64, 128, R::Add, DType::BF16, DType::F32, true, 1},
                    GemmCase{9, 192, 64, R::Add, DType::F32, DType::F32, true, 2},
                    GemmCase{257, 160, 128, R::None, DType::BF16, DType::F32, true, 2},
                    GemmCase{257, 160, 128, R::Sum, DType::BF16, DType::F32, true, 3},
                    // A thread's codes past 512 KiB and every block's panel in less: chunks of
                    // 144 rows through both blocks, the last chunk and tile short.
                    GemmCase{3301, 448, 128, R::Sum, DType::BF16, DType::F32, true, 2}));

}  // namespace
}  // namespace sdc::test

namespace sdc::test {
namespace {

// A projection's s8 values, weight scales and packed form, by pack_int8_weight's rule.
struct Projection {
  std::vector<int8_t> values;  // [N, K]
  std::vector<float> scales;
  Vec bias;
  cpu::Int8Packed packed;
  cpu::Int8GemmWeights operands(int64_t K, int64_t N) const {
    cpu::Int8GemmWeights w;
    w.values = static_cast<const int8_t*>(packed.values->data());
    w.scales = static_cast<const float*>(packed.scales->data());
    w.sums = static_cast<const int32_t*>(packed.sums->data());
    w.bias = bias.data();
    w.K = K;
    w.N = N;
    return w;
  }
  // scale[m] scales[o] (acc - zero[m] sum) + bias[o], exactly.
  double at(const std::vector<uint8_t>& q, float scale, float zero, int64_t m, int64_t o,
            int64_t K) const {
    int64_t acc = 0, sum = 0;
    for (int64_t k = 0; k < K; ++k) {
      acc += int64_t(q[size_t(m * K + k)]) * values[size_t(o * K + k)];
      sum += values[size_t(o * K + k)];
    }
    return double(scale) * scales[size_t(o)] * (double(acc) - double(zero) * double(sum)) +
           bias[size_t(o)];
  }
};

Projection projection(int64_t K, int64_t N, uint32_t seed) {
  Projection p;
  const Vec wf = random_vec(N * K, seed, -0.3f, 0.3f);
  p.bias = random_vec(N, seed + 1, -1.f, 1.f);
  p.scales.resize(size_t(N));
  p.values.resize(size_t(N * K));
  for (int64_t o = 0; o < N; ++o) {
    float m = 0.f;
    for (int64_t k = 0; k < K; ++k) m = std::max(m, std::fabs(wf[size_t(o * K + k)]));
    p.scales[size_t(o)] = m > 0.f ? m / 127.f : 1.f;
    for (int64_t k = 0; k < K; ++k)
      p.values[size_t(o * K + k)] =
          int8_t(std::nearbyint(wf[size_t(o * K + k)] / p.scales[size_t(o)]));
  }
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  p.packed = cpu::pack_int8_weight(
      TensorRef::from_f32(wf, {N, K}, DType::F32),
      memory::desc({K, N}, memory::data_type::s8, memory::format_tag::ba),
      memory::desc({K, N}, memory::data_type::s8, memory::format_tag::BA16a64b4a), engine);
  return p;
}

TEST(Int8GemmGeglu, IsTheValueProductTimesTheGeluOfTheGateProduct) {
  const int builds = for_each_gemm_build([&] {
    const int64_t K = 80, N = 128;  // K padded to 128 in the layout
    const Projection value = projection(K, N, 21), gate = projection(K, N, 23);
    for (const int64_t M : {int64_t(5), int64_t(61)})
      for (const DType t : {DType::F32, DType::BF16})
        for (const int threads : {1, 2}) {
          SCOPED_TRACE(testing::Message()
                       << M << " rows, " << dtype_name(t) << ", " << threads << " threads");
          std::vector<uint8_t> q(static_cast<size_t>(M * K));
          std::vector<float> scale(static_cast<size_t>(M)), zero(static_cast<size_t>(M));
          std::mt19937 rng(25);
          for (auto& x : q) x = uint8_t(rng() % 256);
          for (int64_t m = 0; m < M; ++m) {
            scale[size_t(m)] = std::ldexp(1.f, -6 - int(m % 3));
            zero[size_t(m)] = float(rng() % 256);
          }
          Vec y32(static_cast<size_t>(M * N));
          std::vector<uint16_t> y16(static_cast<size_t>(M * N));
          cpu::Int8GemmOutput out;
          out.y = t == DType::BF16 ? static_cast<void*>(y16.data()) : y32.data();
          out.type = t;
          const int saved = omp_get_max_threads();
          omp_set_num_threads(threads);
          cpu::int8_gemm_geglu({q.data(), scale.data(), zero.data()}, M, value.operands(K, N),
                               gate.operands(K, N), out);
          omp_set_num_threads(saved);
          for (int64_t m = 0; m < M; ++m)
            for (int64_t o = 0; o < N; ++o) {
              const double v = value.at(q, scale[size_t(m)], zero[size_t(m)], m, o, K);
              const double g = gate.at(q, scale[size_t(m)], zero[size_t(m)], m, o, K);
              const double want = v * 0.5 * g * std::erfc(-g / std::sqrt(2.0));
              const size_t i = size_t(m * N + o);
              const double got = t == DType::BF16 ? bf16_to_f32(y16[i]) : y32[i];
              const double bound = 1e-5 * (std::fabs(v) + 1.0) * (std::fabs(g) + 1.0) +
                                   (t == DType::BF16 ? std::fabs(want) / 256.0 : 0.0);
              ASSERT_LE(std::fabs(got - want), bound) << "row " << m << " channel " << o;
            }
        }
  });
  if (builds == 0) GTEST_SKIP() << "no VNNI int8 GEMM here";
}

}  // namespace
}  // namespace sdc::test
