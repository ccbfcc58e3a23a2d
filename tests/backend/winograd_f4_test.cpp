// Winograd F(4x4, 3x3) in f32 (winograd_f4.h): the kernel against a double-precision direct
// convolution (image sizes that are no multiple of 4, a batch, more threads than chunks, bias,
// residual, in place, ReLU), its channel rule, and the f32 planner's choice between it and
// F(2x2, 3x3) by the number of 4x4 blocks.
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <string>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/plan.h"
#include "backend/cpu/winograd_conv.h"
#include "backend/cpu/winograd_f32.h"
#include "backend/cpu/winograd_f4.h"
#include "common/error.h"
#include "reference.h"

namespace sdc::test {
namespace {

TEST(WinogradF4Conv, MatchesTheDirectConvolutionAtF32Precision) {
  if (!cpu::winograd_f32::available()) GTEST_SKIP() << "no AVX2 here";
  struct Case {
    int64_t N, H, W, Ci, Co;
    int threads = 2;
  };
  // Edges that cut a block (7, 9, 13, 30), a single block (4 x 4), 3 threads over 2 chunks, a
  // batch whose images share a chunk, 8 chunks of 34 blocks and a shorter last one (64 x 68).
  // Channels in multiples of 16 take the AVX-512 transforms where the own kernels run AVX-512;
  // the others, and every case with the kernels forced generic, the AVX2 ones.
  for (const Case c : {Case{2, 7, 9, 40, 24}, Case{1, 16, 12, 64, 32}, Case{1, 4, 4, 16, 8},
                       Case{1, 13, 30, 48, 32, 3}, Case{3, 8, 12, 24, 16, 1},
                       Case{1, 64, 68, 16, 24, 2}, Case{1, 64, 68, 32, 16, 2}})
    for (const bool generic : {false, true}) {
      const Vec x = random_vec(c.N * c.H * c.W * c.Ci, 51);
      const Vec w = random_vec(c.Co * c.Ci * 9, 52, -0.2f, 0.2f);
      const Vec b = random_vec(c.Co, 53);
      const Vec r = random_vec(c.N * c.H * c.W * c.Co, 54);
      int64_t Ho = 0, Wo = 0;
      const Vec conv = conv2d_ref(x, w, &b, c.N, c.H, c.W, c.Ci, c.Co, 3, 3, 1, 1, 1, 1, 1, Ho, Wo);
      const TensorRef u =
          cpu::winograd_f4_weights(TensorRef::from_f32(w, {c.Co, c.Ci, 3, 3}, DType::F32, "test"));
      ASSERT_EQ(u.shape, (Shape{36, c.Ci, c.Co}));
      const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
      cpu::force_generic_kernels(generic);  // the width is chosen at construction
      const cpu::WinogradF4Conv wc({c.N, c.H, c.W, c.Ci, c.Co}, engine, c.threads);
      cpu::force_generic_kernels(false);
      const std::vector<uint8_t> packed = packed_as(u, wc.weights_desc());
      std::vector<uint8_t> scratch(wc.scratch_bytes());
      for (int add = 0; add < 3; ++add)  // none, a residual, the output's own (in place)
        for (const bool bias : {true, false})
          for (const bool relu : {false, true}) {
            Vec ref = conv;
            for (size_t i = 0; i < ref.size(); ++i) {
              if (!bias) ref[i] -= b[size_t(int64_t(i) % c.Co)];
              if (add) ref[i] += r[i];
              if (relu) ref[i] = std::max(ref[i], 0.f);
            }
            // NaN where nothing should be left unwritten.
            Vec y = add == 2 ? r : Vec(ref.size(), std::numeric_limits<float>::quiet_NaN());
            wc.run(x.data(), packed.data(), bias ? b.data() : nullptr,
                   add == 0   ? nullptr
                   : add == 1 ? r.data()
                              : y.data(),
                   y.data(), scratch.data(), relu);
            SCOPED_TRACE(testing::Message()
                         << c.N << "x" << c.H << "x" << c.W << " " << c.Ci << "->" << c.Co
                         << " threads " << c.threads << " addend " << add << " bias " << bias
                         << " relu " << relu);
            // The transforms' factors (up to 5 in, 8 out, 1/24 in the kernel) grow f32's rounding
            // to ~3e-7 relative on random data; a wrong tap or a missed tile is off by ~1.
            EXPECT_LT(rel_l2(y, ref), 3e-6);
            EXPECT_LT(rel_err(y.data(), ref), 3e-5);
          }
    }
}

TEST(WinogradF4Conv, TakesChannelsInMultiplesOfEight) {
  EXPECT_FALSE(cpu::winograd_f4_pays(1, 64, 64, 132, 128, 2));
  EXPECT_FALSE(cpu::winograd_f4_pays(1, 64, 64, 128, 132, 2));
  EXPECT_FALSE(cpu::winograd_f4_pays(1, 64, 64, 32, 128, 2));  // too few to pay
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  try {
    cpu::WinogradF4Conv({1, 16, 16, 20, 16}, engine, 1);
    FAIL() << "20 input channels were taken";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("multiples of 8"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("20 -> 16"), std::string::npos) << e.what();
  }
  const TensorRef w = TensorRef::from_f32(Vec(8 * 4 * 2 * 2), {8, 4, 2, 2}, DType::F32, "k.bin");
  try {
    cpu::winograd_f4_weights(w);
    FAIL() << "a 2x2 kernel was transformed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[Co, Ci, 3, 3]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("k.bin"), std::string::npos) << e.what();
  }
}

// An f32 plan takes F(4x4) where a layer has two chunks of 32 blocks a thread (64 x 64 pixels on
// 2 threads: 256 blocks) and F(2x2) below that (32 x 32: 64 blocks of 4x4, 256 of 2x2); with
// winograd_f4 off, F(2x2) everywhere. Both match the reference at f32's precision.
TEST(Planner, F32PlansTakeWinogradF4WhereItHasTheBlocks) {
  if (!cpu::winograd_f32::available()) GTEST_SKIP() << "no AVX2 here";
  const int64_t C = 64;
  for (const int64_t H : {64, 32}) {
    graph::Graph g;
    const auto x = g.input("x", {1, H, H, C});
    const auto r = g.input("r", {1, H, H, C});
    auto conv = [&](graph::ValueId v, uint32_t seed) {
      return g.conv2d(v, add_weight(g, "w", random_vec(C * C * 9, seed, -0.1f, 0.1f), {C, C, 3, 3}),
                      add_weight(g, "b", random_vec(C, seed + 1), {C}), 1, 1);
    };
    g.output("out", g.add(conv(g.relu(conv(x, 61)), 63), r));
    const std::vector<std::pair<std::string, Vec>> in = {{"x", random_vec(H * H * C, 65)},
                                                         {"r", random_vec(H * H * C, 66)}};
    const Vec ref = reference_run(g, in)[0];
    EXPECT_EQ(cpu::winograd_f4_pays(1, H, H, C, C, 2), H == 64);
    for (const bool f4 : {true, false}) {
      cpu::PlanOptions o;
      o.precision = cpu::Precision::F32;
      o.winograd_f4 = f4;
      o.threads = 2;
      o.check = true;
      auto p = cpu::Plan::compile(g, o);
      const std::string w = f4 && H == 64 ? ".wino4" : ".wino";
      EXPECT_EQ(step_kinds(*p), "Conv2d" + w + "+relu Conv2d" + w + "+add ") << H;
      for (const auto& [name, v] : in) fill_input(*p, name, v);
      p->run();
      const Vec out(p->output("out"), p->output("out") + ref.size());
      EXPECT_LT(rel_l2(out, ref), 1e-5) << H << " " << f4;
    }
  }
}

}  // namespace
}  // namespace sdc::test
