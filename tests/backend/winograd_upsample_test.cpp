// Winograd F(2x2, 2x2) per phase of a 2x-upsampling 3x3 convolution: the kernel, bf16 and int8,
// against a double-precision direct convolution over the upsampled image (odd sizes, channel
// counts that are no multiple of 16, a batch, 1 to 3 threads, with and without bias, f32 and bf16
// outputs; f32 throughout), its refusal of a kernel that is no 3x3, of int8 kernels without their
// scales and of f32 ones asked for bf16, and the planner's choice of it for bf16, int8 and f32
// upsampling convolutions.
#include <gtest/gtest.h>

#include <cstring>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/int8_weights.h"
#include "backend/cpu/plan.h"
#include "backend/cpu/prepacked_weights.h"
#include "backend/cpu/winograd_f32.h"
#include "backend/cpu/winograd_upsample.h"
#include "bf16_output_refusal.h"
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
      const std::vector<uint8_t> packed = packed_as(u, wc.weights_desc());
      std::vector<uint8_t> scratch(wc.scratch_bytes());
      const std::vector<uint16_t> xb = to_bf16_bits(x);
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

// The f32 plans' phases: f32 throughout, so f32's error. Channels in multiples of 16 take the
// AVX-512 transforms where the own kernels run AVX-512, the others (and every case with the kernels
// forced generic) the AVX2 ones; 24 -> 16 mixes them (AVX2 in, AVX-512 out).
TEST(WinogradUpsampleConv, F32MatchesTheDirectConvolutionOfTheUpsampledImage) {
  if (!cpu::winograd_f32::available()) GTEST_SKIP() << "no AVX2 here";
  struct Case {
    int64_t N, H, W, Ci, Co;
    int threads;
  };
  for (const Case c : {Case{2, 5, 7, 40, 24, 2}, Case{1, 8, 6, 64, 32, 3}, Case{1, 3, 4, 16, 8, 1},
                       Case{1, 16, 16, 24, 16, 2}}) {
    const Vec x = random_vec(c.N * c.H * c.W * c.Ci, 51);
    const Vec w = random_vec(c.Co * c.Ci * 9, 52, -0.2f, 0.2f);
    const Vec b = random_vec(c.Co, 53);
    const Vec up = upsampled_2x(x, c.N, c.H, c.W, c.Ci);
    const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    cpu::WinogradUpsampleConv wc({c.N, c.H, c.W, c.Ci, c.Co}, engine, c.threads,
                                 cpu::WinogradUpsampleConv::Type::F32);
    const TensorRef u = cpu::winograd_upsample_weights(
        TensorRef::from_f32(w, {c.Co, c.Ci, 3, 3}, DType::F32, "test"));
    const std::vector<uint8_t> packed = packed_as(u, wc.weights_desc());
    std::vector<uint8_t> scratch(wc.scratch_bytes());
    for (const bool generic : {false, true})
      for (const bool with_bias : {true, false}) {
        int64_t Ho = 0, Wo = 0;
        const Vec ref = conv2d_ref(up, w, with_bias ? &b : nullptr, c.N, 2 * c.H, 2 * c.W, c.Ci,
                                   c.Co, 3, 3, 1, 1, 1, 1, 1, Ho, Wo);
        Vec y(ref.size(), -7.f);  // every output is written
        cpu::force_generic_kernels(generic);
        wc.run(x.data(), packed.data(), with_bias ? b.data() : nullptr, y.data(), DType::F32,
               scratch.data());
        cpu::force_generic_kernels(false);
        SCOPED_TRACE(testing::Message() << c.N << "x" << c.H << "x" << c.W << " " << c.Ci << "->"
                                        << c.Co << " threads " << c.threads << " generic "
                                        << generic << " bias " << with_bias);
        EXPECT_LT(rel_l2(y, ref), 2e-6);
        EXPECT_LT(rel_err(y.data(), ref), 1e-5);
      }
    std::vector<uint16_t> yb(size_t(c.N * 4 * c.H * c.W * c.Co));
    EXPECT_THROW(wc.run(x.data(), packed.data(), b.data(), yb.data(), DType::BF16, scratch.data()),
                 Error);
  }
  EXPECT_FALSE(cpu::winograd_upsample_f32_pays(1, 64, 64, 132, 128, 2));
  EXPECT_TRUE(cpu::winograd_upsample_f32_pays(1, 64, 64, 512, 512, 2));  // no bf16 limit
}

TEST(WinogradUpsampleConv, Int8MatchesTheDirectConvolutionAtInt8Precision) {
  if (!cpu::winograd_upsample_int8_pays(1, 16, 16, 128, 128, 1)) GTEST_SKIP() << "no AVX-512 VNNI";
  struct Case {
    int64_t N, H, W, Ci, Co;
    int threads = 2;
    bool f32_input = false;  // f32 activations (int8 plans where bf16 is not faster), not bf16
  };
  for (const Case c : {Case{2, 5, 7, 40, 24}, Case{1, 8, 6, 64, 32}, Case{1, 3, 4, 16, 16},
                       Case{1, 9, 11, 48, 40, 3}, Case{2, 6, 5, 24, 16, 1},
                       Case{2, 5, 7, 80, 24, 2, true}, Case{1, 9, 11, 48, 40, 3, true}}) {
    const Vec x0 = random_vec(c.N * c.H * c.W * c.Ci, 51);
    const Vec x = c.f32_input ? x0 : round_bf16(x0);
    const Vec w = random_vec(c.Co * c.Ci * 9, 52, -0.2f, 0.2f);
    const Vec b = random_vec(c.Co, 53);
    int64_t Ho = 0, Wo = 0;
    const Vec up = upsampled_2x(x, c.N, c.H, c.W, c.Ci);
    const TensorRef wt = TensorRef::from_f32(w, {c.Co, c.Ci, 3, 3}, DType::F32, "test");
    const TensorRef rows = cpu::winograd_upsample_weight_rows(wt);
    ASSERT_EQ(rows.shape, (Shape{36 * c.Co, c.Ci}));
    const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    cpu::WinogradUpsampleConv wc({c.N, c.H, c.W, c.Ci, c.Co}, engine, c.threads,
                                 cpu::WinogradUpsampleConv::Type::Int8,
                                 c.f32_input ? DType::F32 : DType::BF16);
    // s8 per phase point and output channel, packed as the products read them.
    const cpu::Int8Packed packed = cpu::pack_int8_weight(
        rows, {{36, c.Ci, c.Co}, dnnl::memory::data_type::s8, dnnl::memory::format_tag::acb},
        wc.weights_desc(), engine);
    const cpu::WinogradUpsampleConv::Int8Kernels k{static_cast<const float*>(packed.scales->data()),
                                                   static_cast<const int32_t*>(packed.sums->data()),
                                                   c.Co};
    std::vector<uint8_t> scratch(wc.scratch_bytes());
    const std::vector<uint16_t> xb = to_bf16_bits(x);
    const void* xp = c.f32_input ? static_cast<const void*>(x.data()) : xb.data();
    // bf16 outputs where the CPU rounds to bf16 (elsewhere int8 plans write f32: refused below).
    const int outputs = cpu::cpu_features().avx512_bf16 ? 2 : 1;
    for (const bool with_bias : {true, false}) {
      const Vec ref = conv2d_ref(up, w, with_bias ? &b : nullptr, c.N, 2 * c.H, 2 * c.W, c.Ci, c.Co,
                                 3, 3, 1, 1, 1, 1, 1, Ho, Wo);
      for (int out = 0; out < outputs; ++out) {  // f32, bf16 output
        const size_t n = ref.size();
        Vec yf(n, -7.f);  // every output is written
        std::vector<uint16_t> yb(n, f32_to_bf16(-7.f));
        void* y = out == 0 ? static_cast<void*>(yf.data()) : yb.data();
        wc.run(xp, packed.values->data(), with_bias ? b.data() : nullptr, y,
               out == 0 ? DType::F32 : DType::BF16, scratch.data(), &k);
        if (out == 1)
          for (size_t i = 0; i < n; ++i) yf[i] = bf16_to_f32(yb[i]);
        SCOPED_TRACE(testing::Message()
                     << c.N << "x" << c.H << "x" << c.W << " " << c.Ci << "->" << c.Co
                     << " threads " << c.threads << " f32 input " << c.f32_input << " bias "
                     << with_bias << " output " << out);
        // u8 tiles (a scale per tile and point) and s8 kernels (per point and output channel);
        // a wrong tap, phase, scale or zero point is off by ~1.
        EXPECT_LT(rel_l2(yf, ref), 1.6e-2);
      }
    }
    // The kernel's scales are what makes it int8: a call without them is a caller's error.
    Vec y(size_t(c.N * 4 * c.H * c.W * c.Co));
    EXPECT_THROW(wc.run(xp, packed.values->data(), b.data(), y.data(), DType::F32, scratch.data()),
                 Error);
    if (outputs == 1)
      expect_bf16_output_refused(y.size(), [&](uint16_t* yb) {
        wc.run(xp, packed.values->data(), b.data(), yb, DType::BF16, scratch.data(), &k);
      });
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

// SiLU, a 2x upsampling and a 128 -> 128 3x3 convolution over it (32x32 -> 64x64: 256 tiles, two
// chunks of 32 a thread on 2 threads; the SiLU stores the bf16 activations the Winograd path reads,
// as the models' norms do). BF16 and INT8 plans run it as the Winograd phases where the CPU has
// AVX-512 BF16 (int8: and VNNI), f32 plans where it has AVX2; --no-winograd runs the direct phase
// convolution.
TEST(Planner, UpsampleConvolutionsRunAsWinograd) {
  const int64_t H = 32, W = 32, C = 128;
  graph::Graph g;
  const auto up = g.upsample_nearest(g.silu(g.input("x", {1, H, W, C})), int(2 * H), int(2 * W));
  const auto y =
      g.conv2d(up, add_weight(g, "w", random_vec(C * C * 9, 41, -0.05f, 0.05f), {C, C, 3, 3}),
               add_weight(g, "b", random_vec(C, 42), {C}), 1, 1);
  g.allow_int8(y);
  g.output("out", y);
  const std::vector<std::pair<std::string, Vec>> in = {{"x", random_vec(H * W * C, 43)}};
  const Vec ref = reference_run(g, in)[0];
  const bool pays = cpu::winograd_upsample_pays(1, H, W, C, C, 2);
  const bool pays_int8 = cpu::winograd_upsample_int8_pays(1, H, W, C, C, 2);
  const bool pays_f32 = cpu::winograd_upsample_f32_pays(1, H, W, C, C, 2);
  EXPECT_EQ(pays_f32, cpu::winograd_f32::available());
  // bf16 from 64 channels (TAESD's upsamplers), int8 from 128 (at 64 its direct path is faster).
  EXPECT_EQ(cpu::winograd_upsample_pays(1, H, W, 64, 64, 2), pays);
  EXPECT_FALSE(cpu::winograd_upsample_int8_pays(1, H, W, 64, 64, 2));
  for (const bool winograd : {true, false})
    for (const cpu::Precision prec :
         {cpu::Precision::BF16, cpu::Precision::F32, cpu::Precision::INT8}) {
      if (!cpu::precision_available(prec)) continue;  // refused on this CPU
      cpu::PlanOptions o;
      o.precision = prec;
      o.winograd = winograd;
      o.threads = 2;
      o.check = true;
      auto p = cpu::Plan::compile(g, o);
      const std::string kinds = step_kinds(*p);
      SCOPED_TRACE(kinds);
      if (prec == cpu::Precision::INT8) {
        EXPECT_EQ(kinds,
                  pays_int8 && winograd ? "Silu Conv2d.wino.up2x.int8 " : "Silu Conv2d.up2x.int8 ");
      } else {
        const bool expect = winograd && (prec == cpu::Precision::BF16 ? pays : pays_f32);
        EXPECT_EQ(kinds, expect ? "Silu Conv2d.wino.up2x " : "Silu Conv2d.up2x ");
      }
      for (const auto& [name, v] : in) fill_input(*p, name, v);
      p->run();
      const Vec out(p->output("out"), p->output("out") + ref.size());
      EXPECT_LT(rel_l2(out, ref), prec == cpu::Precision::F32    ? 1e-5
                                  : prec == cpu::Precision::BF16 ? 1.5e-2
                                                                 : 2.5e-2);
    }
}

}  // namespace
}  // namespace sdc::test
