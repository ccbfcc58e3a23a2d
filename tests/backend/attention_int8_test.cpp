// The int8 attention path (backend/cpu/attention_int8.h) against a reference in double that makes
// the same codes (same scales, same rounding, the same key blocks of the online softmax; the rules
// of attention_int8_codes.h), so only the kernel's f32 sums can differ: SD1.5's heads of 40, 80
// and 160, token counts off the block sizes, several images, f32 and bf16 storage, scores that
// move the running max. Also: its distance to exact attention, and when the planner picks it.
#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <ostream>
#include <string>

#include "backend/cpu/attention_int8.h"
#include "backend/cpu/attention_int8_codes.h"
#include "backend/cpu/attention_int8_kernels.h"
#include "backend/cpu/cpu_features.h"
#include "backend/cpu/plan.h"
#include "backend/cpu/prepacked_weights.h"
#include "graph/builders/int8_layers.h"
#include "reference.h"

namespace sdc::test {
namespace {

namespace ai = cpu::attn_int8;

struct Case {
  int64_t N, Tq, Tk, C, heads;
};

double absmax_of(const float* x, int64_t n, int64_t stride) {
  float m = 0.f;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, std::abs(x[i * stride]));
  return m;
}

// The int8 path's result computed in double from the same codes.
Vec int8_reference(const Case& c, const Vec& q, const Vec& k, const Vec& v) {
  const int64_t d = c.C / c.heads, C = c.C, Tk = c.Tk, bk = ai::key_block(d);
  const float scale = 1.f / std::sqrt(float(d));
  Vec y(static_cast<size_t>(c.N * c.Tq * C));
  std::vector<int32_t> kc(static_cast<size_t>(Tk * d)), vc(static_cast<size_t>(Tk * d)),
      qc(static_cast<size_t>(d));
  std::vector<float> ks(static_cast<size_t>(Tk)), vs(static_cast<size_t>(d)),
      s(static_cast<size_t>(bk));
  std::vector<double> o(static_cast<size_t>(d));
  for (int64_t n = 0; n < c.N; ++n)
    for (int64_t h = 0; h < c.heads; ++h) {
      const float* K = k.data() + n * Tk * C + h * d;
      const float* V = v.data() + n * Tk * C + h * d;
      std::vector<float> mean(static_cast<size_t>(d));
      for (int64_t e = 0; e < d; ++e) {
        double sum = 0;
        for (int64_t j = 0; j < Tk; ++j) sum += K[j * C + e];
        mean[size_t(e)] = float(sum / double(Tk));
      }
      for (int64_t j = 0; j < Tk; ++j) {
        std::vector<float> x(static_cast<size_t>(d));
        for (int64_t e = 0; e < d; ++e) x[size_t(e)] = K[j * C + e] - mean[size_t(e)];
        const float am = float(absmax_of(x.data(), d, 1)), inv = ai::code_inv(am);
        for (int64_t e = 0; e < d; ++e) kc[size_t(j * d + e)] = ai::code_s8(x[size_t(e)], inv);
        ks[size_t(j)] = ai::code_scale(am);
      }
      for (int64_t e = 0; e < d; ++e) {
        const float am = float(absmax_of(V + e, Tk, C)), inv = ai::code_inv(am);
        for (int64_t j = 0; j < Tk; ++j) vc[size_t(j * d + e)] = ai::code_s8(V[j * C + e], inv);
        vs[size_t(e)] = ai::code_scale(am);
      }
      for (int64_t i = 0; i < c.Tq; ++i) {
        const float* Q = q.data() + (n * c.Tq + i) * C + h * d;
        const float am = float(absmax_of(Q, d, 1)), inv = ai::code_inv(am);
        for (int64_t e = 0; e < d; ++e) qc[size_t(e)] = ai::code_s8(Q[e], inv);
        const float qa = ai::query_factor(am, scale);
        float m = -1e30f;
        double l = 0;
        std::fill(o.begin(), o.end(), 0.0);
        for (int64_t j0 = 0; j0 < Tk; j0 += bk) {
          const int64_t nk = std::min(bk, Tk - j0);
          float mn = m;
          for (int64_t j = 0; j < nk; ++j) {
            int64_t dot = 0;
            for (int64_t e = 0; e < d; ++e) dot += qc[size_t(e)] * kc[size_t((j0 + j) * d + e)];
            s[size_t(j)] = float(dot) * ks[size_t(j0 + j)];
            mn = std::max(mn, s[size_t(j)]);
          }
          // Codes relative to the block's max bm, weighted by 2^((bm - mn) qa) into the sums.
          const float bm = *std::max_element(s.begin(), s.begin() + nk);
          const double alpha = mn == m ? 1.0 : std::exp2(double(m - mn) * qa);
          const double beta = bm == mn ? 1.0 : std::exp2(double(bm - mn) * qa);
          const float shift = ai::p_shift(bm, qa);
          l *= alpha;
          for (double& x : o) x *= alpha;
          for (int64_t j = 0; j < nk; ++j) {
            const int32_t p = ai::p_code(s[size_t(j)], qa, shift);
            l += beta * p;
            for (int64_t e = 0; e < d; ++e) o[size_t(e)] += beta * p * vc[size_t((j0 + j) * d + e)];
          }
          m = mn;
        }
        for (int64_t e = 0; e < d; ++e)
          y[size_t((n * c.Tq + i) * C + h * d + e)] = float(o[size_t(e)] * vs[size_t(e)] / l);
      }
    }
  return y;
}

std::vector<uint16_t> to_bf16(const Vec& v) {
  std::vector<uint16_t> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = f32_to_bf16(v[i]);
  return r;
}

// Runs the int8 path on q, k, v stored as `in` (bf16: the values must already be bf16-exact),
// output stored as `out`, returned as f32.
Vec run_int8(const Case& c, const Vec& q, const Vec& k, const Vec& v, DType in, DType out,
             int threads = 2) {
  cpu::AttentionShape s;
  s.N = c.N;
  s.Tq = c.Tq;
  s.Tk = c.Tk;
  s.C = c.C;
  s.heads = c.heads;
  s.in = in;
  s.out = out;
  s.int8 = true;
  cpu::Int8Attention kernel(s, threads);
  std::unique_ptr<void, decltype(&std::free)> scratch(
      std::aligned_alloc(64, (kernel.scratch_bytes() + 63) / 64 * 64), &std::free);
  const size_t ny = size_t(c.N * c.Tq * c.C);
  std::vector<float> y(ny);
  std::vector<uint16_t> yb(ny);
  void* dst = out == DType::BF16 ? static_cast<void*>(yb.data()) : static_cast<void*>(y.data());
  if (in == DType::BF16) {
    const auto qb = to_bf16(q), kb = to_bf16(k), vb = to_bf16(v);
    kernel.run(qb.data(), kb.data(), vb.data(), dst, scratch.get());
  } else {
    kernel.run(q.data(), k.data(), v.data(), dst, scratch.get());
  }
  if (out == DType::BF16)
    for (size_t i = 0; i < ny; ++i) y[i] = bf16_to_f32(yb[i]);
  return y;
}

// Each kernel build where the CPU has its dot product: the own kernels at full width (AVX512-VNNI)
// and capped at AVX2 (AVX-VNNI, the build Intel desktops without AVX-512 run).
struct IsaCase {
  cpu::KernelIsa cap;
  const char* kernels;  // attn_int8::Kernels::isa expected under the cap
};
void PrintTo(const IsaCase& c, std::ostream* os) {
  *os << c.kernels;
}

class Int8Attention : public testing::TestWithParam<IsaCase> {
 protected:
  void SetUp() override {
    cpu::force_kernel_isa(GetParam().cap);
    kernels_ = cpu::Int8Attention::kernels_for(cpu::AttentionShape{});
    if (!kernels_ || std::string(kernels_->isa) != GetParam().kernels)
      GTEST_SKIP() << "no " << GetParam().kernels << " here";
  }
  void TearDown() override { cpu::force_kernel_isa(cpu::KernelIsa::Avx512); }
  const ai::Kernels* kernels_ = nullptr;
};

INSTANTIATE_TEST_SUITE_P(Isa, Int8Attention,
                         testing::Values(IsaCase{cpu::KernelIsa::Avx512, "avx512_vnni"},
                                         IsaCase{cpu::KernelIsa::Avx2, "avx_vnni"}),
                         [](const testing::TestParamInfo<IsaCase>& i) {
                           return std::string(i.param.kernels);
                         });

TEST_P(Int8Attention, MatchesTheSameQuantisationInDouble) {
  // SD1.5's heads (320/640/1280 channels, 8 heads), token counts off the key block (48), the
  // query block (64 or 32) and the key groups of 4; heads of 6 and 20 columns (not multiples of
  // 4 or 16); several images.
  const Case cases[] = {{2, 100, 257, 320, 8}, {1, 257, 77, 640, 8}, {1, 77, 100, 1280, 8},
                        {2, 64, 48, 320, 8},   {1, 33, 1031, 80, 1}, {2, 40, 9, 12, 2},
                        {1, 70, 130, 40, 2}};
  uint32_t seed = 3000;
  for (const Case& c : cases)
    for (DType in : {DType::F32, DType::BF16}) {
      if (in == DType::BF16 && !cpu::cpu_features().avx512_bf16) continue;
      Vec q = random_vec(c.N * c.Tq * c.C, seed++, -2.f, 2.f);
      Vec k = random_vec(c.N * c.Tk * c.C, seed++, -1.f, 3.f);  // off-centre: smoothing matters
      Vec v = random_vec(c.N * c.Tk * c.C, seed++);
      if (in == DType::BF16) {
        q = round_bf16(q);
        k = round_bf16(k);
        v = round_bf16(v);
      }
      const Vec y = run_int8(c, q, k, v, in, DType::F32);
      EXPECT_LT(rel_err(y.data(), int8_reference(c, q, k, v)), 1e-5)
          << c.N << "x" << c.Tq << "x" << c.Tk << " C " << c.C << " heads " << c.heads
          << (in == DType::BF16 ? " bf16" : " f32");
    }
}

TEST_P(Int8Attention, PackMakesTheSameCodes) {
  // One head of 80 columns out of 640, 77 keys, bf16 and f32: K's mean, K's and V's codes and
  // scales exactly as the rules give them.
  const int64_t Tk = 77, C = 640, d = 80, h = 3;
  for (bool bf16 : {false, true}) {
    if (bf16 && !cpu::cpu_features().avx512_bf16) continue;
    Vec k = random_vec(Tk * C, 3400, -1.f, 3.f), v = random_vec(Tk * C, 3401);
    if (bf16) {
      k = round_bf16(k);
      v = round_bf16(v);
    }
    const auto kb = to_bf16(k), vb = to_bf16(v);
    std::vector<uint8_t> buf(ai::packed_head_bytes(Tk, d) + 64);
    uint8_t* base = buf.data() + (64 - reinterpret_cast<uintptr_t>(buf.data()) % 64) % 64;
    const ai::PackedHead p = ai::packed_head_at(base, Tk, d);
    if (bf16)
      kernels_->pack_head(kb.data() + h * d, vb.data() + h * d, true, C, Tk, d, p);
    else
      kernels_->pack_head(k.data() + h * d, v.data() + h * d, false, C, Tk, d, p);
    int bad = 0;
    for (int64_t e = 0; e < d; ++e) {
      double sum = 0;
      for (int64_t j = 0; j < Tk; ++j) sum += k[size_t(j * C + h * d + e)];
      bad += p.k_mean[e] != float(sum / double(Tk));
      float am = 0;
      for (int64_t j = 0; j < Tk; ++j) am = std::max(am, std::abs(v[size_t(j * C + h * d + e)]));
      bad += p.v_scale[e] != ai::code_scale(am);
      for (int64_t j = 0; j < Tk; ++j)
        bad += p.v[(j / 4 * d + e) * 4 + j % 4] !=
               ai::code_s8(v[size_t(j * C + h * d + e)], ai::code_inv(am));
    }
    for (int64_t j = 0; j < Tk; ++j) {
      float am = 0;
      for (int64_t e = 0; e < d; ++e)
        am = std::max(am, std::abs(k[size_t(j * C + h * d + e)] - p.k_mean[e]));
      int32_t sum = 0;
      for (int64_t e = 0; e < d; ++e) {
        const int32_t code =
            ai::code_s8(k[size_t(j * C + h * d + e)] - p.k_mean[e], ai::code_inv(am));
        bad += p.k[j * d + e] != code;
        sum += code;
      }
      bad += p.k_scale[j] != ai::code_scale(am);
      bad += p.comp[j] != -128 * sum;
    }
    EXPECT_EQ(bad, 0) << (bf16 ? "bf16" : "f32");
  }
}

TEST_P(Int8Attention, RunningMaxMovesAcrossKeyBlocks) {
  // Keys grow along the sequence: every key block raises the queries' max, so the earlier
  // blocks' sums are rescaled (alpha < 1) again and again. One query row is all zeros (scale 0:
  // uniform attention).
  const Case c{1, 70, 500, 160, 2};
  Vec q = random_vec(c.Tq * c.C, 3100, 0.5f, 1.5f);
  for (int64_t e = 0; e < c.C; ++e) q[size_t(5 * c.C + e)] = 0.f;
  Vec k = random_vec(c.Tk * c.C, 3101, 0.f, 1.f);
  for (int64_t j = 0; j < c.Tk; ++j)
    for (int64_t e = 0; e < c.C; ++e) k[size_t(j * c.C + e)] *= 0.02f * float(j);
  const Vec v = random_vec(c.Tk * c.C, 3102);
  const Vec y = run_int8(c, q, k, v, DType::F32, DType::F32);
  EXPECT_LT(rel_err(y.data(), int8_reference(c, q, k, v)), 1e-5);
}

TEST_P(Int8Attention, OneThreadAndBf16Output) {
  const Case c{2, 90, 150, 320, 8};
  const Vec q = random_vec(c.N * c.Tq * c.C, 3200, -2.f, 2.f);
  const Vec k = random_vec(c.N * c.Tk * c.C, 3201, -2.f, 2.f);
  const Vec v = random_vec(c.N * c.Tk * c.C, 3202);
  const Vec ref = int8_reference(c, q, k, v);
  EXPECT_LT(rel_err(run_int8(c, q, k, v, DType::F32, DType::F32, 1).data(), ref), 1e-5);
  // bf16 output: one rounding to 8 significant bits on top.
  EXPECT_LT(rel_err(run_int8(c, q, k, v, DType::F32, DType::BF16).data(), ref), 8e-3);
}

TEST_P(Int8Attention, CloseToExactAttention) {
  // What the quantisation costs on SD-like activations (K with a large shared offset, peaked
  // and flat rows): within a few percent of the float result.
  const Case c{1, 256, 1024, 320, 8};
  const Vec q = random_vec(c.Tq * c.C, 3300, -3.f, 3.f);
  Vec k = random_vec(c.Tk * c.C, 3301, -3.f, 3.f);
  for (int64_t j = 0; j < c.Tk; ++j)
    for (int64_t e = 0; e < c.C; ++e) k[size_t(j * c.C + e)] += float(e % 7) - 3.f;
  const Vec v = random_vec(c.Tk * c.C, 3302);
  const Vec y = run_int8(c, q, k, v, DType::F32, DType::F32);
  const Vec exact = attention_ref(q, k, v, c.N, c.Tq, c.Tk, c.C, c.heads, false);
  double num = 0, den = 0;
  for (size_t i = 0; i < exact.size(); ++i) {
    num += double(y[i] - exact[i]) * (y[i] - exact[i]);
    den += double(exact[i]) * exact[i];
  }
  // Measured: 2.3 % max, 1.5 % L2 (QK alone ~1 %; P codes relative to the running max instead of
  // the block's max gave 6.2 % and 3.3 %).
  EXPECT_LT(rel_err(y.data(), exact), 3e-2);
  EXPECT_LT(std::sqrt(num / den), 2e-2);
}

// A plan of one attention node (allowed int8 or not): whether its step runs int8.
bool plan_runs_int8(cpu::Precision prec, bool allow, bool causal) {
  graph::Graph g;
  const int64_t T = 80, C = 64;
  const auto a = g.attention(g.input("q", {1, T, C}), g.input("k", {1, T, C}),
                             g.input("v", {1, T, C}), 2, causal, "attn1");
  if (allow) g.allow_int8(a);
  g.output("y", a);
  cpu::PlanOptions o;
  o.precision = prec;
  auto p = cpu::Plan::compile(g, o);
  bool int8 = false;
  for (const auto& s : p->steps())
    int8 |= s.kind.find("Attention") == 0 && s.kind.find(".int8") != std::string::npos;
  return int8;
}

TEST(Int8AttentionPlan, OnlyInt8PlansOnVnniCpusPickIt) {
  using cpu::Precision;
  EXPECT_FALSE(plan_runs_int8(Precision::F32, true, false));
  if (cpu::cpu_features().avx512) {
    EXPECT_FALSE(plan_runs_int8(Precision::BF16, true, false));
  }
  if (!cpu::isa_has_int8_dot()) GTEST_SKIP() << "no VNNI: int8 plans are refused here";
  const bool vnni512 = cpu::Int8Attention::supported(cpu::AttentionShape{});
  EXPECT_EQ(plan_runs_int8(Precision::INT8, true, false), vnni512);
  EXPECT_FALSE(plan_runs_int8(Precision::INT8, false, false));  // the model did not allow it
  EXPECT_FALSE(plan_runs_int8(Precision::INT8, true, true));    // causal: float path
  // The AVX2 kernels (what a CPU without AVX-512 gets) run int8 attention where the CPU has
  // AVX-VNNI, float attention otherwise.
  cpu::force_generic_kernels(true);
  const bool generic = plan_runs_int8(Precision::INT8, true, false);
  cpu::force_generic_kernels(false);
  EXPECT_EQ(generic, cpu::cpu_features().avx_vnni);
}

TEST(Int8AttentionPlan, UNetPolicyAllowsSelfAttentionOnly) {
  graph::Graph g;
  const auto x = g.input("x", {1, 16, 32});
  const auto ctx = g.input("ctx", {1, 7, 32});
  const auto self = g.attention(x, x, x, 2, false, "input_blocks.1.1.transformer_blocks.0.attn1");
  const auto cross =
      g.attention(self, ctx, ctx, 2, false, "input_blocks.1.1.transformer_blocks.0.attn2");
  g.output("y", cross);
  graph::mark_int8_layers(g);
  EXPECT_TRUE(g.node(self).attrs.int8);
  EXPECT_FALSE(g.node(cross).attrs.int8);
}

}  // namespace
}  // namespace sdc::test
