// Attention against the scalar reference, on each kernel path (AVX-512, AVX2, scalar): several
// heads, Tq != Tk, causal masks, query counts that span several tiles with a ragged last one, over
// a thousand keys with an odd count, SD1.5's head of 40, f32 and bf16 (q/k/v made by linears, as in
// the networks, so that bf16 mode stores them as bf16).
#include <gtest/gtest.h>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/plan.h"
#include "reference.h"

namespace sdc::test {
namespace {

using cpu::Plan;
using cpu::PlanOptions;
using cpu::Precision;

struct Case {
  int64_t N, Tq, Tk, C, heads;
  bool causal;
};

// max|attention - reference| / max|reference| for one attention node run by a compiled plan (the
// reference on bf16-rounded inputs for a bf16 plan).
double attention_error(Precision prec, const Case& c, const Vec& q, const Vec& k, const Vec& v) {
  graph::Graph g;
  const auto qi = g.input("q", {c.N, c.Tq, c.C});
  const auto ki = g.input("k", {c.N, c.Tk, c.C});
  const auto vi = g.input("v", {c.N, c.Tk, c.C});
  g.output("y", g.attention(qi, ki, vi, int(c.heads), c.causal, "attn"));
  PlanOptions o;
  o.precision = prec;
  o.check = true;
  auto p = Plan::compile(g, o);
  fill_input(*p, "q", q);
  fill_input(*p, "k", k);
  fill_input(*p, "v", v);
  p->run();
  const bool bf16 = prec == Precision::BF16;
  const Vec ref = bf16 ? attention_ref(round_bf16(q), round_bf16(k), round_bf16(v), c.N, c.Tq, c.Tk,
                                       c.C, c.heads, c.causal)
                       : attention_ref(q, k, v, c.N, c.Tq, c.Tk, c.C, c.heads, c.causal);
  return rel_err(p->output("y"), ref);
}

// The own kernels at each path the CPU has (a cap above it runs its widest): AVX-512, AVX2 (the
// vectorised softmax between oneDNN's matmuls) and scalar.
class Attention : public testing::TestWithParam<std::tuple<Precision, cpu::KernelIsa>> {
 protected:
  void SetUp() override {
    SDC_SKIP_UNLESS_PRECISION_RUNS(std::get<0>(GetParam()));
    cpu::force_kernel_isa(std::get<1>(GetParam()));
  }
  void TearDown() override { cpu::force_kernel_isa(cpu::KernelIsa::Avx512); }
};

TEST_P(Attention, MatchesReference) {
  const Precision prec = std::get<0>(GetParam());
  const bool bf16 = prec == Precision::BF16;
  const Case cases[] = {
      {2, 37, 29, 24, 3, false},
      {1, 77, 77, 64, 4, true},
      {2, 300, 77, 40, 2, false},
      {1, 700, 700, 16, 1, false},
      {1, 20, 33, 48, 6, true},
      {1, 65, 40, 512, 1, false},
      {2, 100, 90, 80, 2, false},
      {1, 33, 50, 72, 3, true},
      {2, 30, 19, 350, 2, false},  // 175 wide (and the 512 above): bf16 takes the tiles
      {1, 45, 70, 320, 2, false},  // 160 wide: the widest the micro-kernels take
      {1, 50, 1031, 80, 2, false},
      {1, 600, 600, 32, 2, true},
      {1, 130, 1100, 40, 1, true},
      // bf16 heads of up to 64 over >= 256 keys take the queries-in-lanes kernel: an odd head.
      {1, 90, 301, 66, 2, false}};
  uint32_t seed = 1000;
  for (const Case& c : cases) {
    const Vec q = random_vec(c.N * c.Tq * c.C, seed++, -2.f, 2.f);
    const Vec k = random_vec(c.N * c.Tk * c.C, seed++, -2.f, 2.f);
    const Vec v = random_vec(c.N * c.Tk * c.C, seed++);
    EXPECT_LT(attention_error(prec, c, q, k, v), bf16 ? 1e-2 : 1e-5)
        << c.Tq << "x" << c.Tk << " causal " << c.causal;
  }
}

TEST_P(Attention, ScoresRisingAcrossKeyBlocks) {
  // Keys grow along the sequence, so each query's largest score keeps rising from one key block
  // to the next (by far more than a block's softmax may leave unrescaled), and the last keys
  // dominate: the f32 path's online softmax has to move its running max and rescale.
  const Precision prec = std::get<0>(GetParam());
  const bool bf16 = prec == Precision::BF16;
  const int64_t Tq = 70, Tk = 500, C = 80, heads = 2;
  const Vec q = random_vec(Tq * C, 1200, 0.5f, 1.5f);
  Vec k = random_vec(Tk * C, 1201, 0.f, 1.f);
  for (int64_t j = 0; j < Tk; ++j)
    for (int64_t c = 0; c < C; ++c) k[j * C + c] *= 0.02f * float(j);
  const Vec v = random_vec(Tk * C, 1202);
  EXPECT_LT(attention_error(prec, Case{1, Tq, Tk, C, heads, false}, q, k, v), bf16 ? 1e-2 : 1e-5);
}

TEST_P(Attention, FromLinearProjections) {
  // q/k/v projections feeding attention, attention feeding the output projection: in bf16 all
  // four values are stored as bf16 by their producers.
  const Precision prec = std::get<0>(GetParam());
  const bool bf16 = prec == Precision::BF16;
  const int64_t N = 2, T = 50, C = 32, heads = 4;
  const Vec x = random_vec(N * T * C, 1100);
  const Vec wq = random_vec(C * C, 1101, -0.3f, 0.3f), wk = random_vec(C * C, 1102, -0.3f, 0.3f);
  const Vec wv = random_vec(C * C, 1103, -0.3f, 0.3f), wo = random_vec(C * C, 1104, -0.3f, 0.3f);
  graph::Graph g;
  const auto xi = g.input("x", {N, T, C});
  const auto q = g.linear(xi, add_weight(g, "wq", wq, {C, C}), graph::kNone);
  const auto k = g.linear(xi, add_weight(g, "wk", wk, {C, C}), graph::kNone);
  const auto v = g.linear(xi, add_weight(g, "wv", wv, {C, C}), graph::kNone);
  const auto a = g.attention(q, k, v, int(heads), false);
  g.output("y", g.linear(a, add_weight(g, "wo", wo, {C, C}), graph::kNone));
  PlanOptions o;
  o.precision = prec;
  o.check = true;
  auto p = Plan::compile(g, o);
  fill_input(*p, "x", x);
  p->run();
  auto rb = [&](const Vec& t) { return bf16 ? round_bf16(t) : t; };
  const Vec xr = rb(x);
  const Vec qr = rb(linear_ref(xr, rb(wq), nullptr, N * T, C, C));
  const Vec kr = rb(linear_ref(xr, rb(wk), nullptr, N * T, C, C));
  const Vec vr = rb(linear_ref(xr, rb(wv), nullptr, N * T, C, C));
  const Vec ar = rb(attention_ref(qr, kr, vr, N, T, T, C, heads, false));
  const Vec ref = linear_ref(ar, rb(wo), nullptr, N * T, C, C);
  EXPECT_LT(rel_err(p->output("y"), ref), bf16 ? 2e-2 : 1e-5);
  // Only the graph input x needs a Convert (to bf16, for the three projections).
  int converts = 0;
  for (const auto& s : p->steps()) converts += s.kind == "Convert";
  EXPECT_EQ(converts, bf16 ? 1 : 0);
}

INSTANTIATE_TEST_SUITE_P(Cpu, Attention,
                         testing::Combine(testing::Values(Precision::F32, Precision::BF16),
                                          testing::Values(cpu::KernelIsa::Avx512,
                                                          cpu::KernelIsa::Avx2,
                                                          cpu::KernelIsa::Scalar)));

}  // namespace
}  // namespace sdc::test
