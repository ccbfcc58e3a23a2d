// The W8A8 convolutions and linears at the full-size UNet's and VAE decoder's real shapes, where
// oneDNN's kernels pick their blockings (and where 2.6's own zero-point path went wrong for some of
// them): every 3x3 convolution of SD1.5's UNet at 512x512 and 1024x1024 and of its VAE decoder at
// 512x512, and the UNet's linear and GEGLU projections at 512x512, on inputs and weights that W8A8
// represents exactly (integers times powers of two, the codes spanning 0..255), so that the int8
// plan must equal the f32 plan of the same graph up to f32 summation, padding included; and a
// second run, after an f32 plan overwrote the shared scratch, must repeat the first bit for bit.
// The convolutions that int8 plans run as Winograd (reading a bf16 GroupNorm+SiLU output, as in
// the networks) against the f32 plan within Winograd's quantisation error instead.
#include <gtest/gtest.h>

#include <cmath>
#include <ostream>
#include <random>

#include "backend/cpu/activation_arena.h"
#include "backend/cpu/plan.h"
#include "backend/cpu/prepacked_weights.h"
#include "backend/cpu/winograd_conv.h"
#include "reference.h"

namespace sdc::test {
namespace {

using cpu::Plan;
using cpu::PlanOptions;
using cpu::Precision;

struct ConvShape {
  int64_t Ci, Co, H, W;
  int stride;
};
void PrintTo(const ConvShape& c, std::ostream* os) {
  *os << c.Ci << " -> " << c.Co << " channels at " << c.H << "x" << c.W << ", stride " << c.stride;
}

// Codes 0..255 (both ends present in every row of `row` values) minus the zero point, times
// 2^-7: the activation quantiser finds exactly that scale and zero point again, whether it
// quantises the whole tensor at once or each row (int8_gemm) by itself.
Vec exact_input(int64_t n, int zero_point, uint32_t seed, int64_t row = 0) {
  std::mt19937 rng(seed);
  Vec x(static_cast<size_t>(n));
  for (auto& v : x) v = std::ldexp(float(int(rng() % 256) - zero_point), -7);
  if (row == 0) row = n;
  for (int64_t r = 0; r + 1 < n; r += row) {
    x[size_t(r)] = std::ldexp(float(-zero_point), -7);
    x[size_t(r + 1)] = std::ldexp(float(255 - zero_point), -7);
  }
  return x;
}

// Integers in [-127, 127] times 2^-10, every output channel reaching 127: per-channel scales of
// exactly 2^-10 and s8 values equal to those integers.
Vec exact_weight(int64_t Co, int64_t row, uint32_t seed) {
  std::mt19937 rng(seed);
  Vec w(static_cast<size_t>(Co * row));
  for (auto& v : w) v = std::ldexp(float(int(rng() % 255) - 127), -10);
  for (int64_t o = 0; o < Co; ++o)
    w[size_t(o * row + int64_t(rng() % uint32_t(row)))] = 127.f / 1024;
  return w;
}

// Compiles g (input "x", output "y") as f32 and as int8 sharing one scratch; expects an int8 step
// of kind `int8_kind`, the int8 output within `tolerance` of the f32 one on `in`,
// and the int8 output repeated bit for bit after the f32 plan has overwritten the scratch.
void expect_int8_equals_f32(const graph::Graph& g, const std::string& int8_kind, const Vec& in,
                            double tolerance) {
  PlanOptions o;
  o.scratch = std::make_shared<cpu::ActivationArena>();
  // Both direct: f32 plans take Winograd too where it pays, and int8 Winograd quantises its
  // transformed tiles, which no input makes exact (Int8FullSizeWinograd checks it).
  o.winograd = false;
  auto f32 = Plan::compile(g, o);
  o.precision = Precision::INT8;
  auto int8 = Plan::compile(g, o);
  bool int8_step = false;
  for (const auto& s : int8->steps()) int8_step |= s.kind == int8_kind;
  ASSERT_TRUE(int8_step) << "no " << int8_kind << " step";
  fill_input(*int8, "x", in);
  int8->run();
  const int64_t n = shape_numel(int8->output_shape("y"));
  const Vec first(int8->output("y"), int8->output("y") + n);
  fill_input(*f32, "x", in);
  f32->run();  // also leaves its own bytes in the shared scratch
  EXPECT_LT(rel_err(first.data(), Vec(f32->output("y"), f32->output("y") + n)), tolerance);
  int8->run();
  EXPECT_EQ(Vec(int8->output("y"), int8->output("y") + n), first);
}

class Int8FullSize : public testing::TestWithParam<ConvShape> {};

TEST_P(Int8FullSize, ConvEqualsTheF32PlanOnExactlyRepresentedValues) {
  if (!cpu::isa_has_int8_dot()) GTEST_SKIP() << "no VNNI: int8 plans are refused here";
  const ConvShape c = GetParam();
  graph::Graph g;
  const auto x = g.input("x", {1, c.H, c.W, c.Ci});
  const auto conv =
      g.conv2d(x, add_weight(g, "w", exact_weight(c.Co, c.Ci * 9, 5), {c.Co, c.Ci, 3, 3}),
               graph::kNone, c.stride, 1, "conv");
  g.allow_int8(conv);
  g.output("y", conv);
  expect_int8_equals_f32(g, "Conv2d.int8", exact_input(c.H * c.W * c.Ci, 37, 6), 1e-5);
}

// SD1.5's UNet 3x3 convolutions (in the down path, the up path's concatenated inputs, the
// stride-2 downsamplers) at a 64x64 latent, the two that oneDNN 2.6 got wrong also at 128x128,
// and the VAE decoder's at 512x512 (64x64 latent: 512 channels at 64 and 128, 256 at 256, 128
// at 512).
INSTANTIATE_TEST_SUITE_P(
    Sd15, Int8FullSize,
    testing::Values(ConvShape{320, 320, 64, 64, 1}, ConvShape{640, 320, 64, 64, 1},
                    ConvShape{960, 320, 64, 64, 1}, ConvShape{320, 640, 32, 32, 1},
                    ConvShape{640, 640, 32, 32, 1}, ConvShape{960, 640, 32, 32, 1},
                    ConvShape{1280, 640, 32, 32, 1}, ConvShape{1920, 640, 32, 32, 1},
                    ConvShape{640, 1280, 16, 16, 1}, ConvShape{1280, 1280, 16, 16, 1},
                    ConvShape{1920, 1280, 16, 16, 1}, ConvShape{2560, 1280, 16, 16, 1},
                    ConvShape{1280, 1280, 8, 8, 1}, ConvShape{2560, 1280, 8, 8, 1},
                    ConvShape{320, 320, 64, 64, 2}, ConvShape{640, 640, 32, 32, 2},
                    ConvShape{1280, 1280, 16, 16, 2}, ConvShape{960, 320, 128, 128, 1},
                    ConvShape{1920, 640, 64, 64, 1}, ConvShape{512, 512, 64, 64, 1},
                    ConvShape{512, 512, 128, 128, 1}, ConvShape{512, 256, 256, 256, 1},
                    ConvShape{256, 256, 256, 256, 1}, ConvShape{256, 128, 512, 512, 1},
                    ConvShape{128, 128, 512, 512, 1}),
    [](const auto& i) {
      const ConvShape& c = i.param;
      return std::to_string(c.Ci) + "to" + std::to_string(c.Co) + "at" + std::to_string(c.H) +
             (c.stride == 2 ? "stride2" : "");
    });

// The int8 Winograd convolutions (winograd_int8_pays on 2 threads) after a GroupNorm+SiLU, as in
// every ResBlock: the int8 plan must take the Winograd step, stay within its quantisation error
// of the f32 plan (here 1.5-1.9 % relative L2; the direct int8 convolutions 0.7 %; a wrong
// transform, scale or zero point is off by ~1), and repeat itself bit for bit after the f32 plan
// overwrote the shared scratch.
struct WinogradShape {
  int64_t N, Ci, Co, H, W;
};
void PrintTo(const WinogradShape& c, std::ostream* os) {
  *os << c.N << " x " << c.Ci << " -> " << c.Co << " channels at " << c.H << "x" << c.W;
}

class Int8FullSizeWinograd : public testing::TestWithParam<WinogradShape> {};

TEST_P(Int8FullSizeWinograd, ConvMatchesTheF32PlanWithinItsQuantisationError) {
  const WinogradShape c = GetParam();
  if (!cpu::winograd_int8_pays(c.N, c.H, c.W, c.Ci, c.Co, 2))
    GTEST_SKIP() << "no int8 Winograd on this CPU";
  graph::Graph g;
  const auto x = g.input("x", {c.N, c.H, c.W, c.Ci});
  const auto h = g.group_norm(x, add_weight(g, "gamma", random_vec(c.Ci, 3, 0.5f, 1.5f), {c.Ci}),
                              add_weight(g, "beta", random_vec(c.Ci, 4, -0.5f, 0.5f), {c.Ci}), 32,
                              1e-5f, true);
  const float bound = 1.f / std::sqrt(float(9 * c.Ci));  // PyTorch's default init range
  const auto conv = g.conv2d(
      h, add_weight(g, "w", random_vec(c.Co * c.Ci * 9, 5, -bound, bound), {c.Co, c.Ci, 3, 3}),
      add_weight(g, "b", random_vec(c.Co, 6, -bound, bound), {c.Co}), 1, 1, "conv");
  g.allow_int8(conv);
  g.output("y", conv);
  PlanOptions o;
  o.threads = 2;
  o.scratch = std::make_shared<cpu::ActivationArena>();
  auto f32 = Plan::compile(g, o);
  o.precision = Precision::INT8;
  auto int8 = Plan::compile(g, o);
  bool winograd = false;
  for (const auto& s : int8->steps()) winograd |= s.kind == "Conv2d.wino.int8";
  ASSERT_TRUE(winograd) << "no Conv2d.wino.int8 step";
  const Vec in = random_vec(c.N * c.H * c.W * c.Ci, 7, -2.f, 2.f);
  fill_input(*int8, "x", in);
  int8->run();
  const int64_t n = shape_numel(int8->output_shape("y"));
  const Vec first(int8->output("y"), int8->output("y") + n);
  fill_input(*f32, "x", in);
  f32->run();
  EXPECT_LT(rel_l2(first, Vec(f32->output("y"), f32->output("y") + n)), 2.5e-2);
  int8->run();
  EXPECT_EQ(Vec(int8->output("y"), int8->output("y") + n), first);
}

// The UNet's Winograd layers at 512x512 (64x64, 32x32 and 16x16 latents at batch 1, 16x16 at
// batch 2; on 2 threads the 32x32 and 16x16 ones split their products by point) and the VAE
// decoder's (512 channels at 64 and 128, 256 at 256, 128 at 512).
INSTANTIATE_TEST_SUITE_P(
    Sd15, Int8FullSizeWinograd,
    testing::Values(WinogradShape{1, 320, 320, 64, 64}, WinogradShape{1, 960, 320, 64, 64},
                    WinogradShape{1, 640, 640, 32, 32}, WinogradShape{1, 1920, 640, 32, 32},
                    WinogradShape{1, 2560, 1280, 16, 16}, WinogradShape{2, 2560, 1280, 16, 16},
                    WinogradShape{1, 512, 512, 64, 64}, WinogradShape{1, 512, 512, 128, 128},
                    WinogradShape{1, 512, 256, 256, 256}, WinogradShape{1, 128, 128, 512, 512}),
    [](const auto& i) {
      const WinogradShape& c = i.param;
      return std::to_string(c.N) + "x" + std::to_string(c.Ci) + "to" + std::to_string(c.Co) + "at" +
             std::to_string(c.H);
    });

struct LinearShape {
  int64_t tokens, K, N;
  bool geglu;
};
void PrintTo(const LinearShape& l, std::ostream* os) {
  *os << l.tokens << " tokens, " << l.K << " -> " << l.N << (l.geglu ? " GEGLU" : "");
}

class Int8FullSizeLinear : public testing::TestWithParam<LinearShape> {};

TEST_P(Int8FullSizeLinear, EqualsTheF32PlanOnExactlyRepresentedValues) {
  if (!cpu::isa_has_int8_dot()) GTEST_SKIP() << "no VNNI: int8 plans are refused here";
  const LinearShape l = GetParam();
  graph::Graph g;
  const auto x = g.input("x", {1, l.tokens, l.K});
  const auto lin =
      g.linear(x, add_weight(g, "w", exact_weight(l.N, l.K, 7), {l.N, l.K}), graph::kNone, "lin");
  g.allow_int8(lin);
  g.output("y", l.geglu ? g.geglu(lin) : lin);
  // GEGLU: the int8 plan keeps GELU(gate) in bf16 between its two matmuls (one rounding, ~2^-9).
  expect_int8_equals_f32(g, l.geglu ? "Linear.int8+geglu" : "Linear.int8",
                         exact_input(l.tokens * l.K, 91, 8, l.K), l.geglu ? 4e-3 : 1e-5);
}

// SD1.5's UNet at 512x512: q/k/v/out and proj_in/out at each level's width, the feed-forward's
// GEGLU projection (width -> 8 x width, halved by the gate) and its output (4 x width -> width).
INSTANTIATE_TEST_SUITE_P(
    Sd15, Int8FullSizeLinear,
    testing::Values(LinearShape{4096, 320, 320, false}, LinearShape{4096, 320, 2560, true},
                    LinearShape{4096, 1280, 320, false}, LinearShape{1024, 640, 640, false},
                    LinearShape{1024, 640, 5120, true}, LinearShape{1024, 2560, 640, false},
                    LinearShape{256, 1280, 1280, false}, LinearShape{256, 1280, 10240, true},
                    LinearShape{256, 5120, 1280, false}, LinearShape{64, 1280, 1280, false}),
    [](const auto& i) {
      const LinearShape& l = i.param;
      return std::to_string(l.tokens) + "x" + std::to_string(l.K) + "to" + std::to_string(l.N) +
             (l.geglu ? "geglu" : "");
    });

}  // namespace
}  // namespace sdc::test
