// The few-output-channel 3x3 convolution (narrow_conv.h): the kernel against a double-precision
// convolution of the same bf16 or f32 values (odd sizes, rows narrower than its 8-pixel blocks, a
// batch, 1-4 outputs, with and without a bias, f32 and bf16 outputs, 1-3 threads; f32 values at
// both vector widths, the AVX2 one forced through force_generic_kernels), its refusal of
// shapes it does not take, and the planner's choice of it for a float plan's output layer.
#include <gtest/gtest.h>

#include <string>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/narrow_conv.h"
#include "backend/cpu/plan.h"
#include "common/error.h"
#include "reference.h"

namespace sdc::test {
namespace {

bool narrow_here(DType in) {
  return cpu::narrow_conv_pays(64, 3, in);
}

TEST(NarrowConv, MatchesTheDirectConvolutionOfTheSameValues) {
  if (!narrow_here(DType::F32)) GTEST_SKIP() << "no AVX2 here";
  struct Case {
    int64_t N, H, W, Ci, Co;
    int threads = 2;
    bool bias = true;
  };
  for (const Case c :
       {Case{1, 9, 13, 64, 3}, Case{2, 5, 7, 32, 1, 3}, Case{1, 1, 1, 32, 4},
        Case{1, 6, 2, 96, 2, 1, false}, Case{1, 17, 20, 128, 3, 2, false}, Case{2, 3, 8, 64, 4, 3},
        Case{1, 4, 9, 32, 3, 1}, Case{1, 7, 11, 48, 3}, Case{2, 2, 9, 16, 2, 1},
        Case{1, 5, 11, 40, 3}, Case{1, 3, 6, 8, 4, 1}, Case{2, 4, 5, 24, 1, 2, false}})
    for (const DType xt : {DType::BF16, DType::F32})
      for (const bool generic : {false, true}) {
        cpu::force_generic_kernels(generic);
        const bool pays = cpu::narrow_conv_pays(c.Ci, c.Co, xt);
        cpu::force_generic_kernels(false);
        if (!pays) {
          EXPECT_TRUE(xt == DType::BF16) << c.Ci << " -> " << c.Co << " refused in f32";
          continue;  // no AVX-512 BF16 here (or forced off), or input channels not in 32s
        }
        const bool bf16 = xt == DType::BF16;
        const Vec x0 = random_vec(c.N * c.H * c.W * c.Ci, 81);
        const Vec w0 = random_vec(c.Co * c.Ci * 9, 82, -0.2f, 0.2f);
        const Vec x = bf16 ? round_bf16(x0) : x0, w = bf16 ? round_bf16(w0) : w0;
        const Vec b = random_vec(c.Co, 83);
        int64_t Ho = 0, Wo = 0;
        const Vec ref = conv2d_ref(x, w, c.bias ? &b : nullptr, c.N, c.H, c.W, c.Ci, c.Co, 3, 3, 1,
                                   1, 1, 1, 1, Ho, Wo);
        const TensorRef wt = TensorRef::from_f32(w, {c.Co, c.Ci, 3, 3}, DType::F32, "test");
        const TensorRef taps = cpu::narrow_conv_taps(wt);
        ASSERT_EQ(taps.shape, (Shape{9, c.Co, c.Ci}));
        const Vec tv(static_cast<const float*>(taps.data),
                     static_cast<const float*>(taps.data) + 9 * c.Co * c.Ci);
        const std::vector<uint16_t> xb = to_bf16_bits(x), tb = to_bf16_bits(tv);
        const void* xp = bf16 ? static_cast<const void*>(xb.data()) : x.data();
        const void* tp = bf16 ? static_cast<const void*>(tb.data()) : tv.data();
        for (const bool bf16_out : {false, true}) {
          SCOPED_TRACE(testing::Message()
                       << c.N << "x" << c.H << "x" << c.W << " " << c.Ci << "->" << c.Co
                       << " threads " << c.threads << " bias " << c.bias << " " << dtype_name(xt)
                       << " input, bf16 output " << bf16_out << ", generic " << generic);
          Vec y(ref.size(), -7.f);
          std::vector<uint16_t> yb(ref.size(), 0);
          cpu::force_generic_kernels(generic);  // AVX2 rows for f32 values
          cpu::narrow_conv3x3(xp, xt, tp, c.bias ? b.data() : nullptr, c.N, c.H, c.W, c.Ci, c.Co,
                              bf16_out ? static_cast<void*>(yb.data()) : y.data(),
                              bf16_out ? DType::BF16 : DType::F32, c.threads);
          cpu::force_generic_kernels(false);
          if (bf16_out)
            for (size_t i = 0; i < y.size(); ++i) y[i] = bf16_to_f32(yb[i]);
          // The same products summed in f32 in another order: ~1e-7 (bf16 values, or f32 ones);
          // bf16 output rounds to ~2e-3. A wrong tap, a missed edge pixel or channel block is off
          // by ~1.
          EXPECT_LT(rel_l2(y, ref), bf16_out ? 4e-3 : 1e-5);
          EXPECT_LT(rel_err(y.data(), ref), bf16_out ? 1e-2 : 1e-4);
        }
      }
}

TEST(NarrowConv, RefusesShapesItDoesNotTake) {
  EXPECT_FALSE(cpu::narrow_conv_pays(48, 3));  // bf16 input channels not a multiple of 32
  EXPECT_FALSE(cpu::narrow_conv_pays(36, 3, DType::F32));  // f32 ones not a multiple of 8
  EXPECT_FALSE(cpu::narrow_conv_pays(64, 5));              // more than four outputs
  EXPECT_FALSE(cpu::narrow_conv_pays(64, 0));
  EXPECT_FALSE(cpu::narrow_conv_pays(64, 3, DType::F16));  // neither bf16 nor f32 values
  std::vector<uint16_t> x(2 * 2 * 48), taps(9 * 3 * 48);
  Vec y(2 * 2 * 3, -7.f);
  try {
    cpu::narrow_conv3x3(x.data(), DType::BF16, taps.data(), nullptr, 1, 2, 2, 48, 3, y.data(),
                        DType::F32, 1);
    FAIL() << "48 input channels were taken";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("narrow_conv.cpp"), std::string::npos) << m;
    EXPECT_NE(m.find("48 -> 3"), std::string::npos) << m;
  }
  for (const float v : y) EXPECT_EQ(v, -7.f);  // nothing written
  // A kernel that is not 3x3 is refused by its transform, naming its file.
  const TensorRef w1 = TensorRef::from_f32(Vec(3 * 32), {3, 32, 1, 1}, DType::F32, "w.safetensors");
  try {
    cpu::narrow_conv_taps(w1);
    FAIL() << "a 1x1 kernel was taken";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("w.safetensors"), std::string::npos) << m;
    EXPECT_NE(m.find("[Co, Ci, 3, 3]"), std::string::npos) << m;
  }
}

// The decoders' output layer (TAESD's 64 -> 3) takes this path in a bf16 plan where the CPU has
// AVX-512 BF16 and in an f32 plan where it has AVX2 (AVX-512 or not), and matches the reference; a
// layer with a fused activation keeps oneDNN's convolution.
TEST(Planner, BfloatOutputLayerRunsAsNarrowConvolution) {
  const int64_t H = 19, W = 21, C = 64;
  for (const bool relu : {false, true}) {
    graph::Graph g;
    const auto x = g.input("x", {1, H, W, C});
    auto y = g.conv2d(x, add_weight(g, "w", random_vec(3 * C * 9, 91, -0.1f, 0.1f), {3, C, 3, 3}),
                      add_weight(g, "b", random_vec(3, 92), {3}), 1, 1);
    if (relu) y = g.relu(y);
    g.output("out", y);
    const std::vector<std::pair<std::string, Vec>> in = {{"x", random_vec(H * W * C, 93)}};
    const Vec ref = reference_run(g, in)[0];
    for (const auto& [precision, generic] :
         {std::pair{cpu::Precision::BF16, false}, std::pair{cpu::Precision::F32, false},
          std::pair{cpu::Precision::F32, true}}) {
      if (!cpu::precision_available(precision)) continue;
      cpu::PlanOptions o;
      o.precision = precision;
      o.threads = 2;
      o.check = true;
      cpu::force_generic_kernels(generic);  // an AVX2 CPU's f32 plan, planned and run
      auto p = cpu::Plan::compile(g, o);
      const bool narrow =
          !relu && narrow_here(precision == cpu::Precision::BF16 ? DType::BF16 : DType::F32);
      const std::string kinds = step_kinds(*p);
      SCOPED_TRACE(kinds + (generic ? " (generic)" : ""));
      EXPECT_EQ(kinds.find("Conv2d.narrow") != std::string::npos, narrow);
      fill_input(*p, "x", in[0].second);
      p->run();
      cpu::force_generic_kernels(false);
      const Vec out(p->output("out"), p->output("out") + ref.size());
      // bf16: the input and the taps rounded (~3e-3).
      EXPECT_LT(rel_l2(out, ref), precision == cpu::Precision::F32 ? 1e-5 : 1e-2);
    }
  }
}

}  // namespace
}  // namespace sdc::test
