// Winograd F(4x4, 2x2) phases of a 2x-upsampling convolution in f32 (winograd_upsample_f4.h): the
// kernel against a double-precision direct convolution over the upsampled image (small images
// that are no multiple of 4, a batch, more threads than chunks, with and without bias, both vector
// widths), its channel rule, and the f32 planner's choice between it and the F(2x2, 2x2) phases by
// the number of small 4x4 blocks.
#include <gtest/gtest.h>

#include <limits>
#include <string>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/plan.h"
#include "backend/cpu/winograd_f32.h"
#include "backend/cpu/winograd_upsample.h"
#include "backend/cpu/winograd_upsample_f4.h"
#include "common/error.h"
#include "reference.h"

namespace sdc::test {
namespace {

TEST(WinogradUpsampleF4Conv, MatchesTheConvolutionOfTheUpsampledImageAtF32Precision) {
  if (!cpu::winograd_f32::available()) GTEST_SKIP() << "no AVX2 here";
  struct Case {
    int64_t N, H, W, Ci, Co;
    int threads = 2;
  };
  // Small images whose edges cut a block (7, 9, 13, 30), a single block, 3 threads over 2
  // chunks, a batch whose images share a chunk, 8 chunks and a shorter last one (32 x 68).
  // Channels in multiples of 16 take the AVX-512 transforms where the own kernels run AVX-512;
  // the others, and every case with the kernels forced generic, the AVX2 ones.
  for (const Case c : {Case{2, 7, 9, 40, 24}, Case{1, 16, 12, 64, 32}, Case{1, 4, 4, 16, 8},
                       Case{1, 13, 30, 48, 32, 3}, Case{3, 8, 12, 24, 16, 1},
                       Case{1, 32, 68, 16, 24, 2}, Case{1, 32, 68, 32, 16, 2}})
    for (const bool generic : {false, true}) {
      const Vec x = random_vec(c.N * c.H * c.W * c.Ci, 71);
      const Vec w = random_vec(c.Co * c.Ci * 9, 72, -0.2f, 0.2f);
      const Vec b = random_vec(c.Co, 73);
      int64_t Ho = 0, Wo = 0;
      const Vec up = upsampled_2x(x, c.N, c.H, c.W, c.Ci);
      const Vec conv =
          conv2d_ref(up, w, &b, c.N, 2 * c.H, 2 * c.W, c.Ci, c.Co, 3, 3, 1, 1, 1, 1, 1, Ho, Wo);
      const TensorRef u = cpu::winograd_upsample_f4_weights(
          TensorRef::from_f32(w, {c.Co, c.Ci, 3, 3}, DType::F32, "test"));
      ASSERT_EQ(u.shape, (Shape{100, c.Ci, c.Co}));
      const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
      cpu::force_generic_kernels(generic);  // the width is chosen at construction
      const cpu::WinogradUpsampleF4Conv wc({c.N, c.H, c.W, c.Ci, c.Co}, engine, c.threads);
      cpu::force_generic_kernels(false);
      const std::vector<uint8_t> packed = packed_as(u, wc.weights_desc());
      std::vector<uint8_t> scratch(wc.scratch_bytes());
      for (const bool bias : {true, false}) {
        Vec ref = conv;
        if (!bias)
          for (size_t i = 0; i < ref.size(); ++i) ref[i] -= b[size_t(int64_t(i) % c.Co)];
        // NaN where nothing should be left unwritten.
        Vec y(ref.size(), std::numeric_limits<float>::quiet_NaN());
        wc.run(x.data(), packed.data(), bias ? b.data() : nullptr, y.data(), scratch.data());
        SCOPED_TRACE(testing::Message()
                     << c.N << "x" << c.H << "x" << c.W << " " << c.Ci << "->" << c.Co
                     << " threads " << c.threads << " bias " << bias << " generic " << generic);
        // The transforms' factors (up to 3 in, 8 out, 1/6 in the kernel) keep f32's rounding
        // ~1e-7 relative on random data; a wrong tap, phase or a missed tile is off by ~1.
        EXPECT_LT(rel_l2(y, ref), 2e-6);
        EXPECT_LT(rel_err(y.data(), ref), 2e-5);
      }
    }
}

TEST(WinogradUpsampleF4Conv, TakesChannelsInMultiplesOfEight) {
  EXPECT_FALSE(cpu::winograd_upsample_f4_pays(1, 64, 64, 132, 128, 2));
  EXPECT_FALSE(cpu::winograd_upsample_f4_pays(1, 64, 64, 128, 132, 2));
  EXPECT_FALSE(cpu::winograd_upsample_f4_pays(1, 64, 64, 32, 128, 2));   // too few to pay
  EXPECT_FALSE(cpu::winograd_upsample_f4_pays(1, 32, 32, 128, 128, 2));  // 64 blocks of 4x4
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  try {
    cpu::WinogradUpsampleF4Conv({1, 16, 16, 20, 16}, engine, 1);
    FAIL() << "20 input channels were taken";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("multiples of 8"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("20 -> 16"), std::string::npos) << e.what();
  }
  const TensorRef w = TensorRef::from_f32(Vec(8 * 4), {8, 4, 1, 1}, DType::F32, "k.bin");
  try {
    cpu::winograd_upsample_f4_weights(w);
    FAIL() << "a 1x1 kernel was transformed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[Co, Ci, 3, 3]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("k.bin"), std::string::npos) << e.what();
  }
}

// An f32 plan's upsampling convolution takes F(4x4, 2x2) phases where the small image has two
// chunks of 32 blocks of 4x4 a thread (64 x 64 small pixels on 2 threads: 256 blocks), F(2x2, 2x2)
// phases below that (32 x 32: 64 blocks of 4x4, 256 of 2x2); with winograd_f4 off, F(2x2, 2x2)
// everywhere. Both match the reference at f32's precision.
TEST(Planner, F32UpsamplingConvolutionsTakeF4PhasesWhereTheyHaveTheBlocks) {
  if (!cpu::winograd_f32::available()) GTEST_SKIP() << "no AVX2 here";
  const int64_t C = 64;
  for (const int64_t H : {64, 32}) {
    graph::Graph g;
    const auto x = g.input("x", {1, H, H, C});
    const auto up = g.upsample_nearest(g.scale(x, 1.f), int(2 * H), int(2 * H));
    g.output("out",
             g.conv2d(up, add_weight(g, "w", random_vec(C * C * 9, 81, -0.1f, 0.1f), {C, C, 3, 3}),
                      add_weight(g, "b", random_vec(C, 82), {C}), 1, 1));
    const std::vector<std::pair<std::string, Vec>> in = {{"x", random_vec(H * H * C, 83)}};
    const Vec ref = reference_run(g, in)[0];
    EXPECT_EQ(cpu::winograd_upsample_f4_pays(1, H, H, C, C, 2), H == 64);
    EXPECT_TRUE(cpu::winograd_upsample_f32_pays(1, H, H, C, C, 2));
    for (const bool f4 : {true, false}) {
      cpu::PlanOptions o;
      o.precision = cpu::Precision::F32;
      o.winograd_f4 = f4;
      o.threads = 2;
      o.check = true;
      auto p = cpu::Plan::compile(g, o);
      const std::string kinds = step_kinds(*p);
      const std::string want = f4 && H == 64 ? "Conv2d.wino4.up2x" : "Conv2d.wino.up2x";
      EXPECT_NE(kinds.find(want + " "), std::string::npos) << H << ": " << kinds;
      for (const auto& [name, v] : in) fill_input(*p, name, v);
      p->run();
      const Vec out(p->output("out"), p->output("out") + ref.size());
      EXPECT_LT(rel_l2(out, ref), 1e-5) << H << " " << f4;
    }
  }
}

}  // namespace
}  // namespace sdc::test
