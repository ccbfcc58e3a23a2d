// The planner as a whole: memory planning never overlaps live buffers, check mode finds nothing on
// a branching network, run() is repeatable, plans of different sizes share packed weights,
// precision parsing and the error paths.
#include <gtest/gtest.h>

#include <array>
#include <cstring>

#include <random>

#include "backend/cpu/memory_plan.h"
#include "backend/cpu/plan.h"
#include "backend/cpu/prepacked_weights.h"
#include "backend/cpu/weight_cache.h"
#include "common/error.h"
#include "reference.h"

namespace sdc::test {
namespace {

using cpu::Plan;
using cpu::PlanOptions;
using cpu::Precision;

TEST(MemoryPlan, RandomLifetimesNeverOverlap) {
  std::mt19937 rng(5);
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<cpu::BufferLife> b;
    for (int i = 0; i < 200; ++i) {
      const int first = int(rng() % 100);
      b.push_back({size_t(rng() % 100000 + 1), first, first + int(rng() % 20)});
    }
    const cpu::MemoryPlan p = cpu::plan_memory(b);
    EXPECT_NO_THROW(cpu::check_memory_plan(b, p));
    size_t sum = 0;
    for (const auto& x : b) sum += x.bytes;
    EXPECT_LT(p.total, sum) << "buffers with disjoint lifetimes share memory";
  }
}

TEST(MemoryPlan, CheckFindsOverlap) {
  const std::vector<cpu::BufferLife> b = {{100, 0, 2}, {100, 1, 3}};
  cpu::MemoryPlan bad;
  bad.offsets = {0, 64};
  bad.total = 192;
  try {
    cpu::check_memory_plan(b, bad);
    FAIL() << "overlap not found";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("buffers 0 and 1"), std::string::npos) << e.what();
  }
  const std::vector<cpu::BufferLife> apart = {{100, 0, 1}, {100, 2, 3}};
  cpu::MemoryPlan shared;
  shared.offsets = {0, 0};
  shared.total = 128;
  EXPECT_NO_THROW(cpu::check_memory_plan(apart, shared));
}

// A small UNet-like network: convs, a resnet block with time embedding, a down and up path with
// a skip concat, a transformer block. Returns the graph; weights are random.
graph::Graph toy_net(int64_t N, int64_t H, int64_t W, uint32_t seed_base = 0,
                     std::vector<TensorRef>* weights = nullptr) {
  graph::Graph g;
  uint32_t seed = 3000;
  size_t wi = 0;
  auto W_ = [&](Shape s, float scale = 0.2f) {
    if (weights && wi < weights->size()) {
      const TensorRef& t = (*weights)[wi++];
      return g.weight("w", t);
    }
    TensorRef t = TensorRef::from_f32(random_vec(shape_numel(s), seed_base + seed++, -scale, scale),
                                      s, DType::F16);
    if (weights) {
      weights->push_back(t);
      ++wi;
    }
    return g.weight("w", t);
  };
  const int64_t C = 32, Ct = 24;
  const auto x = g.input("x", {N, H, W, 4});
  const auto t = g.input("t", {N});
  const auto ctx = g.input("ctx", {N, 7, Ct});
  auto temb = g.timestep_embedding(t, 32, true, 0.f);
  temb = g.linear(temb, W_({C, 32}), W_({C}));
  temb = g.silu(temb);
  auto h = g.conv2d(x, W_({C, 4, 3, 3}), W_({C}), 1, 1, "conv_in");
  const auto skip = h;
  // ResNet block
  auto r = g.group_norm(h, W_({C}, 1.f), W_({C}), 8, 1e-5f, true);
  r = g.conv2d(r, W_({C, C, 3, 3}), W_({C}), 1, 1);
  r = g.add(r, g.linear(temb, W_({C, C}), W_({C})));
  r = g.group_norm(r, W_({C}, 1.f), W_({C}), 8, 1e-5f, true);
  r = g.conv2d(r, W_({C, C, 3, 3}), W_({C}), 1, 1);
  // Shortcut conv made after the block's last conv: both convs could take the add.
  h = g.add(g.conv2d(h, W_({C, C, 1, 1}), W_({C}), 1, 0), r);
  // Downsample, transformer, upsample
  auto d = g.conv2d(h, W_({C, C, 3, 3}), W_({C}), 2, 0, 0, 1, 1);
  const int64_t Hd = g.shape(d)[1], Wd = g.shape(d)[2];
  auto s = g.reshape(g.group_norm(d, W_({C}, 1.f), W_({C}), 8, 1e-6f, false), {N, Hd * Wd, C});
  s = g.linear(s, W_({C, C}), W_({C}));
  auto n1 = g.layer_norm(s, W_({C}, 1.f), W_({C}), 1e-5f);
  auto a =
      g.attention(g.linear(n1, W_({C, C}), graph::kNone), g.linear(n1, W_({C, C}), graph::kNone),
                  g.linear(n1, W_({C, C}), graph::kNone), 4, false);
  s = g.add(g.linear(a, W_({C, C}), W_({C})), s);
  auto n2 = g.layer_norm(s, W_({C}, 1.f), W_({C}), 1e-5f);
  auto c =
      g.attention(g.linear(n2, W_({C, C}), graph::kNone), g.linear(ctx, W_({C, Ct}), graph::kNone),
                  g.linear(ctx, W_({C, Ct}), graph::kNone), 2, false);
  s = g.add(g.linear(c, W_({C, C}), W_({C})), s);
  auto n3 = g.layer_norm(s, W_({C}, 1.f), W_({C}), 1e-5f);
  auto ff = g.linear(g.geglu(g.linear(n3, W_({4 * C, C}), W_({4 * C}))), W_({C, 2 * C}), W_({C}));
  s = g.add(ff, s);
  d = g.add(g.reshape(g.linear(s, W_({C, C}), W_({C})), {N, Hd, Wd, C}), d);
  auto u = g.conv2d(g.upsample_nearest(d, int(H), int(W)), W_({C, C, 3, 3}), W_({C}), 1, 1);
  auto cat = g.concat(u, skip);
  auto o = g.group_norm(cat, W_({2 * C}, 1.f), W_({2 * C}), 8, 1e-5f, true);
  o = g.conv2d(o, W_({4, 2 * C, 3, 3}), W_({4}), 1, 1, "conv_out");
  g.output("out", o);
  g.output("mid", g.slice(cat, 3, 9));
  return g;
}

std::vector<std::pair<std::string, Vec>> toy_inputs(int64_t N, int64_t H, int64_t W) {
  return {{"x", random_vec(N * H * W * 4, 42)},
          {"t", N == 1 ? Vec{500.f} : Vec{500.f, 20.f}},
          {"ctx", random_vec(N * 7 * 24, 43)}};
}

void fill_toy(Plan& p, int64_t N, int64_t H, int64_t W) {
  for (const auto& [name, v] : toy_inputs(N, H, W)) fill_input(p, name, v);
}

class Planner : public testing::TestWithParam<Precision> {
 protected:
  void SetUp() override { SDC_SKIP_UNLESS_PRECISION_RUNS(GetParam()); }
};

TEST_P(Planner, CheckModeAndRepeatability) {
  const int64_t N = 2, H = 12, W = 10;
  const graph::Graph g = toy_net(N, H, W);
  PlanOptions o;
  o.precision = GetParam();
  o.check = true;
  auto checked = Plan::compile(g, o);
  o.check = false;
  auto plain = Plan::compile(g, o);
  fill_toy(*checked, N, H, W);
  fill_toy(*plain, N, H, W);
  checked->run();
  plain->run();
  const int64_t n = shape_numel(plain->output_shape("out"));
  const Vec first(plain->output("out"), plain->output("out") + n);
  // Poisoned dead buffers change nothing (no value was read after its buffer was reused).
  EXPECT_EQ(rel_err(checked->output("out"), first), 0.0);
  // And the fused, memory-sharing plan computes what the op-by-op reference computes.
  const std::vector<Vec> ref = reference_run(g, toy_inputs(N, H, W));
  const bool bf16 = GetParam() == Precision::BF16;
  EXPECT_LT(rel_err(plain->output("out"), ref[0]), bf16 ? 5e-2 : 1e-4);
  EXPECT_LT(rel_err(plain->output("mid"), ref[1]), bf16 ? 5e-2 : 1e-4);
  plain->run();
  EXPECT_EQ(rel_err(plain->output("out"), first), 0.0) << "run() twice gives identical results";
  for (int64_t i = 0; i < n; ++i) ASSERT_TRUE(std::isfinite(first[size_t(i)]));
  // The arena is smaller than all values side by side.
  size_t all_values = 0;
  for (const auto& node : g.nodes())
    if (node.op != graph::Op::Weight && node.op != graph::Op::Input &&
        node.op != graph::Op::Reshape)
      all_values += size_t(shape_numel(node.shape)) * 4;
  EXPECT_LT(plain->arena_bytes(), all_values / 2);
}

TEST_P(Planner, MatchesF32WithinPrecision) {
  // bf16 vs f32 plans of the same network: the bf16 error stays bf16-sized.
  if (GetParam() == Precision::F32) GTEST_SKIP() << "compares bf16 against f32";
  const int64_t N = 1, H = 8, W = 8;
  const graph::Graph g = toy_net(N, H, W);
  PlanOptions o;
  auto f32 = Plan::compile(g, o);
  o.precision = Precision::BF16;
  auto bf = Plan::compile(g, o);
  fill_toy(*f32, N, H, W);
  fill_toy(*bf, N, H, W);
  f32->run();
  bf->run();
  const int64_t n = shape_numel(f32->output_shape("out"));
  const Vec ref(f32->output("out"), f32->output("out") + n);
  EXPECT_LT(rel_err(bf->output("out"), ref), 5e-2);
}

// Fused conv/linear sums (not the GroupNorm's time-embedding add) stored as `t`.
int matmul_sums_in(const Plan& p, DType t) {
  int n = 0;
  for (const auto& s : p.steps()) {
    const bool matmul = s.kind.rfind("Conv2d", 0) == 0 || s.kind.rfind("Linear", 0) == 0;
    const bool sum =
        s.kind.find("+sum") != std::string::npos || s.kind.find("+add") != std::string::npos;
    if (matmul && sum && s.out_type == t) ++n;
  }
  return n;
}

// bf16 residual sums: fused sums whose result only norms, matmuls and later sums read are stored
// as bf16 (the toy's ResNet and transformer residual streams), checked against the op-by-op
// reference in check mode; f32 plans ignore the option.
TEST(Planner, Bf16ResidualSumsOnTheToyNet) {
  SDC_SKIP_UNLESS_PRECISION_RUNS(Precision::BF16);
  const int64_t N = 2, H = 12, W = 10;
  const graph::Graph g = toy_net(N, H, W);
  PlanOptions o;
  o.precision = Precision::BF16;
  o.check = true;
  auto f32_sums = Plan::compile(g, o);
  o.bf16_residuals = true;
  auto bf16_sums = Plan::compile(g, o);
  EXPECT_EQ(matmul_sums_in(*f32_sums, DType::BF16), 0);
  EXPECT_EQ(matmul_sums_in(*bf16_sums, DType::BF16), 4);
  EXPECT_EQ(matmul_sums_in(*bf16_sums, DType::F32), 0);
  const std::vector<Vec> ref = reference_run(g, toy_inputs(N, H, W));
  for (Plan* p : {f32_sums.get(), bf16_sums.get()}) {
    fill_toy(*p, N, H, W);
    p->run();
    EXPECT_LT(rel_err(p->output("out"), ref[0]), 5e-2);
    EXPECT_LT(rel_err(p->output("mid"), ref[1]), 5e-2);
  }
  o.precision = Precision::F32;
  EXPECT_EQ(matmul_sums_in(*Plan::compile(g, o), DType::BF16), 0);
}

// Both operand types beside each other, each as a binary post-op (the operand lives on) and as
// a sum in its buffer: r, which a plain add also reads, stays f32; y and y2 are bf16 sums; the
// output is an f32 sum.
TEST(Planner, Bf16ResidualSumsWithBothOperandTypes) {
  SDC_SKIP_UNLESS_PRECISION_RUNS(Precision::BF16);
  const int64_t T = 16, C = 48;
  graph::Graph g;
  uint32_t seed = 700;
  auto w = [&](Shape s, float scale = 0.2f) {
    return add_weight(g, "w", random_vec(shape_numel(s), seed++, -scale, scale), s);
  };
  const auto x = g.input("x", {1, T, C});
  const auto r = g.linear(x, w({C, C}), w({C}));
  const auto ln = [&](graph::ValueId v) { return g.layer_norm(v, w({C}, 1.f), w({C}), 1e-5f); };
  const auto y = g.add(g.linear(ln(r), w({C, C}), w({C})), r);    // f32 operand, lives on
  const auto y2 = g.add(g.linear(ln(y), w({C, C}), w({C})), y);   // bf16 operand, lives on
  const auto y3 = g.add(g.linear(ln(y2), w({C, C}), w({C})), y);  // bf16 operand dies: sum
  const auto z = g.add(r, x);
  g.output("out", g.add(g.linear(ln(y3), w({C, C}), w({C})), z));  // f32 operand dies: sum
  PlanOptions o;
  o.precision = Precision::BF16;
  o.bf16_residuals = true;
  o.check = true;
  auto p = Plan::compile(g, o);
  EXPECT_EQ(matmul_sums_in(*p, DType::BF16), 3);
  EXPECT_EQ(matmul_sums_in(*p, DType::F32), 1);
  const std::vector<std::pair<std::string, Vec>> in = {{"x", random_vec(T * C, 701)}};
  fill_input(*p, "x", in[0].second);
  p->run();
  EXPECT_LT(rel_err(p->output("out"), reference_run(g, in)[0]), 2e-2);
}

TEST_P(Planner, PlansOfDifferentSizesShareWeights) {
  std::vector<TensorRef> weights;
  const graph::Graph g1 = toy_net(1, 8, 8, 0, &weights);
  const graph::Graph g2 = toy_net(2, 16, 12, 0, &weights);  // same tensors, other size
  PlanOptions o;
  o.precision = GetParam();
  auto p1 = Plan::compile(g1, o);
  const size_t entries = cpu::WeightCache::global().live_entries();
  auto p2 = Plan::compile(g2, o);
  const size_t added = cpu::WeightCache::global().live_entries() - entries;
  // Convolution weights may be packed in another blocked format for another size; everything
  // else (linears, norms, biases) must be shared.
  EXPECT_LT(added, 6u);
  EXPECT_GT(p1->weight_bytes(), 0u);
  p1.reset();
  fill_toy(*p2, 2, 16, 12);
  p2->run();  // still valid after the first plan is gone
  EXPECT_TRUE(std::isfinite(p2->output("out")[0]));
}

INSTANTIATE_TEST_SUITE_P(Cpu, Planner, testing::Values(Precision::F32, Precision::BF16),
                         [](const auto& i) { return std::string(cpu::precision_name(i.param)); });

TEST(Planner, WeightsSharedByContentAcrossMappings) {
  // The same weights reloaded into new buffers (a file mapped again after the first mapping was
  // dropped) find the packed copies of the plan that is still alive; other values do not.
  auto net = [](uint32_t seed) {
    graph::Graph g;
    const auto x = g.input("x", {1, 6, 6, 8});
    const auto w = TensorRef::from_f32(random_vec(16 * 8 * 9, seed), {16, 8, 3, 3}, DType::F16);
    const auto b = TensorRef::from_f32(random_vec(16, seed + 1), {16}, DType::F16);
    const auto y = g.conv2d(x, g.weight("w", w), g.weight("b", b), 1, 1);
    g.allow_int8(y);
    g.output("y", y);
    return g;
  };
  std::vector<Precision> precisions;
  for (Precision p : {Precision::F32, Precision::BF16, Precision::INT8})
    if (cpu::precision_available(p)) precisions.push_back(p);
  for (Precision prec : precisions) {
    PlanOptions o;
    o.precision = prec;
    auto p1 = Plan::compile(net(77), o);
    const size_t entries = cpu::WeightCache::global().live_entries();
    auto p2 = Plan::compile(net(77), o);  // fresh buffers, same values
    EXPECT_EQ(cpu::WeightCache::global().live_entries(), entries) << cpu::precision_name(prec);
    auto p3 = Plan::compile(net(78), o);  // other values
    // W8A8: the weight's scales, row sums and s8 values (found through one hash of it), and the
    // bias.
    const size_t packed = prec == Precision::INT8 ? 4 : 2;
    EXPECT_EQ(cpu::WeightCache::global().live_entries(), entries + packed)
        << cpu::precision_name(prec);
  }
  EXPECT_NE(cpu::WeightCache::content_hash("abcdefgh", 8),
            cpu::WeightCache::content_hash("abcdefgi", 8));
  std::vector<uint8_t> big(3u << 20, 7);
  const uint64_t h = cpu::WeightCache::content_hash(big.data(), big.size());
  big[2u << 20] = 8;  // a byte in the third 1 MiB chunk
  EXPECT_NE(cpu::WeightCache::content_hash(big.data(), big.size()), h);
}

TEST(Planner, WeightsOutliveTheirSource) {
  graph::Graph g;
  {
    const TensorRef w = TensorRef::from_f32(random_vec(8 * 4, 1), {8, 4}, DType::F32);
    g.output("y", g.linear(g.input("x", {3, 4}), g.weight("w", w), graph::kNone));
  }
  auto p = Plan::compile(g, {});
  const Vec w = random_vec(8 * 4, 1);
  const Vec x = random_vec(12, 2);
  // Drop the graph's copy of the source: the plan holds only its packed weights.
  g = graph::Graph();
  fill_input(*p, "x", x);
  p->run();
  EXPECT_LT(rel_err(p->output("y"), linear_ref(x, w, nullptr, 3, 4, 8)), 1e-6);
}

TEST(Precision, Parse) {
  EXPECT_EQ(cpu::parse_precision("f32"), Precision::F32);
  EXPECT_EQ(cpu::parse_precision("bf16"), Precision::BF16);
  EXPECT_EQ(cpu::parse_precision("auto"), cpu::bf16_is_faster() ? Precision::BF16 : Precision::F32);
  EXPECT_STREQ(cpu::precision_name(Precision::BF16), "bf16");
  try {
    cpu::parse_precision("fp16");
    FAIL() << "fp16 is not a CPU precision";
  } catch (const UsageError& e) {
    EXPECT_STREQ(e.what(), "precision: expected one of f32, bf16, auto, int8, found 'fp16'");
  }
}

TEST(Planner, Errors) {
  graph::Graph g;
  const auto x = g.input("x", {1, 4, 4, 3});
  const auto w = g.input("w", {2, 3, 1, 1});  // a computed (input) weight
  g.output("y", g.conv2d(x, w, graph::kNone, 1, 0, "bad"));
  try {
    Plan::compile(g, {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "plan: Conv2d bad: expected a constant weight, found a computed value");
  }
  graph::Graph ok;
  ok.output("y", ok.silu(ok.input("x", {2, 3})));
  auto p = Plan::compile(ok, {});
  EXPECT_THROW(p->input_i32("x"), Error);
  try {
    p->input_f32("nope");
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "plan: input nope: expected an input of the graph, found none");
  }
  EXPECT_THROW(p->output("nope"), Error);
  PlanOptions neg;
  neg.threads = -1;
  EXPECT_THROW(Plan::compile(ok, neg), UsageError);
}

TEST(Planner, ThreadsOption) {
  graph::Graph g;
  const auto x = g.input("x", {2, 8, 8, 16});
  g.output("y", g.group_norm(x, add_weight(g, "g", Vec(16, 1.f), {16}),
                             add_weight(g, "b", Vec(16, 0.f), {16}), 4, 1e-5f, true));
  const Vec xv = random_vec(2 * 8 * 8 * 16, 9);
  Vec out[2];
  for (int threads : {1, 2}) {
    PlanOptions o;
    o.threads = threads;
    auto p = Plan::compile(g, o);
    fill_input(*p, "x", xv);
    p->run();
    out[threads - 1].assign(p->output("y"), p->output("y") + xv.size());
  }
  EXPECT_LT(rel_err(out[0].data(), out[1]), 1e-6);
}

}  // namespace
}  // namespace sdc::test

namespace sdc::test {
namespace {

// An image's rows through f32 linears — one with a residual add, the feed-forward GEGLU pair — are
// bit for bit the same in a batch of 2 and alone: oneDNN's f32 GEMM (CPUs without AVX-512) blocks
// by the rows it is given, so those plans run such matmuls one image at a time
// (Planner::matmul_images). 77 rows: the text context's length, which GEMM's blocking splits
// unevenly. Without the per-image runs this fails on an AVX2 CPU (a batch's second image then
// differed from the same seed alone).
TEST(Planner, F32LinearsGiveAnImageTheSameBitsInABatchAndAlone) {
  // {rows, in, out}: the text context's K/V projection (its 77 rows split unevenly even on one
  // thread), and a small one that two threads split along K.
  for (const auto& shape : {std::array<int64_t, 3>{77, 768, 320}, {64, 64, 64}}) {
    const int64_t T = shape[0], K = shape[1], D = shape[2];  // captured below: no binding
    auto net = [&](int64_t N) {
      graph::Graph g;
      const auto x = g.input("x", {N, T, K});
      const auto r = g.input("r", {N, T, D});
      const auto h =
          g.add(g.linear(x, add_weight(g, "w1", random_vec(D * K, 601, -0.1f, 0.1f), {D, K, 1, 1}),
                         add_weight(g, "b1", random_vec(D, 602), {D})),
                r);
      const auto ff = g.linear(
          h, add_weight(g, "w2", random_vec(2 * K * D, 603, -0.1f, 0.1f), {2 * K, D, 1, 1}),
          add_weight(g, "b2", random_vec(2 * K, 604), {2 * K}));
      g.output("y", g.geglu(ff));
      return g;
    };
    SCOPED_TRACE(testing::Message() << T << " rows, " << K << " -> " << D);
    const Vec x = random_vec(2 * T * K, 605), r = random_vec(2 * T * D, 606);
    PlanOptions o;
    o.precision = Precision::F32;
    o.threads = 2;
    auto batch = Plan::compile(net(2), o);
    fill_input(*batch, "x", x);
    fill_input(*batch, "r", r);
    batch->run();
    auto single = Plan::compile(net(1), o);
    fill_input(*single, "x", Vec(x.begin() + T * K, x.end()));  // the batch's second image
    fill_input(*single, "r", Vec(r.begin() + T * D, r.end()));
    single->run();
    const float* second = batch->output("y") + T * K;
    EXPECT_EQ(0, std::memcmp(second, single->output("y"), size_t(T * K) * sizeof(float)));
    // And the batch's rows are right: against the reference interpreter.
    const Vec ref = reference_run(net(2), {{"x", x}, {"r", r}})[0];
    EXPECT_LT(rel_err(batch->output("y"), ref), 2e-5);
  }
}

}  // namespace
}  // namespace sdc::test
