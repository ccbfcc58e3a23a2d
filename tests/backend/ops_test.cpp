// Every graph op through a compiled CPU plan against the scalar references of reference.h, in f32
// (AVX-512 and portable kernel paths) and bf16, on odd shapes, batch 2 and channel counts that are
// not multiples of 16.
#include <gtest/gtest.h>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/plan.h"
#include "common/error.h"
#include "reference.h"

namespace sdc::test {
namespace {

using cpu::Plan;
using cpu::PlanOptions;
using cpu::Precision;

// Parameter: (precision, the widest path the own kernels may take: the CPU's, AVX2 or scalar).
struct Mode {
  Precision precision;
  cpu::KernelIsa isa;
};
std::string mode_name(const testing::TestParamInfo<Mode>& i) {
  const cpu::KernelIsa k = i.param.isa;
  return std::string(cpu::precision_name(i.param.precision)) +
         (k == cpu::KernelIsa::Avx512 ? "_native"
          : k == cpu::KernelIsa::Avx2 ? "_avx2"
                                      : "_scalar");
}

class Ops : public testing::TestWithParam<Mode> {
 protected:
  void SetUp() override {
    SDC_SKIP_UNLESS_PRECISION_RUNS(GetParam().precision);
    cpu::force_kernel_isa(GetParam().isa);
  }
  void TearDown() override { cpu::force_kernel_isa(cpu::KernelIsa::Avx512); }
  bool bf16() const { return GetParam().precision == Precision::BF16; }
  std::unique_ptr<Plan> compile(const graph::Graph& g) {
    PlanOptions o;
    o.precision = GetParam().precision;
    o.check = true;
    return Plan::compile(g, o);
  }
  // Tolerance for results that went through a matmul (bf16 inputs) or only through own kernels.
  double mm_tol() const { return bf16() ? 2e-2 : 2e-5; }
  double tol() const { return bf16() ? 1e-5 : 1e-5; }
};

struct ConvCase {
  int64_t N, H, W, Ci, Co, k;
  int stride, pt, pl, pb, pr;
  bool bias;
};

TEST_P(Ops, Conv2d) {
  const ConvCase cases[] = {
      {2, 7, 5, 3, 5, 3, 1, 1, 1, 1, 1, true},    {1, 9, 8, 20, 19, 3, 2, 0, 0, 1, 1, true},
      {2, 6, 7, 17, 33, 1, 1, 0, 0, 0, 0, false}, {1, 8, 8, 16, 16, 1, 2, 0, 0, 0, 0, true},
      {1, 5, 6, 4, 8, 3, 2, 1, 0, 0, 1, true},
  };
  uint32_t seed = 1;
  for (const ConvCase& c : cases) {
    graph::Graph g;
    const Vec x = random_vec(c.N * c.H * c.W * c.Ci, seed++);
    const Vec w = random_vec(c.Co * c.Ci * c.k * c.k, seed++, -0.3f, 0.3f);
    const Vec b = random_vec(c.Co, seed++);
    const auto xi = g.input("x", {c.N, c.H, c.W, c.Ci});
    const auto wi = add_weight(g, "w", w, {c.Co, c.Ci, c.k, c.k}, DType::F16);
    const auto bi = c.bias ? add_weight(g, "b", b, {c.Co}) : graph::kNone;
    g.output("y", g.conv2d(xi, wi, bi, c.stride, c.pt, c.pl, c.pb, c.pr, "conv"));
    auto p = compile(g);
    fill_input(*p, "x", x);
    p->run();
    // Weights were stored as F16: the reference uses the same rounded values.
    std::vector<float> wr = TensorRef::from_f32(w, {int64_t(w.size())}, DType::F16).to_f32();
    int64_t Ho, Wo;
    const Vec ref =
        conv2d_ref(bf16() ? round_bf16(x) : x, bf16() ? round_bf16(wr) : wr, c.bias ? &b : nullptr,
                   c.N, c.H, c.W, c.Ci, c.Co, c.k, c.k, c.stride, c.pt, c.pl, c.pb, c.pr, Ho, Wo);
    EXPECT_EQ(p->output_shape("y"), (Shape{c.N, Ho, Wo, c.Co}));
    EXPECT_LT(rel_err(p->output("y"), ref), bf16() ? 5e-3 : 2e-5) << "conv case " << seed;
  }
}

TEST_P(Ops, ConvWithResidualAndSilu) {
  // conv -> + residual (dies here: sum post-op) -> silu; and a residual that stays alive (binary).
  graph::Graph g;
  const int64_t N = 2, H = 6, W = 5, C = 12;
  const Vec x = random_vec(N * H * W * C, 7), r = random_vec(N * H * W * C, 8);
  const Vec w = random_vec(C * C * 9, 9, -0.2f, 0.2f), b = random_vec(C, 10);
  const auto xi = g.input("x", {N, H, W, C});
  const auto ri = g.input("r", {N, H, W, C});
  const auto wi = add_weight(g, "w", w, {C, C, 3, 3});
  const auto bi = add_weight(g, "b", b, {C});
  const auto r2 = g.scale(ri, 1.f, 0.5f);  // an arena value that dies in the add
  const auto y1 = g.silu(g.add(g.conv2d(xi, wi, bi, 1, 1, "c1"), r2));
  const auto y2 = g.add(ri, g.conv2d(xi, wi, bi, 1, 1, "c2"));  // input residual: binary post-op
  g.output("y1", y1);
  g.output("y2", y2);
  auto p = compile(g);
  fill_input(*p, "x", x);
  fill_input(*p, "r", r);
  p->run();
  int64_t Ho, Wo;
  const Vec conv = conv2d_ref(bf16() ? round_bf16(x) : x, bf16() ? round_bf16(w) : w, &b, N, H, W,
                              C, C, 3, 3, 1, 1, 1, 1, 1, Ho, Wo);
  Vec ref1(conv.size()), ref2(conv.size());
  for (size_t i = 0; i < conv.size(); ++i) {
    const double v = double(conv[i]) + r[i] + 0.5;
    ref1[i] = float(v * sigmoid_ref(v));
    ref2[i] = conv[i] + r[i];
  }
  EXPECT_LT(rel_err(p->output("y1"), ref1), bf16() ? 5e-3 : 2e-5);
  EXPECT_LT(rel_err(p->output("y2"), ref2), bf16() ? 5e-3 : 2e-5);
  bool has_sum = false, has_add = false;
  for (const auto& s : p->steps()) {
    has_sum |= s.kind == "Conv2d+sum+silu";
    has_add |= s.kind == "Conv2d+add";
  }
  EXPECT_TRUE(has_sum);
  EXPECT_TRUE(has_add);
}

TEST_P(Ops, ConvWithResidualAndReluAsTaesdBlocks) {
  // TAESD's Block: relu(conv(relu(conv(x))) + x), and a conv + tanh: every activation a post-op.
  graph::Graph g;
  const int64_t N = 1, H = 5, W = 7, C = 16;
  const Vec x = random_vec(N * H * W * C, 17), w = random_vec(C * C * 9, 18, -0.2f, 0.2f);
  const Vec b = random_vec(C, 19);
  const auto xi = g.input("x", {N, H, W, C});
  const auto wi = add_weight(g, "w", w, {C, C, 3, 3});
  const auto bi = add_weight(g, "b", b, {C});
  const auto x2 = g.scale(xi, 1.f, 0.f);  // an arena value (the block input) that dies in the add
  const auto h = g.relu(g.conv2d(x2, wi, bi, 1, 1, "c1"));
  g.output("block", g.relu(g.add(g.conv2d(h, wi, bi, 1, 1, "c2"), x2)));
  g.output("tanh", g.tanh(g.conv2d(xi, wi, bi, 1, 1, "c3")));
  auto p = compile(g);
  fill_input(*p, "x", x);
  p->run();
  const std::vector<std::pair<std::string, Vec>> inputs = {{"x", x}};
  const std::vector<Vec> ref = reference_run(g, inputs);  // the outputs, in order
  ASSERT_EQ(ref.size(), 2u);
  const Vec& ref_block = ref[0];
  const Vec& ref_tanh = ref[1];
  ASSERT_EQ(ref_block.size(), size_t(N * H * W * C));
  EXPECT_LT(rel_err(p->output("block"), ref_block), bf16() ? 1e-2 : 2e-5);
  EXPECT_LT(rel_err(p->output("tanh"), ref_tanh), bf16() ? 1e-2 : 2e-5);
  std::vector<std::string> kinds;
  for (const auto& s : p->steps()) kinds.push_back(s.kind);
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), "Conv2d+relu"), kinds.end());
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), "Conv2d+sum+relu"), kinds.end());
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), "Conv2d+tanh"), kinds.end());
}

TEST_P(Ops, Linear) {
  struct Case {
    int64_t N, T, K, Nc;
    bool bias, w4d;
    int act;  // 0 none, 1 gelu, 2 quickgelu, 3 scale, 4 residual add
  };
  const Case cases[] = {{2, 7, 13, 11, true, false, 0}, {1, 5, 32, 48, false, true, 0},
                        {2, 3, 19, 40, true, false, 1}, {1, 9, 24, 20, true, false, 2},
                        {2, 4, 16, 16, true, false, 3}, {2, 6, 21, 21, true, false, 4}};
  uint32_t seed = 100;
  for (const Case& c : cases) {
    graph::Graph g;
    const Vec x = random_vec(c.N * c.T * c.K, seed++),
              w = random_vec(c.Nc * c.K, seed++, -0.4f, 0.4f);
    const Vec b = random_vec(c.Nc, seed++), r = random_vec(c.N * c.T * c.Nc, seed++);
    const auto xi = g.input("x", {c.N, c.T, c.K});
    const auto ri = g.input("r", {c.N, c.T, c.Nc});
    const auto wi =
        add_weight(g, "w", w, c.w4d ? Shape{c.Nc, c.K, 1, 1} : Shape{c.Nc, c.K}, DType::BF16);
    const auto bi = c.bias ? add_weight(g, "b", b, {c.Nc}) : graph::kNone;
    auto y = g.linear(xi, wi, bi, "lin");
    if (c.act == 1) y = g.gelu(y);
    if (c.act == 2) y = g.quick_gelu(y);
    if (c.act == 3) y = g.scale(y, 0.5f, -0.25f);
    if (c.act == 4) y = g.add(y, ri);
    g.output("y", y);
    auto p = compile(g);
    fill_input(*p, "x", x);
    fill_input(*p, "r", r);
    p->run();
    const Vec wr = round_bf16(w);  // stored as BF16
    Vec ref =
        linear_ref(bf16() ? round_bf16(x) : x, wr, c.bias ? &b : nullptr, c.N * c.T, c.K, c.Nc);
    for (size_t i = 0; i < ref.size(); ++i) {
      const double v = ref[i];
      if (c.act == 1) ref[i] = float(gelu_ref(v));
      if (c.act == 2) ref[i] = float(v * sigmoid_ref(1.702 * v));
      if (c.act == 3) ref[i] = float(v * 0.5 - 0.25);
      if (c.act == 4) ref[i] = float(v + r[i]);
    }
    EXPECT_LT(rel_err(p->output("y"), ref), bf16() ? 5e-3 : 2e-5) << "linear act " << c.act;
    // The activation/add is fused into the matmul (bf16 adds one Convert of the input x).
    ASSERT_EQ(p->steps().size(), bf16() ? 2u : 1u);
    EXPECT_EQ(p->steps().back().kind.rfind("Linear", 0), 0u);
  }
}

TEST_P(Ops, LinearGeglu) {
  // The feed-forward projection followed by GEGLU runs as two matmuls (value, GELU(gate)).
  const int64_t N = 2, T = 7, K = 24, D = 20;
  const Vec x = random_vec(N * T * K, 150), w = random_vec(2 * D * K, 151, -0.4f, 0.4f);
  const Vec b = random_vec(2 * D, 152);
  graph::Graph g;
  const auto y = g.linear(g.input("x", {N, T, K}), add_weight(g, "w", w, {2 * D, K, 1, 1}),
                          add_weight(g, "b", b, {2 * D}));
  g.output("y", g.geglu(y));
  auto p = compile(g);
  fill_input(*p, "x", x);
  p->run();
  auto rb = [&](const Vec& v) { return bf16() ? round_bf16(v) : v; };
  const Vec h = linear_ref(rb(x), rb(w), &b, N * T, K, 2 * D);
  Vec ref(size_t(N * T * D));
  for (int64_t r = 0; r < N * T; ++r)
    for (int64_t i = 0; i < D; ++i)
      ref[size_t(r * D + i)] =
          float(h[size_t(r * 2 * D + i)] * gelu_ref(h[size_t(r * 2 * D + D + i)]));
  EXPECT_LT(rel_err(p->output("y"), ref), bf16() ? 5e-3 : 2e-5);
  EXPECT_EQ(p->steps().back().kind, "Linear+geglu");
}

TEST_P(Ops, GroupNorm) {
  struct Case {
    int64_t N, H, W, C, G;
    bool silu;
    float offset;  // large mean vs spread: accuracy of the statistics
  };
  const Case cases[] = {{2, 5, 7, 24, 4, false, 0.f},
                        {1, 9, 3, 40, 8, true, 0.f},
                        {2, 16, 16, 64, 32, true, 100.f},
                        {1, 33, 31, 20, 5, false, -30.f}};
  uint32_t seed = 200;
  for (const Case& c : cases) {
    graph::Graph g;
    const int64_t P = c.H * c.W;
    Vec x = random_vec(c.N * P * c.C, seed++);
    for (float& v : x) v += c.offset;
    const Vec ga = random_vec(c.C, seed++, 0.5f, 1.5f), be = random_vec(c.C, seed++);
    const auto xi = g.input("x", {c.N, c.H, c.W, c.C});
    const auto y = g.group_norm(xi, add_weight(g, "g", ga, {c.C}), add_weight(g, "b", be, {c.C}),
                                int(c.G), 1e-6f, c.silu, "gn");
    g.output("y", y);
    auto p = compile(g);
    fill_input(*p, "x", x);
    p->run();
    const Vec ref = group_norm_ref(x, ga, be, c.N, P, c.C, c.G, 1e-6, c.silu);
    EXPECT_LT(rel_err(p->output("y"), ref), 1e-5) << "C " << c.C << " offset " << c.offset;
  }
}

TEST_P(Ops, GroupNormWithTimeEmbeddingAddFeedingConv) {
  // The ResNet pattern: h + temb[N, C] -> GroupNorm+SiLU -> conv. The add fuses into the norm and,
  // with bf16, the norm writes bf16 straight for the conv (no Convert step).
  graph::Graph g;
  const int64_t N = 2, H = 5, W = 6, C = 24, Co = 8;
  const Vec h = random_vec(N * H * W * C, 301), t = random_vec(N * C, 302, -3.f, 3.f);
  const Vec ga = random_vec(C, 303, 0.5f, 1.5f), be = random_vec(C, 304);
  const Vec w = random_vec(Co * C * 9, 305, -0.2f, 0.2f);
  const auto hi = g.input("h", {N, H, W, C});
  const auto ti = g.input("t", {N, C});
  const auto gn = g.group_norm(g.add(hi, ti), add_weight(g, "g", ga, {C}),
                               add_weight(g, "b", be, {C}), 4, 1e-5f, true);
  g.output("y", g.conv2d(gn, add_weight(g, "w", w, {Co, C, 3, 3}), graph::kNone, 1, 1));
  auto p = compile(g);
  fill_input(*p, "h", h);
  fill_input(*p, "t", t);
  p->run();
  Vec sum(h.size());
  for (size_t i = 0; i < h.size(); ++i) sum[i] = h[i] + t[(i / size_t(H * W * C)) * C + i % C];
  Vec norm = group_norm_ref(sum, ga, be, N, H * W, C, 4, 1e-5, true);
  if (bf16()) norm = round_bf16(norm);
  int64_t Ho, Wo;
  const Vec ref = conv2d_ref(norm, bf16() ? round_bf16(w) : w, nullptr, N, H, W, C, Co, 3, 3, 1, 1,
                             1, 1, 1, Ho, Wo);
  EXPECT_LT(rel_err(p->output("y"), ref), bf16() ? 5e-3 : 2e-5);
  const auto steps = p->steps();
  ASSERT_EQ(steps.size(), 2u);
  EXPECT_EQ(steps[0].kind, "GroupNorm+add+silu");
  EXPECT_EQ(steps[1].kind, "Conv2d");
}

TEST_P(Ops, ConvOutputReadOnlyByNormsIsBf16) {
  // conv -> GroupNorm+SiLU -> conv and linear -> LayerNorm -> linear: with bf16 the first
  // conv/linear writes bf16 (its only reader is a norm, which computes in f32).
  graph::Graph g;
  const int64_t N = 2, H = 5, W = 4, C = 32, T = 6, K = 24;
  const Vec x = random_vec(N * H * W * C, 820), w1 = random_vec(C * C * 9, 821, -0.1f, 0.1f);
  const Vec w2 = random_vec(C * C, 822, -0.2f, 0.2f), b1 = random_vec(C, 823);
  const Vec s = random_vec(N * T * K, 824), l1 = random_vec(K * K, 825, -0.3f, 0.3f);
  const Vec l2 = random_vec(K * K, 826, -0.3f, 0.3f);
  const Vec ones(size_t(C), 1.f), zeros(size_t(C), 0.f);
  const auto xi = g.input("x", {N, H, W, C});
  const auto c1 =
      g.conv2d(xi, add_weight(g, "w1", w1, {C, C, 3, 3}), add_weight(g, "b1", b1, {C}), 1, 1);
  const auto n1 = g.group_norm(c1, add_weight(g, "g", ones, {C}), add_weight(g, "b", zeros, {C}), 8,
                               1e-5f, true);
  g.output("y", g.conv2d(n1, add_weight(g, "w2", w2, {C, C, 1, 1}), graph::kNone, 1, 0));
  const auto si = g.input("s", {N, T, K});
  const auto h = g.linear(si, add_weight(g, "l1", l1, {K, K}), graph::kNone);
  const auto ln = g.layer_norm(h, add_weight(g, "lg", Vec(size_t(K), 1.f), {K}),
                               add_weight(g, "lb", Vec(size_t(K), 0.f), {K}), 1e-5f);
  g.output("z", g.linear(ln, add_weight(g, "l2", l2, {K, K}), graph::kNone));
  auto p = compile(g);
  fill_input(*p, "x", x);
  fill_input(*p, "s", s);
  p->run();
  auto rb = [&](const Vec& v) { return bf16() ? round_bf16(v) : v; };
  int64_t Ho, Wo;
  const Vec c1r = rb(conv2d_ref(rb(x), rb(w1), &b1, N, H, W, C, C, 3, 3, 1, 1, 1, 1, 1, Ho, Wo));
  const Vec n1r = rb(group_norm_ref(c1r, ones, zeros, N, H * W, C, 8, 1e-5, true));
  const Vec yr = conv2d_ref(n1r, rb(w2), nullptr, N, H, W, C, C, 1, 1, 1, 0, 0, 0, 0, Ho, Wo);
  EXPECT_LT(rel_err(p->output("y"), yr), bf16() ? 1e-2 : 2e-5);
  const Vec hr = rb(linear_ref(rb(s), rb(l1), nullptr, N * T, K, K));
  const Vec lr = rb(layer_norm_ref(hr, Vec(size_t(K), 1.f), Vec(size_t(K), 0.f), N * T, K, 1e-5));
  EXPECT_LT(rel_err(p->output("z"), linear_ref(lr, rb(l2), nullptr, N * T, K, K)),
            bf16() ? 1e-2 : 2e-5);
  int converts = 0;
  for (const auto& st : p->steps()) converts += st.kind == "Convert";
  EXPECT_EQ(converts, bf16() ? 2 : 0) << "only the two graph inputs are converted";
  const DType norm_input = bf16() ? DType::BF16 : DType::F32;
  const auto steps = p->steps();
  const auto conv1 = std::find_if(steps.begin(), steps.end(),
                                  [](const cpu::StepInfo& st) { return st.kind == "Conv2d"; });
  ASSERT_NE(conv1, steps.end());
  EXPECT_EQ(conv1->out_type, norm_input) << "the conv read only by GroupNorm writes bf16";
  int bf16_linears = 0;
  for (const auto& st : p->steps())
    bf16_linears += st.kind == "Linear" && st.out_type == DType::BF16;
  EXPECT_EQ(bf16_linears, bf16() ? 1 : 0) << "the linear read only by LayerNorm writes bf16";
}

TEST_P(Ops, LayerNorm) {
  for (int64_t C : {19, 64, 768}) {
    graph::Graph g;
    const int64_t N = 2, T = 7;
    Vec x = random_vec(N * T * C, uint32_t(400 + C));
    for (float& v : x) v = v * 3.f + 2.f;
    const Vec ga = random_vec(C, 401, 0.5f, 1.5f), be = random_vec(C, 402);
    const auto xi = g.input("x", {N, T, C});
    g.output("y",
             g.layer_norm(xi, add_weight(g, "g", ga, {C}), add_weight(g, "b", be, {C}), 1e-5f));
    auto p = compile(g);
    fill_input(*p, "x", x);
    p->run();
    EXPECT_LT(rel_err(p->output("y"), layer_norm_ref(x, ga, be, N * T, C, 1e-5)), 1e-5) << C;
  }
}

TEST_P(Ops, Activations) {
  const int64_t n = 1000 + 13;
  const Vec x = random_vec(n, 500, -8.f, 8.f);
  graph::Graph g;
  const auto xi = g.input("x", {1, n});
  g.output("gelu", g.gelu(xi));
  g.output("quick", g.quick_gelu(xi));
  g.output("silu", g.silu(xi));
  g.output("scale", g.scale(xi, -1.5f, 0.25f));
  g.output("relu", g.relu(xi));
  g.output("tanh", g.tanh(xi));
  auto p = compile(g);
  fill_input(*p, "x", x);
  p->run();
  Vec gelu(x.size()), quick(x.size()), silu(x.size()), scale(x.size()), relu(x.size()),
      tanh(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    gelu[i] = float(gelu_ref(x[i]));
    quick[i] = float(x[i] * sigmoid_ref(1.702 * x[i]));
    silu[i] = float(x[i] * sigmoid_ref(x[i]));
    scale[i] = float(x[i] * -1.5 + 0.25);
    relu[i] = std::max(x[i], 0.f);
    tanh[i] = float(std::tanh(double(x[i])));
  }
  EXPECT_EQ(std::vector<float>(p->output("relu"), p->output("relu") + n), relu);
  EXPECT_LT(rel_err(p->output("tanh"), tanh), 1e-6);
  // tanh keeps its relative accuracy near 0 (TAESD's input clamp sees small latents too).
  const float* tp = p->output("tanh");
  for (size_t i = 0; i < x.size(); ++i)
    if (std::abs(x[i]) > 1e-3f) {
      ASSERT_NEAR(tp[i], tanh[i], 2e-6 * std::abs(tanh[i]) + 1e-7) << x[i];
    }
  EXPECT_LT(rel_err(p->output("gelu"), gelu), 1e-6);
  EXPECT_LT(rel_err(p->output("quick"), quick), 1e-6);
  EXPECT_LT(rel_err(p->output("silu"), silu), 1e-6);
  EXPECT_LT(rel_err(p->output("scale"), scale), 1e-6);
  // Pointwise relative accuracy of GELU near 0, where it behaves like x/2.
  const float* gp = p->output("gelu");
  for (size_t i = 0; i < x.size(); ++i)
    if (std::abs(x[i]) > 1e-3f && std::abs(x[i]) < 4.f) {
      ASSERT_NEAR(gp[i], gelu[i], 2e-6 * std::abs(gelu[i]) + 1e-7) << x[i];
    }
}

TEST_P(Ops, Geglu) {
  const int64_t N = 2, T = 5, D = 21;
  const Vec x = random_vec(N * T * 2 * D, 600, -4.f, 4.f);
  graph::Graph g;
  g.output("y", g.geglu(g.input("x", {N, T, 2 * D})));
  auto p = compile(g);
  fill_input(*p, "x", x);
  p->run();
  Vec ref(size_t(N * T * D));
  for (int64_t r = 0; r < N * T; ++r)
    for (int64_t i = 0; i < D; ++i)
      ref[size_t(r * D + i)] =
          float(x[size_t(r * 2 * D + i)] * gelu_ref(x[size_t(r * 2 * D + D + i)]));
  EXPECT_LT(rel_err(p->output("y"), ref), 1e-6);
}

TEST_P(Ops, AddMulBroadcasting) {
  const int64_t N = 2, H = 3, W = 5, C = 19;
  const Vec a = random_vec(N * H * W * C, 700), b = random_vec(N * H * W * C, 701);
  const Vec bc = random_vec(N * C, 702), s = {0.75f};
  graph::Graph g;
  const auto ai = g.input("a", {N, H, W, C});
  const auto bi = g.input("b", {N, H, W, C});
  const auto ci = g.input("c", {N, C});
  const auto si = g.input("s", {1});
  g.output("add", g.add(ai, bi));
  g.output("mul", g.mul(ai, bi));
  g.output("add_nc", g.add(ai, ci));
  g.output("mul_nc", g.mul(ai, ci));
  g.output("add_s", g.add(ai, si));
  g.output("mul_s", g.mul(ai, si));
  auto p = compile(g);
  fill_input(*p, "a", a);
  fill_input(*p, "b", b);
  fill_input(*p, "c", bc);
  fill_input(*p, "s", s);
  p->run();
  const size_t n = a.size();
  Vec add(n), mul(n), add_nc(n), mul_nc(n), add_s(n), mul_s(n);
  for (size_t i = 0; i < n; ++i) {
    const float cv = bc[(i / size_t(H * W * C)) * C + i % C];
    add[i] = a[i] + b[i];
    mul[i] = a[i] * b[i];
    add_nc[i] = a[i] + cv;
    mul_nc[i] = a[i] * cv;
    add_s[i] = a[i] + 0.75f;
    mul_s[i] = a[i] * 0.75f;
  }
  EXPECT_EQ(rel_err(p->output("add"), add), 0.0);
  EXPECT_EQ(rel_err(p->output("mul"), mul), 0.0);
  EXPECT_EQ(rel_err(p->output("add_nc"), add_nc), 0.0);
  EXPECT_EQ(rel_err(p->output("mul_nc"), mul_nc), 0.0);
  EXPECT_EQ(rel_err(p->output("add_s"), add_s), 0.0);
  EXPECT_EQ(rel_err(p->output("mul_s"), mul_s), 0.0);
}

TEST_P(Ops, UpsampleConcatSlice) {
  const int64_t N = 2, H = 3, W = 5, C = 7, C2 = 4;
  const Vec x = random_vec(N * H * W * C, 800), z = random_vec(N * H * W * C2, 801);
  graph::Graph g;
  const auto xi = g.input("x", {N, H, W, C});
  const auto zi = g.input("z", {N, H, W, C2});
  g.output("up2", g.upsample_nearest(xi, 6, 10));
  g.output("up_odd", g.upsample_nearest(xi, 7, 11));
  g.output("down", g.upsample_nearest(xi, 2, 3));
  g.output("cat", g.concat(xi, zi));
  g.output("slice", g.slice(xi, 2, 6));
  auto p = compile(g);
  fill_input(*p, "x", x);
  fill_input(*p, "z", z);
  p->run();
  auto up_ref = [&](int64_t Ho, int64_t Wo) {
    Vec r(size_t(N * Ho * Wo * C));
    for (int64_t n = 0; n < N; ++n)
      for (int64_t y = 0; y < Ho; ++y)
        for (int64_t xx = 0; xx < Wo; ++xx)
          for (int64_t c = 0; c < C; ++c)
            r[size_t(((n * Ho + y) * Wo + xx) * C + c)] =
                x[size_t(((n * H + nearest_src(y, H, Ho)) * W + nearest_src(xx, W, Wo)) * C + c)];
    return r;
  };
  EXPECT_EQ(rel_err(p->output("up2"), up_ref(6, 10)), 0.0);
  EXPECT_EQ(rel_err(p->output("up_odd"), up_ref(7, 11)), 0.0);
  EXPECT_EQ(rel_err(p->output("down"), up_ref(2, 3)), 0.0);
  const int64_t rows = N * H * W;
  Vec cat(size_t(rows * (C + C2))), sl(size_t(rows * 4));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < C; ++c) cat[size_t(r * (C + C2) + c)] = x[size_t(r * C + c)];
    for (int64_t c = 0; c < C2; ++c) cat[size_t(r * (C + C2) + C + c)] = z[size_t(r * C2 + c)];
    for (int64_t c = 0; c < 4; ++c) sl[size_t(r * 4 + c)] = x[size_t(r * C + 2 + c)];
  }
  EXPECT_EQ(rel_err(p->output("cat"), cat), 0.0);
  EXPECT_EQ(rel_err(p->output("slice"), sl), 0.0);
}

// A 3x3 convolution over a 2x nearest upsampling runs as one fused step (a 2x2 convolution over
// the small image and a phase interleave, upsample_conv.h) — with bias and SiLU, batches of one
// and two, square and not — and matches the convolution over the upsampled image.
TEST_P(Ops, UpsampleFeedingConvRunsFusedAndMatches) {
  struct Case {
    int64_t N, H, W, C, Co;
  };
  for (const Case c : {Case{1, 32, 32, 8, 5}, Case{2, 24, 20, 20, 6}, Case{1, 40, 33, 16, 32}}) {
    const Vec x = random_vec(c.N * c.H * c.W * c.C, 810);
    const Vec w = random_vec(c.Co * c.C * 9, 811, -0.2f, 0.2f), b = random_vec(c.Co, 812);
    graph::Graph g;
    const auto up =
        g.upsample_nearest(g.input("x", {c.N, c.H, c.W, c.C}), int(2 * c.H), int(2 * c.W));
    const auto conv =
        g.conv2d(up, add_weight(g, "w", w, {c.Co, c.C, 3, 3}), add_weight(g, "b", b, {c.Co}), 1, 1);
    g.output("y", g.silu(conv));
    auto p = compile(g);
    fill_input(*p, "x", x);
    p->run();
    const Vec u = upsampled_2x(x, c.N, c.H, c.W, c.C);
    int64_t Ho, Wo;
    Vec ref = conv2d_ref(bf16() ? round_bf16(u) : u, bf16() ? round_bf16(w) : w, &b, c.N, 2 * c.H,
                         2 * c.W, c.C, c.Co, 3, 3, 1, 1, 1, 1, 1, Ho, Wo);
    for (float& v : ref) v = float(v * sigmoid_ref(v));
    EXPECT_LT(rel_err(p->output("y"), ref), bf16() ? 5e-3 : 2e-5) << c.H << "x" << c.W;
    bool fused = false;
    for (const auto& st : p->steps()) {
      EXPECT_NE(st.kind, "UpsampleNearest");
      fused |= st.kind == "Conv2d.up2x+silu";
    }
    EXPECT_TRUE(fused);
  }
}

// Where the upsampling cannot fold into the convolution it stays a step of its own, and the
// results are the same: the upsampled image read twice, a 1x1 convolution, a residual added to
// the convolution, an upsampling that is not exactly 2x; and where folding would not pay (an
// image so small that packing the bigger kernel costs more than a few runs save).
TEST_P(Ops, UpsampleThatCannotFoldStaysAStep) {
  const int64_t N = 1, C = 8, Co = 8;
  const Vec x = random_vec(N * 32 * 32 * C, 820), w = random_vec(Co * C * 9, 821, -0.2f, 0.2f);
  const Vec w1 = random_vec(Co * C, 822, -0.2f, 0.2f), r = random_vec(N * 64 * 64 * Co, 823);
  // 0: upsampled image read twice; 1: 1x1 convolution; 2: a residual added to the convolution;
  // 3: not exactly 2x; 4: an 8x8 image (folding would not pay)
  for (int variant = 0; variant < 5; ++variant) {
    graph::Graph g;
    const int64_t H = variant == 4 ? 8 : 32, W = H;
    const Vec xv(x.begin(), x.begin() + N * H * W * C);
    const auto xi = g.input("x", {N, H, W, C});
    const auto up = g.upsample_nearest(xi, int(variant == 3 ? 2 * H + 1 : 2 * H),
                                       int(variant == 3 ? 2 * W + 3 : 2 * W));
    graph::ValueId y = variant == 1
                           ? g.conv2d(up, add_weight(g, "w", w1, {Co, C, 1, 1}), graph::kNone, 1, 0)
                           : g.conv2d(up, add_weight(g, "w", w, {Co, C, 3, 3}), graph::kNone, 1, 1);
    std::vector<std::pair<std::string, Vec>> inputs{{"x", xv}};
    if (variant == 0) y = g.add(y, up);
    if (variant == 2) {
      y = g.add(y, g.input("r", {N, 2 * H, 2 * W, Co}));
      inputs.emplace_back("r", r);
    }
    g.output("y", y);
    auto p = compile(g);
    for (const auto& [name, v] : inputs) fill_input(*p, name, v);
    p->run();
    bool upsample_step = false;
    for (const auto& st : p->steps()) upsample_step |= st.kind == "UpsampleNearest";
    EXPECT_TRUE(upsample_step) << "variant " << variant;
    EXPECT_LT(rel_err(p->output("y"), reference_run(g, inputs)[0]), bf16() ? 1e-2 : 2e-5)
        << "variant " << variant;
  }
}

// A table whose bytes have no owner (the caller keeps them only while compiling) is copied into
// the plan as f32; bf16 tables convert exactly.
TEST_P(Ops, EmbeddingTablesWithoutOwnerOrInBf16) {
  const int64_t V = 7, C = 20;
  const Vec values = random_vec(V * C, 901);
  for (const bool owned : {true, false}) {
    SCOPED_TRACE(owned ? "owned bf16 table" : "table without owner");
    TensorRef t = TensorRef::from_f32(values, {V, C}, DType::BF16, "test");
    std::vector<uint8_t> bytes(static_cast<const uint8_t*>(t.data),
                               static_cast<const uint8_t*>(t.data) + t.nbytes);
    if (!owned) t.owner.reset(), t.data = bytes.data();
    graph::Graph g;
    const auto ids = g.input("ids", {1, 4}, DType::I32);
    g.output("e", g.embedding(ids, g.weight("table", t)));
    auto p = compile(g);
    // Without an owner the plan may not read the caller's bytes after compiling.
    std::fill(bytes.begin(), bytes.end(), uint8_t(0xff));
    const int32_t want[4] = {6, 0, 2, 6};
    std::copy(want, want + 4, p->input_i32("ids"));
    p->run();
    const Vec tr = TensorRef::from_f32(values, {V * C}, DType::BF16).to_f32();
    Vec ref;
    for (int32_t id : want) ref.insert(ref.end(), tr.begin() + id * C, tr.begin() + (id + 1) * C);
    if (owned) {
      EXPECT_EQ(p->weight_bytes(), 0u);
    } else {
      EXPECT_EQ(p->weight_bytes(), size_t(V * C) * sizeof(float));
    }
    EXPECT_EQ(rel_err(p->output("e"), ref), 0.0);
  }
}

TEST_P(Ops, TimestepEmbedding) {
  for (bool flip : {true, false}) {
    const float shift = flip ? 0.f : 1.f;
    const Vec t = {1.f, 999.f, 500.5f};
    graph::Graph g;
    g.output("e", g.timestep_embedding(g.input("t", {3}), 320, flip, shift));
    auto p = compile(g);
    fill_input(*p, "t", t);
    p->run();
    const Vec ref = timestep_ref(t, 320, flip, shift);
    const float* e = p->output("e");
    for (size_t i = 0; i < ref.size(); ++i) ASSERT_NEAR(e[i], ref[i], 1e-6) << i;
    // flip_sin_to_cos puts cos first: cos(0 * t) = 1 at i = 0 only when the frequency is 1.
    EXPECT_NEAR(e[0], flip ? std::cos(1.0) : std::sin(1.0), 1e-6);
  }
}

TEST_P(Ops, EmbeddingAndBadIds) {
  const int64_t V = 11, C = 9;
  const Vec table = random_vec(V * C, 900);
  graph::Graph g;
  const auto ids = g.input("ids", {2, 3}, DType::I32);
  g.output("e", g.embedding(ids, add_weight(g, "table", table, {V, C}, DType::F16)));
  auto p = compile(g);
  const int32_t good[6] = {0, 10, 3, 3, 7, 1};
  std::copy(good, good + 6, p->input_i32("ids"));
  p->run();
  const Vec tr = TensorRef::from_f32(table, {V * C}, DType::F16).to_f32();
  Vec ref;
  for (int32_t id : good) ref.insert(ref.end(), tr.begin() + id * C, tr.begin() + (id + 1) * C);
  EXPECT_EQ(rel_err(p->output("e"), ref), 0.0);
  // The table is read where it lies (a few rows a run), not copied to f32 into the plan.
  EXPECT_EQ(p->weight_bytes(), 0u);
  p->input_i32("ids")[4] = 11;
  try {
    p->run();
    FAIL() << "an id out of range must throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expected a value in [0, 11), found 11"),
              std::string::npos)
        << e.what();
  }
}

const Mode kModes[] = {
    {Precision::F32, cpu::KernelIsa::Avx512}, {Precision::F32, cpu::KernelIsa::Avx2},
    {Precision::F32, cpu::KernelIsa::Scalar}, {Precision::BF16, cpu::KernelIsa::Avx512},
    {Precision::BF16, cpu::KernelIsa::Avx2},  {Precision::BF16, cpu::KernelIsa::Scalar}};
INSTANTIATE_TEST_SUITE_P(Cpu, Ops, testing::ValuesIn(kModes), mode_name);

}  // namespace
}  // namespace sdc::test
