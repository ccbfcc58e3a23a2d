// Steady inputs (graph::Attrs::steady): the steps that depend on them alone run only when their
// bytes change, their outputs survive other plans sharing the arena, and every run computes what
// a plan without the mark computes, bit for bit, at each precision.
#include <gtest/gtest.h>

#include <memory>

#include "backend/cpu/activation_arena.h"
#include "backend/cpu/plan.h"
#include "backend/cpu/prepacked_weights.h"
#include "common/error.h"
#include "graph/graph.h"
#include "reference.h"

namespace sdc::test {
namespace {

using cpu::Plan;
using cpu::PlanOptions;
using cpu::Precision;

constexpr int64_t kN = 2, kT = 24, kC = 64, kCtx = 5, kCc = 32;

// A transformer block's shape: queries from `x`, keys and values from the context through a
// small chain (linear, GELU, linear), which is also an output; the context is steady if asked.
graph::Graph cross_net(bool steady) {
  graph::Graph g;
  uint32_t seed = 700;
  auto w = [&](Shape s) {
    return g.weight(
        "w", TensorRef::from_f32(random_vec(shape_numel(s), seed++, -0.3f, 0.3f), s, DType::F16));
  };
  const auto x = g.input("x", {kN, kT, kC});
  const auto ctx = g.input("ctx", {kN, kCtx, kCc});
  if (steady) g.mark_steady(ctx);
  // Every linear may run W8A8 in an int8 plan (K and V then share the context's codes).
  auto linear = [&](graph::ValueId in, Shape ws, bool bias) {
    const auto l = g.linear(in, w(ws), bias ? w({ws[0]}) : graph::kNone);
    g.allow_int8(l);
    return l;
  };
  auto c = g.gelu(linear(ctx, {kCc, kCc}, true));
  c = linear(c, {kCc, kCc}, false);
  g.output("ctx_features", c);
  const auto n = g.layer_norm(x, w({kC}), w({kC}), 1e-5f);
  const auto q = linear(n, {kC, kC}, false);
  const auto k = linear(c, {kC, kCc}, false);
  const auto v = linear(c, {kC, kCc}, false);
  auto a = linear(g.attention(q, k, v, 2, false), {kC, kC}, true);
  a = g.add(a, x);
  g.output("out", a);
  return g;
}

// Another plan to share the arena with: everything it writes clobbers the first's values.
graph::Graph other_net() {
  graph::Graph g;
  const auto x = g.input("y", {kN, 4 * kT, kC});
  auto h = g.linear(
      x,
      g.weight("w", TensorRef::from_f32(random_vec(kC * kC, 9, -1.f, 1.f), {kC, kC}, DType::F16)),
      graph::kNone);
  g.output("out", g.gelu(h));
  return g;
}

Vec output(const Plan& p, const std::string& name) {
  return Vec(p.output(name), p.output(name) + shape_numel(p.output_shape(name)));
}

class SteadyInputs : public testing::TestWithParam<std::tuple<Precision, bool>> {};

TEST_P(SteadyInputs, KeptStepsRunOnlyWhenTheInputChanges) {
  const auto [precision, check] = GetParam();
  if (!cpu::precision_available(precision)) GTEST_SKIP() << "precision not available on this CPU";
  PlanOptions o;
  o.precision = precision;
  o.check = check;  // dead buffers poisoned: a kept value read from the arena would show
  o.arena = std::make_shared<cpu::ActivationArena>(size_t(64) << 20);
  o.scratch = std::make_shared<cpu::ActivationArena>(size_t(64) << 20);
  auto kept = Plan::compile(cross_net(true), o);
  auto other = Plan::compile(other_net(), o);
  PlanOptions plain_o = o;
  plain_o.arena = plain_o.scratch = nullptr;
  auto plain = Plan::compile(cross_net(false), plain_o);

  int steady = 0;
  for (const cpu::StepInfo& s : kept->steps()) steady += s.steady;
  EXPECT_GE(steady, 4) << "the context's chain and the K and V projections";
  for (const cpu::StepInfo& s : plain->steps()) EXPECT_FALSE(s.steady) << s.kind;

  const Vec ctx1 = random_vec(kN * kCtx * kCc, 11), ctx2 = random_vec(kN * kCtx * kCc, 12);
  // (ctx, x seed, whether the steady steps must run)
  const std::vector<std::tuple<const Vec*, uint32_t, bool>> runs = {
      {&ctx1, 21, true}, {&ctx1, 22, false}, {&ctx1, 23, false},
      {&ctx2, 24, true}, {&ctx2, 25, false}, {&ctx1, 26, true}};
  for (const auto& [ctx, xseed, runs_steady] : runs) {
    const Vec x = random_vec(kN * kT * kC, xseed);
    for (Plan* p : {kept.get(), plain.get()}) {
      fill_input(*p, "x", x);
      fill_input(*p, "ctx", *ctx);
    }
    const std::vector<cpu::StepInfo> steps = kept->profile_run();
    plain->run();
    for (const cpu::StepInfo& s : steps)
      EXPECT_EQ(s.skipped, s.steady && !runs_steady) << s.kind << " in run " << xseed;
    EXPECT_EQ(rel_err(kept->output("out"), output(*plain, "out")), 0.0) << "run " << xseed;
    EXPECT_EQ(rel_err(kept->output("ctx_features"), output(*plain, "ctx_features")), 0.0);
    // The other plan overwrites the shared arena between runs.
    fill_input(*other, "y", random_vec(kN * 4 * kT * kC, xseed + 100));
    other->run();
  }
}

INSTANTIATE_TEST_SUITE_P(Precisions, SteadyInputs,
                         testing::Combine(testing::Values(Precision::F32, Precision::BF16,
                                                          Precision::INT8),
                                          testing::Bool()));

TEST(SteadyInputs, WriteThroughTheInputAfterARunIsSeen) {
  // The caller may keep the input pointer and change the bytes in place: compared, not trusted.
  auto kept = Plan::compile(cross_net(true), PlanOptions{});
  auto plain = Plan::compile(cross_net(false), PlanOptions{});
  for (Plan* p : {kept.get(), plain.get()}) fill_input(*p, "x", random_vec(kN * kT * kC, 3));
  float* ctx = kept->input_f32("ctx");
  const Vec c = random_vec(kN * kCtx * kCc, 4);
  std::copy(c.begin(), c.end(), ctx);
  kept->run();
  ctx[kN * kCtx * kCc - 1] += 0.5f;  // one value of the last image
  fill_input(*plain, "ctx", Vec(ctx, ctx + kN * kCtx * kCc));
  kept->run();
  plain->run();
  EXPECT_EQ(rel_err(kept->output("out"), output(*plain, "out")), 0.0);
}

TEST(SteadyInputs, OnlyInputsCanBeSteady) {
  graph::Graph g;
  const auto x = g.input("x", {1, 4});
  const auto y = g.gelu(x);
  try {
    g.mark_steady(y);
    FAIL() << "a Gelu marked steady";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("an Input to mark steady"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(g.node(x).attrs.steady);
  g.mark_steady(x);
  EXPECT_TRUE(g.node(x).attrs.steady);
}

TEST(SteadyInputs, AStepThatAlsoReadsAnotherInputRunsEveryTime) {
  // Steady and non-steady inputs mixed in every step: nothing is kept, nothing skipped.
  graph::Graph g;
  const auto a = g.input("a", {1, 8});
  const auto b = g.input("b", {1, 8});
  g.mark_steady(a);
  g.output("out", g.add(a, b));
  auto p = Plan::compile(g, PlanOptions{});
  fill_input(*p, "a", Vec(8, 1.f));
  for (float bv : {2.f, 3.f}) {
    fill_input(*p, "b", Vec(8, bv));
    for (const cpu::StepInfo& s : p->profile_run()) {
      EXPECT_FALSE(s.steady);
      EXPECT_FALSE(s.skipped);
    }
    EXPECT_EQ(p->output("out")[7], 1.f + bv);
  }
}

}  // namespace
}  // namespace sdc::test
