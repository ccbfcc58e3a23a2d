// Winograd F(2x2, 3x3): the kernel against a double-precision direct convolution (odd image sizes,
// channel counts that are no multiple of 16, a batch, bias and residual of either type, f32 and
// bf16 outputs), and the planner's choice of it for large bf16 convolutions only.
#include <gtest/gtest.h>

#include <cstring>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/plan.h"
#include "backend/cpu/winograd_conv.h"
#include "common/error.h"
#include "reference.h"

namespace sdc::test {
namespace {

std::vector<uint16_t> to_bf16_bits(const Vec& v) {
  std::vector<uint16_t> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = f32_to_bf16(v[i]);
  return r;
}

TEST(WinogradConv, MatchesTheDirectConvolutionAtBf16Precision) {
  // The transforms are AVX-512 BF16 code, reached only where winograd_pays.
  if (!cpu::use_avx512_kernels() || !cpu::cpu_features().avx512_bf16)
    GTEST_SKIP() << "no AVX-512 BF16 here";
  struct Case {
    int64_t N, H, W, Ci, Co;
  };
  for (const Case c : {Case{2, 7, 9, 40, 24}, Case{1, 16, 12, 64, 32}, Case{1, 5, 4, 16, 16}}) {
    const Vec x = round_bf16(random_vec(c.N * c.H * c.W * c.Ci, 11));
    const Vec w = random_vec(c.Co * c.Ci * 9, 12, -0.2f, 0.2f);
    const Vec b = random_vec(c.Co, 13);
    const Vec r = round_bf16(random_vec(c.N * c.H * c.W * c.Co, 14));
    int64_t Ho = 0, Wo = 0;
    const Vec conv = conv2d_ref(x, w, &b, c.N, c.H, c.W, c.Ci, c.Co, 3, 3, 1, 1, 1, 1, 1, Ho, Wo);
    ASSERT_EQ(Ho, c.H);
    ASSERT_EQ(Wo, c.W);
    const TensorRef wt = TensorRef::from_f32(w, {c.Co, c.Ci, 3, 3}, DType::F32, "test");
    const TensorRef u = cpu::winograd_weights(wt);
    ASSERT_EQ(u.shape, (Shape{16, c.Ci, c.Co}));
    const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    cpu::WinogradConv wc({c.N, c.H, c.W, c.Ci, c.Co}, engine, 2);
    // The kernel packed as the products read it.
    std::vector<uint8_t> packed(wc.weights_desc().get_size());
    {
      dnnl::memory src(
          {{16, c.Ci, c.Co}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::abc}, engine,
          const_cast<void*>(u.data));
      dnnl::memory dst(wc.weights_desc(), engine, packed.data());
      dnnl::stream s(engine);
      dnnl::reorder(src, dst).execute(s, src, dst);
      s.wait();
    }
    std::vector<uint8_t> scratch(wc.scratch_bytes());
    const std::vector<uint16_t> xb = to_bf16_bits(x), rb = to_bf16_bits(r);
    const size_t n = conv.size();
    for (int add = 0; add < 3; ++add)      // none, f32 residual, bf16 residual (in place)
      for (int out = 0; out < 2; ++out) {  // f32, bf16 output
        Vec ref = conv;
        if (add) {
          for (size_t i = 0; i < n; ++i) ref[i] += r[i];
        }
        Vec yf(n, 0.f);
        std::vector<uint16_t> yb(n, 0);
        cpu::WinogradConv::Addend a;
        if (add == 1) a = {r.data(), DType::F32};
        if (add == 2) {
          // In place: the output buffer holds the residual, in the output's type.
          if (out == 0)
            std::copy(r.begin(), r.end(), yf.begin());
          else
            yb = rb;
          a = {out == 0 ? static_cast<const void*>(yf.data()) : yb.data(),
               out == 0 ? DType::F32 : DType::BF16};
        }
        void* y = out == 0 ? static_cast<void*>(yf.data()) : yb.data();
        wc.run(xb.data(), packed.data(), b.data(), a, y, out == 0 ? DType::F32 : DType::BF16,
               scratch.data());
        if (out == 1)
          for (size_t i = 0; i < n; ++i) yf[i] = bf16_to_f32(yb[i]);
        SCOPED_TRACE(testing::Message() << c.N << "x" << c.H << "x" << c.W << " " << c.Ci << "->"
                                        << c.Co << " addend " << add << " output " << out);
        // bf16 tiles and kernels: ~6e-3 on random data (the direct bf16 convolution ~2e-3); a
        // wrong tap or a missed tile is off by ~1.
        EXPECT_LT(rel_l2(yf, ref), 1.2e-2);
        EXPECT_LT(rel_err(yf.data(), ref), 5e-2);
      }
  }
}

TEST(WinogradConv, RejectsWhatIsNoThreeByThreeKernel) {
  const TensorRef w = TensorRef::from_f32(Vec(8 * 4 * 2 * 2), {8, 4, 2, 2}, DType::F32, "k.bin");
  try {
    cpu::winograd_weights(w);
    FAIL() << "a 2x2 kernel was transformed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[Co, Ci, 3, 3]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("k.bin"), std::string::npos) << e.what();
  }
}

// Two 128 -> 128 3x3 convolutions over 128x128 (Winograd's size on 2 threads): the first writes
// a bf16 value only the second reads, the second adds a residual input. BF16 plans run both as
// Winograd where the CPU has AVX-512 BF16, f32 plans and --no-winograd never.
TEST(Planner, LargeBf16ConvolutionsRunAsWinograd) {
  const int64_t H = 128, W = 128, C = 128;
  graph::Graph g;
  const auto x = g.input("x", {1, H, W, C});
  const auto r = g.input("r", {1, H, W, C});
  auto conv = [&](graph::ValueId v, uint32_t seed) {
    return g.conv2d(v, add_weight(g, "w", random_vec(C * C * 9, seed, -0.05f, 0.05f), {C, C, 3, 3}),
                    add_weight(g, "b", random_vec(C, seed + 1), {C}), 1, 1);
  };
  g.output("out", g.add(conv(conv(x, 21), 23), r));
  const std::vector<std::pair<std::string, Vec>> in = {{"x", random_vec(H * W * C, 25)},
                                                       {"r", random_vec(H * W * C, 26)}};
  const Vec ref = reference_run(g, in)[0];
  auto kinds = [](const cpu::Plan& p) {
    std::string k;
    for (const auto& s : p.steps()) k += s.kind + " ";
    return k;
  };
  const bool pays = cpu::winograd_pays(1, H, W, C, C, 2);
  for (const bool winograd : {true, false})
    for (const cpu::Precision prec : {cpu::Precision::BF16, cpu::Precision::F32}) {
      cpu::PlanOptions o;
      o.precision = prec;
      o.winograd = winograd;
      o.threads = 2;
      o.check = true;
      auto p = cpu::Plan::compile(g, o);
      const bool expect = pays && winograd && prec == cpu::Precision::BF16;
      SCOPED_TRACE(kinds(*p));
      const std::string convert = prec == cpu::Precision::BF16 ? "Convert " : "";  // x to bf16
      EXPECT_EQ(kinds(*p),
                convert + (expect ? "Conv2d.wino Conv2d.wino+add " : "Conv2d Conv2d+add "));
      for (const auto& [name, v] : in) fill_input(*p, name, v);
      p->run();
      const Vec out(p->output("out"), p->output("out") + ref.size());
      EXPECT_LT(rel_l2(out, ref), prec == cpu::Precision::F32 ? 1e-5 : 1.5e-2);
    }
}

}  // namespace
}  // namespace sdc::test
