// Winograd F(2x2, 2x2) per phase of a 2x-upsampling 3x3 convolution: the kernel against a
// double-precision direct convolution over the upsampled image (odd sizes, channel counts that are
// no multiple of 16, a batch, with and without bias, f32 and bf16 outputs), its refusal of a
// kernel that is no 3x3, and the planner's choice of it for bf16 upsampling convolutions only.
#include <gtest/gtest.h>

#include <cstring>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/plan.h"
#include "backend/cpu/winograd_upsample.h"
#include "common/error.h"
#include "reference.h"

namespace sdc::test {
namespace {

TEST(WinogradUpsampleConv, MatchesTheDirectConvolutionOfTheUpsampledImage) {
  // The transforms are AVX-512 BF16 code, reached only where winograd_upsample_pays.
  if (!cpu::use_avx512_kernels() || !cpu::cpu_features().avx512_bf16)
    GTEST_SKIP() << "no AVX-512 BF16 here";
  struct Case {
    int64_t N, H, W, Ci, Co;
  };
  for (const Case c : {Case{2, 5, 7, 40, 24}, Case{1, 8, 6, 64, 32}, Case{1, 3, 4, 16, 16}}) {
    const Vec x = round_bf16(random_vec(c.N * c.H * c.W * c.Ci, 31));
    const Vec w = random_vec(c.Co * c.Ci * 9, 32, -0.2f, 0.2f);
    const Vec b = random_vec(c.Co, 33);
    int64_t Ho = 0, Wo = 0;
    const Vec up = upsampled_2x(x, c.N, c.H, c.W, c.Ci);
    for (const bool with_bias : {true, false}) {
      const Vec ref = conv2d_ref(up, w, with_bias ? &b : nullptr, c.N, 2 * c.H, 2 * c.W, c.Ci, c.Co,
                                 3, 3, 1, 1, 1, 1, 1, Ho, Wo);
      ASSERT_EQ(Ho, 2 * c.H);
      ASSERT_EQ(Wo, 2 * c.W);
      const TensorRef wt = TensorRef::from_f32(w, {c.Co, c.Ci, 3, 3}, DType::F32, "test");
      const TensorRef u = cpu::winograd_upsample_weights(wt);
      ASSERT_EQ(u.shape, (Shape{36, c.Ci, c.Co}));
      const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
      cpu::WinogradUpsampleConv wc({c.N, c.H, c.W, c.Ci, c.Co}, engine, 2);
      std::vector<uint8_t> packed(wc.weights_desc().get_size());
      {
        dnnl::memory src(
            {{36, c.Ci, c.Co}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::abc}, engine,
            const_cast<void*>(u.data));
        dnnl::memory dst(wc.weights_desc(), engine, packed.data());
        dnnl::stream s(engine);
        dnnl::reorder(src, dst).execute(s, src, dst);
        s.wait();
      }
      std::vector<uint8_t> scratch(wc.scratch_bytes());
      std::vector<uint16_t> xb(x.size());
      for (size_t i = 0; i < x.size(); ++i) xb[i] = f32_to_bf16(x[i]);
      for (int out = 0; out < 2; ++out) {  // f32, bf16 output
        const size_t n = ref.size();
        Vec yf(n, -7.f);  // every output is written
        std::vector<uint16_t> yb(n, f32_to_bf16(-7.f));
        void* y = out == 0 ? static_cast<void*>(yf.data()) : yb.data();
        wc.run(xb.data(), packed.data(), with_bias ? b.data() : nullptr, y,
               out == 0 ? DType::F32 : DType::BF16, scratch.data());
        if (out == 1)
          for (size_t i = 0; i < n; ++i) yf[i] = bf16_to_f32(yb[i]);
        SCOPED_TRACE(testing::Message() << c.N << "x" << c.H << "x" << c.W << " " << c.Ci << "->"
                                        << c.Co << " bias " << with_bias << " output " << out);
        // bf16 tiles and kernels (differences of up to four inputs, sums of up to four taps); a
        // wrong tap, phase or tile is off by ~1.
        EXPECT_LT(rel_l2(yf, ref), 1.2e-2);
        EXPECT_LT(rel_err(yf.data(), ref), 5e-2);
      }
    }
  }
}

TEST(WinogradUpsampleConv, RejectsWhatIsNoThreeByThreeKernel) {
  const TensorRef w = TensorRef::from_f32(Vec(8 * 4 * 1 * 1), {8, 4, 1, 1}, DType::F32, "up.bin");
  try {
    cpu::winograd_upsample_weights(w);
    FAIL() << "a 1x1 kernel was transformed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[Co, Ci, 3, 3]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("up.bin"), std::string::npos) << e.what();
  }
}

// A 2x upsampling and a 128 -> 128 3x3 convolution over it (32x32 -> 64x64: 256 tiles, two
// chunks of 32 a thread on 2 threads). BF16 plans run it as the Winograd phases where the CPU has
// AVX-512 BF16; f32 plans and --no-winograd run the direct phase convolution.
TEST(Planner, Bf16UpsampleConvolutionsRunAsWinograd) {
  const int64_t H = 32, W = 32, C = 128;
  graph::Graph g;
  const auto up = g.upsample_nearest(g.input("x", {1, H, W, C}), int(2 * H), int(2 * W));
  g.output("out",
           g.conv2d(up, add_weight(g, "w", random_vec(C * C * 9, 41, -0.05f, 0.05f), {C, C, 3, 3}),
                    add_weight(g, "b", random_vec(C, 42), {C}), 1, 1));
  const std::vector<std::pair<std::string, Vec>> in = {{"x", random_vec(H * W * C, 43)}};
  const Vec ref = reference_run(g, in)[0];
  const bool pays = cpu::winograd_upsample_pays(1, H, W, C, C, 2);
  for (const bool winograd : {true, false})
    for (const cpu::Precision prec : {cpu::Precision::BF16, cpu::Precision::F32}) {
      cpu::PlanOptions o;
      o.precision = prec;
      o.winograd = winograd;
      o.threads = 2;
      o.check = true;
      auto p = cpu::Plan::compile(g, o);
      const std::string kinds = step_kinds(*p);
      SCOPED_TRACE(kinds);
      const bool expect = pays && winograd && prec == cpu::Precision::BF16;
      const std::string convert = prec == cpu::Precision::BF16 ? "Convert " : "";
      EXPECT_EQ(kinds, convert + (expect ? "Conv2d.wino.up2x " : "Conv2d.up2x "));
      for (const auto& [name, v] : in) fill_input(*p, name, v);
      p->run();
      const Vec out(p->output("out"), p->output("out") + ref.size());
      EXPECT_LT(rel_l2(out, ref), prec == cpu::Precision::F32 ? 1e-5 : 1.5e-2);
    }
}

}  // namespace
}  // namespace sdc::test
