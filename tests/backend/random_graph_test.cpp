// Random networks through the planner: many seeds of random DAGs mixing every op (so that fusion,
// bf16 storage, Convert placement, in-place reuse and arena sharing meet in combinations no
// hand-written test covers), compared with the op-by-op reference interpreter, in check mode.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <random>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/plan.h"
#include "reference.h"

namespace sdc::test {
namespace {

using cpu::Plan;
using cpu::PlanOptions;
using cpu::Precision;
using graph::ValueId;

struct RandomNet {
  graph::Graph g;
  std::vector<std::pair<std::string, Vec>> inputs;
};

RandomNet random_net(uint32_t seed) {
  std::mt19937 rng(seed);
  auto pick = [&](int n) { return int(rng() % unsigned(n)); };
  RandomNet net;
  graph::Graph& g = net.g;
  const int64_t N = 1 + pick(2), H = 5, W = 4;
  std::vector<ValueId> images;  // [N, H, W, C]
  std::vector<ValueId> vecs;    // [N, C] (for broadcast adds)
  uint32_t wseed = seed * 1000;
  auto weight = [&](Shape s, float scale) {
    return add_weight(g, "w", random_vec(shape_numel(s), wseed++, -scale, scale), s,
                      pick(2) ? DType::F16 : DType::F32);
  };
  const int64_t channels[] = {8, 12, 16, 24};
  for (int i = 0; i < 2; ++i) {
    const int64_t C = channels[pick(4)];
    const std::string name = "x" + std::to_string(i);
    images.push_back(g.input(name, {N, H, W, C}));
    net.inputs.emplace_back(name, random_vec(N * H * W * C, wseed++));
  }
  const ValueId t = g.input("t", {N, 16});
  net.inputs.emplace_back("t", random_vec(N * 16, wseed++));
  auto any_image = [&]() { return images[size_t(pick(int(images.size())))]; };
  auto C_of = [&](ValueId v) { return g.shape(v).back(); };
  auto groups = [](int64_t C) { return C % 4 == 0 ? 4 : C % 2 == 0 ? 2 : 1; };
  const int ops = 12 + pick(12);
  for (int k = 0; k < ops; ++k) {
    const ValueId a = images.back() == images.front() || pick(3) ? images.back() : any_image();
    const int64_t C = C_of(a);
    ValueId y = graph::kNone;
    switch (pick(13)) {
      case 0:
      case 1: {  // conv 3x3 or 1x1
        const int64_t co = channels[pick(4)];
        const int kk = pick(2) ? 3 : 1;
        y = g.conv2d(a, weight({co, C, kk, kk}, 0.3f), pick(2) ? weight({co}, 0.5f) : graph::kNone,
                     1, kk / 2);
        break;
      }
      case 2: {  // group norm (+ time embedding add)
        ValueId x = a;
        if (pick(2)) {
          const ValueId tv = g.linear(t, weight({C, 16}, 0.5f), weight({C}, 0.5f));
          vecs.push_back(tv);
          x = g.add(a, tv);
        }
        y = g.group_norm(x, weight({C}, 1.f), weight({C}, 0.5f), groups(C), 1e-5f, pick(2));
        break;
      }
      case 3: {  // residual add / mul of two same-shape images
        ValueId b = graph::kNone;
        for (ValueId v : images)
          if (v != a && g.shape(v) == g.shape(a)) b = v;
        if (b == graph::kNone) b = g.scale(a, 0.5f, 0.1f);
        y = pick(3) ? g.add(a, b) : g.mul(a, b);
        break;
      }
      case 4:
        y = pick(2) ? g.silu(a) : (pick(2) ? g.gelu(a) : g.scale(a, 1.5f, -0.2f));
        break;
      case 5: {  // concat with another image
        y = g.concat(a, any_image());
        break;
      }
      case 6:
        if (C > 4) y = g.slice(a, 2, C - 1);
        break;
      case 7: {  // linear on the sequence view (+ gelu / quick gelu)
        ValueId s = g.reshape(a, {N, H * W, C});
        s = g.linear(s, weight({C, C}, 0.4f), weight({C}, 0.2f));
        if (pick(2)) s = pick(2) ? g.gelu(s) : g.quick_gelu(s);
        y = g.reshape(s, {N, H, W, C});
        break;
      }
      case 8: {  // self attention block with residual
        const int heads = groups(C);
        const ValueId s = g.reshape(a, {N, H * W, C});
        const ValueId n = g.layer_norm(s, weight({C}, 1.f), weight({C}, 0.2f), 1e-5f);
        const ValueId at =
            g.attention(g.linear(n, weight({C, C}, 0.4f), graph::kNone),
                        g.linear(n, weight({C, C}, 0.4f), graph::kNone),
                        g.linear(n, weight({C, C}, 0.4f), graph::kNone), heads, pick(4) == 0);
        y = g.reshape(g.add(g.linear(at, weight({C, C}, 0.4f), weight({C}, 0.1f)), s),
                      {N, H, W, C});
        break;
      }
      case 9: {  // up and back down
        y = g.conv2d(g.upsample_nearest(a, int(2 * H), int(2 * W)), weight({C, C, 3, 3}, 0.2f),
                     weight({C}, 0.1f), 2, 1);
        break;
      }
      case 10: {  // geglu feed-forward on the sequence view
        const ValueId s = g.reshape(a, {N, H * W, C});
        const ValueId f = g.linear(g.geglu(g.linear(s, weight({4 * C, C}, 0.3f), graph::kNone)),
                                   weight({C, 2 * C}, 0.3f), graph::kNone);
        y = g.reshape(g.add(f, s), {N, H, W, C});
        break;
      }
      case 11:
        for (ValueId v : vecs)
          if (g.shape(v).back() == C) y = g.mul(a, v);
        break;
      default: {  // resnet-like block on a
        const ValueId h =
            g.conv2d(g.group_norm(a, weight({C}, 1.f), weight({C}, 0.1f), groups(C), 1e-5f, true),
                     weight({C, C, 3, 3}, 0.2f), weight({C}, 0.1f), 1, 1);
        y = g.add(a, h);
        break;
      }
    }
    if (y != graph::kNone) images.push_back(y);
  }
  g.output("last", images.back());
  g.output("other", images[images.size() / 2]);
  g.output("again", images.back());  // the same value twice
  return net;
}

// Parameter: precision, and whether the portable (non-AVX-512) kernels are forced.
class RandomGraphs : public testing::TestWithParam<std::tuple<Precision, bool>> {
 protected:
  void SetUp() override {
    SDC_SKIP_UNLESS_PRECISION_RUNS(std::get<0>(GetParam()));
    cpu::force_generic_kernels(std::get<1>(GetParam()));
  }
  void TearDown() override { cpu::force_generic_kernels(false); }
};

TEST_P(RandomGraphs, MatchReferenceInterpreter) {
  const bool bf16 = std::get<0>(GetParam()) == Precision::BF16;
  for (uint32_t seed = 1; seed <= 40; ++seed) {
    const RandomNet net = random_net(seed);
    PlanOptions o;
    o.precision = std::get<0>(GetParam());
    o.check = true;
    auto p = Plan::compile(net.g, o);
    for (const auto& [name, v] : net.inputs) fill_input(*p, name, v);
    p->run();
    if (std::getenv("SDC_TEST_VERBOSE"))
      for (const auto& st : p->steps()) std::printf("%s\n", st.kind.c_str());
    const std::vector<Vec> ref = reference_run(net.g, net.inputs);
    for (size_t i = 0; i < ref.size(); ++i) {
      const std::string name = net.g.outputs()[i].first;
      EXPECT_LT(rel_err(p->output(name), ref[i]), bf16 ? 6e-2 : 1e-4)
          << "seed " << seed << " output " << name;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Cpu, RandomGraphs,
                         testing::Combine(testing::Values(Precision::F32, Precision::BF16),
                                          testing::Bool()));

}  // namespace
}  // namespace sdc::test
