// Winograd F(2x2, 3x3): the kernel against a double-precision direct convolution (odd image sizes,
// channel counts that are no multiple of 16, a batch, bias and residual of either type, f32 and
// bf16 outputs; f32 throughout), and the planner's choice of it for large convolutions.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <tuple>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/int8_weights.h"
#include "backend/cpu/plan.h"
#include "backend/cpu/prepacked_weights.h"
#include "backend/cpu/winograd_conv.h"
#include "backend/cpu/winograd_f32.h"
#include "backend/cpu/winograd_f4.h"
#include "bf16_output_refusal.h"
#include "common/error.h"
#include "reference.h"

namespace sdc::test {
namespace {

TEST(WinogradConv, MatchesTheDirectConvolutionAtBf16Precision) {
  // The transforms are AVX-512 BF16 code, reached only where winograd_pays.
  if (!cpu::use_avx512_kernels() || !cpu::cpu_features().avx512_bf16)
    GTEST_SKIP() << "no AVX-512 BF16 here";
  struct Case {
    int64_t N, H, W, Ci, Co;
    int threads = 2;
  };
  // The last three split their products by point (winograd_splits_points).
  for (const Case c :
       {Case{2, 7, 9, 40, 24}, Case{1, 16, 12, 64, 32}, Case{1, 5, 4, 16, 16},
        Case{1, 17, 15, 48, 40}, Case{1, 32, 31, 24, 40}, Case{2, 12, 11, 40, 24, 3}}) {
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
    cpu::WinogradConv wc({c.N, c.H, c.W, c.Ci, c.Co}, engine, c.threads);
    // The kernel packed as the products read it.
    const std::vector<uint8_t> packed = packed_as(u, wc.weights_desc());
    std::vector<uint8_t> scratch(wc.scratch_bytes());
    const std::vector<uint16_t> xb = to_bf16_bits(x), rb = to_bf16_bits(r);
    const size_t n = conv.size();
    for (int add = 0; add < 3; ++add)    // none, f32 residual, bf16 residual (in place)
      for (int out = 0; out < 2; ++out)  // f32, bf16 output
        for (const bool relu : {false, true}) {
          Vec ref = conv;
          if (add) {
            for (size_t i = 0; i < n; ++i) ref[i] += r[i];
          }
          if (relu)
            for (float& v : ref) v = std::max(v, 0.f);
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
                 scratch.data(), nullptr, relu);
          if (out == 1)
            for (size_t i = 0; i < n; ++i) yf[i] = bf16_to_f32(yb[i]);
          SCOPED_TRACE(testing::Message() << c.N << "x" << c.H << "x" << c.W << " " << c.Ci << "->"
                                          << c.Co << " threads " << c.threads << " addend " << add
                                          << " output " << out << " relu " << relu);
          // bf16 tiles and kernels: ~6e-3 on random data (the direct bf16 convolution ~2e-3); a
          // wrong tap or a missed tile is off by ~1.
          EXPECT_LT(rel_l2(yf, ref), 1.2e-2);
          EXPECT_LT(rel_err(yf.data(), ref), 5e-2);
        }
  }
}

// The f32 plans' Winograd: f32 throughout, so its error stays at f32's level. Channels in multiples
// of 16 take the AVX-512 transforms where the own kernels run AVX-512, the others (and every case
// with the kernels forced generic) the AVX2 ones.
TEST(WinogradConv, F32MatchesTheDirectConvolutionAtF32Precision) {
  if (!cpu::winograd_f32::available()) GTEST_SKIP() << "no AVX2 here";
  struct Case {
    int64_t N, H, W, Ci, Co;
    int threads = 2;
    bool split = false;  // the products split by point (winograd_splits_points), not by chunk
  };
  for (const Case c : {Case{2, 7, 9, 40, 24}, Case{1, 16, 12, 64, 32}, Case{1, 5, 4, 16, 8},
                       Case{1, 17, 15, 48, 40, 2, true}, Case{1, 32, 31, 24, 40, 2, true},
                       Case{2, 12, 11, 40, 24, 3, true}, Case{2, 32, 32, 16, 24, 2, false},
                       Case{1, 16, 16, 24, 16, 1, true}}) {
    const int64_t tiles = cpu::winograd_tile_count(c.N, c.H, c.W);
    EXPECT_EQ(cpu::winograd_splits_points(tiles, c.threads), c.split) << tiles << " tiles";
    const Vec x = random_vec(c.N * c.H * c.W * c.Ci, 41);
    const Vec w = random_vec(c.Co * c.Ci * 9, 42, -0.2f, 0.2f);
    const Vec b = random_vec(c.Co, 43);
    const Vec r = random_vec(c.N * c.H * c.W * c.Co, 44);
    int64_t Ho = 0, Wo = 0;
    const Vec conv = conv2d_ref(x, w, &b, c.N, c.H, c.W, c.Ci, c.Co, 3, 3, 1, 1, 1, 1, 1, Ho, Wo);
    const TensorRef u =
        cpu::winograd_weights(TensorRef::from_f32(w, {c.Co, c.Ci, 3, 3}, DType::F32, "test"));
    const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    cpu::WinogradConv wc({c.N, c.H, c.W, c.Ci, c.Co}, engine, c.threads,
                         cpu::WinogradConv::Type::F32);
    const std::vector<uint8_t> packed = packed_as(u, wc.weights_desc());
    std::vector<uint8_t> scratch(wc.scratch_bytes());
    for (const bool generic : {false, true})
      for (int add = 0; add < 3; ++add)  // none, a residual, the output's own (in place)
        for (const bool relu : {false, true}) {
          Vec ref = conv;
          for (size_t i = 0; i < ref.size(); ++i) {
            if (add) ref[i] += r[i];
            if (relu) ref[i] = std::max(ref[i], 0.f);
          }
          Vec y = add == 2 ? r : Vec(ref.size(), 0.f);
          cpu::WinogradConv::Addend a;
          if (add) a = {add == 1 ? r.data() : y.data(), DType::F32};
          cpu::force_generic_kernels(generic);
          wc.run(x.data(), packed.data(), b.data(), a, y.data(), DType::F32, scratch.data(),
                 nullptr, relu);
          cpu::force_generic_kernels(false);
          SCOPED_TRACE(testing::Message() << c.N << "x" << c.H << "x" << c.W << " " << c.Ci << "->"
                                          << c.Co << " threads " << c.threads << " generic "
                                          << generic << " addend " << add << " relu " << relu);
          // f32 rounding of sums of up to 4 x 4 terms before and after the products: ~1e-7.
          EXPECT_LT(rel_l2(y, ref), 2e-6);
          EXPECT_LT(rel_err(y.data(), ref), 1e-5);
        }
    // f32 in, f32 out: a bf16 output or residual is a caller's error, not a silent conversion.
    std::vector<uint16_t> yb(conv.size());
    EXPECT_THROW(
        wc.run(x.data(), packed.data(), b.data(), {}, yb.data(), DType::BF16, scratch.data()),
        Error);
    EXPECT_THROW(wc.run(x.data(), packed.data(), b.data(), {yb.data(), DType::BF16},
                        Vec(conv).data(), DType::F32, scratch.data()),
                 Error);
  }
  // The AVX2 transforms take 8 channels at a time.
  EXPECT_FALSE(cpu::winograd_f32_pays(1, 64, 64, 132, 128, 2));
  EXPECT_FALSE(cpu::winograd_f32_pays(1, 64, 64, 128, 132, 2));
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  try {
    cpu::WinogradConv({1, 16, 16, 20, 16}, engine, 1, cpu::WinogradConv::Type::F32);
    FAIL() << "20 input channels were taken";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("multiples of 8"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("20 -> 16"), std::string::npos) << e.what();
  }
}

TEST(WinogradConv, Int8MatchesTheDirectConvolutionAtInt8Precision) {
  if (!cpu::winograd_int8_pays(1, 16, 16, 128, 128, 1)) GTEST_SKIP() << "no AVX-512 VNNI";
  struct Case {
    int64_t N, H, W, Ci, Co;
    int threads = 2;
    bool split = false;      // the products split by point (winograd_splits_points), not by chunk
    bool f32_input = false;  // f32 activations (int8 plans where bf16 is not faster), not bf16
  };
  // 64 or more tiles, in chunks that would be shorter than 64: split by point (3 threads: 6, 6
  // and 4 points each; 1 thread: all 16). 512 tiles on 2 threads: chunks of 64.
  // Input channels 80 and 64: the codes stored 64 at a time, then the 16-lane tail.
  for (const Case c :
       {Case{2, 7, 9, 80, 24}, Case{1, 16, 12, 64, 32}, Case{1, 5, 4, 16, 16},
        Case{1, 17, 15, 48, 40, 2, true}, Case{2, 12, 11, 40, 24, 2, true},
        Case{1, 16, 16, 32, 48, 3, true}, Case{1, 32, 31, 24, 40, 2, true},
        Case{2, 32, 32, 16, 24, 2, false}, Case{1, 16, 16, 24, 16, 1, true},
        Case{2, 7, 9, 80, 24, 2, false, true}, Case{1, 17, 15, 48, 40, 2, true, true},
        Case{2, 32, 32, 16, 24, 2, false, true}}) {
    const int64_t tiles = cpu::winograd_tile_count(c.N, c.H, c.W);
    EXPECT_EQ(cpu::winograd_splits_points(tiles, c.threads), c.split) << tiles << " tiles";
    const Vec x0 = random_vec(c.N * c.H * c.W * c.Ci, 31);
    const Vec x = c.f32_input ? x0 : round_bf16(x0);
    const Vec w = random_vec(c.Co * c.Ci * 9, 32, -0.2f, 0.2f);
    const Vec b = random_vec(c.Co, 33);
    const Vec r = random_vec(c.N * c.H * c.W * c.Co, 34);
    int64_t Ho = 0, Wo = 0;
    const Vec conv = conv2d_ref(x, w, &b, c.N, c.H, c.W, c.Ci, c.Co, 3, 3, 1, 1, 1, 1, 1, Ho, Wo);
    const TensorRef wt = TensorRef::from_f32(w, {c.Co, c.Ci, 3, 3}, DType::F32, "test");
    const TensorRef rows = cpu::winograd_weight_rows(wt);
    ASSERT_EQ(rows.shape, (Shape{16 * c.Co, c.Ci}));
    const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    cpu::WinogradConv wc({c.N, c.H, c.W, c.Ci, c.Co}, engine, c.threads,
                         cpu::WinogradConv::Type::Int8, c.f32_input ? DType::F32 : DType::BF16);
    // s8 per point and output channel, packed as the products read them.
    const cpu::Int8Packed packed = cpu::pack_int8_weight(
        rows, {{16, c.Ci, c.Co}, dnnl::memory::data_type::s8, dnnl::memory::format_tag::acb},
        wc.weights_desc(), engine);
    const cpu::WinogradConv::Int8Kernels k{static_cast<const float*>(packed.scales->data()),
                                           static_cast<const int32_t*>(packed.sums->data()), c.Co};
    std::vector<uint8_t> scratch(wc.scratch_bytes());
    const std::vector<uint16_t> xb = to_bf16_bits(x);
    const void* xp = c.f32_input ? static_cast<const void*>(x.data()) : xb.data();
    const Vec rb = round_bf16(r);
    // bf16 outputs where the CPU rounds to bf16 (elsewhere int8 plans write f32: refused below).
    const int outputs = cpu::cpu_features().avx512_bf16 ? 2 : 1;
    for (int add = 0; add < 3; ++add)          // none, f32 residual, the output's own (in place)
      for (int out = 0; out < outputs; ++out)  // f32, bf16 output
        for (const bool relu : {false, true}) {
          const Vec& res = add == 2 && out == 1 ? rb : r;  // in place in bf16: the rounded one
          Vec ref = conv;
          if (add)
            for (size_t i = 0; i < ref.size(); ++i) ref[i] += res[i];
          if (relu)
            for (float& v : ref) v = std::max(v, 0.f);
          // In place: the output buffer holds the residual, in the output's type.
          Vec y = add == 2 && out == 0 ? r : Vec(ref.size(), 0.f);
          std::vector<uint16_t> yb =
              add == 2 && out == 1 ? to_bf16_bits(r) : std::vector<uint16_t>(ref.size(), 0);
          void* yp = out == 0 ? static_cast<void*>(y.data()) : yb.data();
          cpu::WinogradConv::Addend a;
          if (add == 1) a = {r.data(), DType::F32};
          if (add == 2) a = {yp, out == 0 ? DType::F32 : DType::BF16};
          wc.run(xp, packed.values->data(), b.data(), a, yp, out == 0 ? DType::F32 : DType::BF16,
                 scratch.data(), &k, relu);
          if (out == 1)
            for (size_t i = 0; i < y.size(); ++i) y[i] = bf16_to_f32(yb[i]);
          SCOPED_TRACE(testing::Message()
                       << c.N << "x" << c.H << "x" << c.W << " " << c.Ci << "->" << c.Co
                       << " threads " << c.threads << " f32 input " << c.f32_input << " addend "
                       << add << " output " << out << " relu " << relu);
          // u8 tiles and s8 kernels: 0.9-1.2e-2 on random data (the direct int8 convolution's
          // quantisation ~0.55e-2 by its step sizes); a wrong tap, scale or zero point is off by
          // ~1.
          EXPECT_LT(rel_l2(y, ref), 1.6e-2);
        }
    // The kernel's scales are what makes it int8: a call without them is a caller's error.
    Vec y(conv.size());
    EXPECT_THROW(
        wc.run(xp, packed.values->data(), b.data(), {}, y.data(), DType::F32, scratch.data()),
        Error);
    if (outputs == 1)
      expect_bf16_output_refused(conv.size(), [&](uint16_t* yb) {
        wc.run(xp, packed.values->data(), b.data(), {}, yb, DType::BF16, scratch.data(), &k);
      });
  }
}

// Each product type reads the activations it can: int8 bf16 or f32, bf16 bf16, f32 f32; another
// type is the caller's error, named before anything is planned.
TEST(WinogradConv, RejectsAnInputTypeItsProductsDoNotRead) {
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  using Type = cpu::WinogradConv::Type;
  for (const auto& [type, input, expected] :
       {std::tuple{Type::Bf16, DType::F32, "bf16 (bf16 products)"},
        std::tuple{Type::F32, DType::BF16, "f32 (f32 products)"},
        std::tuple{Type::Int8, DType::F16, "bf16 or f32 (int8 products)"}}) {
    if (type == Type::Int8 && !cpu::winograd_int8_pays(1, 16, 16, 128, 128, 1)) continue;
    if (type == Type::F32 && !cpu::winograd_f32::available()) continue;
    if (type == Type::Bf16 && !cpu::winograd_pays(1, 16, 16, 128, 128, 1)) continue;
    try {
      cpu::WinogradConv({1, 16, 16, 16, 16}, engine, 1, type, input);
      FAIL() << "took " << dtype_name(input) << " input";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("Winograd convolution input"), std::string::npos)
          << e.what();
      EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(std::string(dtype_name(input))), std::string::npos)
          << e.what();
    }
  }
}

// TAESD's blocks: conv + ReLU, and conv + residual + ReLU, at 64 channels over 64x64 run as
// Winograd (the ReLU in the output transform) in an f32 plan where the CPU has AVX2 and in a
// bf16 plan where it has AVX-512 BF16, and match the reference; with --no-winograd, direct.
TEST(Planner, ConvolutionsEndingInReluRunAsWinograd) {
  const int64_t H = 64, W = 64, C = 64;
  graph::Graph g;
  const auto x = g.input("x", {1, H, W, C});
  auto conv = [&](graph::ValueId v, uint32_t seed) {
    return g.conv2d(v, add_weight(g, "w", random_vec(C * C * 9, seed, -0.1f, 0.1f), {C, C, 3, 3}),
                    add_weight(g, "b", random_vec(C, seed + 1), {C}), 1, 1);
  };
  const auto h = g.relu(conv(x, 71));
  g.output("out", g.relu(g.add(conv(h, 73), x)));
  const std::vector<std::pair<std::string, Vec>> in = {{"x", random_vec(H * W * C, 75)}};
  const Vec ref = reference_run(g, in)[0];
  for (const cpu::Precision precision : {cpu::Precision::F32, cpu::Precision::BF16}) {
    const bool f32 = precision == cpu::Precision::F32;
    const bool pays =
        f32 ? cpu::winograd_f32_pays(1, H, W, C, C, 2) : cpu::winograd_pays(1, H, W, C, C, 2);
    if (f32)
      EXPECT_EQ(pays, cpu::winograd_f32::available());
    else
      EXPECT_EQ(pays, cpu::use_avx512_kernels() && cpu::cpu_features().avx512_bf16);
    // int8 plans keep TAESD's 64-channel convolutions direct (faster there).
    EXPECT_FALSE(cpu::winograd_int8_pays(1, H, W, C, C, 2));
    for (const bool winograd : {true, false}) {
      cpu::PlanOptions o;
      o.precision = precision;
      o.winograd = winograd;
      o.threads = 2;
      o.check = true;
      auto p = cpu::Plan::compile(g, o);
      const std::string kinds = step_kinds(*p);
      SCOPED_TRACE(kinds);
      EXPECT_EQ(kinds.find(".wino") != std::string::npos, pays && winograd);
      EXPECT_NE(kinds.find("relu"), std::string::npos);  // fused, not a step of its own
      EXPECT_EQ(kinds.find("Relu"), std::string::npos);
      for (const auto& [name, v] : in) fill_input(*p, name, v);
      p->run();
      const Vec out(p->output("out"), p->output("out") + ref.size());
      // bf16: activations and weights rounded, Winograd's tiles too (~3x the direct rounding).
      EXPECT_LT(rel_l2(out, ref), f32 ? 1e-5 : 1.5e-2);
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
// Winograd where the CPU has AVX-512 BF16, f32 plans where it has AVX2, --no-winograd never; INT8
// plans both as int8 Winograd where the CPU has AVX-512 VNNI (the first over the f32 input, the
// second over the plan's activations, bf16 or f32).
TEST(Planner, LargeBf16ConvolutionsRunAsWinograd) {
  const int64_t H = 128, W = 128, C = 128;
  graph::Graph g;
  const auto x = g.input("x", {1, H, W, C});
  const auto r = g.input("r", {1, H, W, C});
  auto conv = [&](graph::ValueId v, uint32_t seed) {
    const auto y =
        g.conv2d(v, add_weight(g, "w", random_vec(C * C * 9, seed, -0.05f, 0.05f), {C, C, 3, 3}),
                 add_weight(g, "b", random_vec(C, seed + 1), {C}), 1, 1);
    g.allow_int8(y);
    return y;
  };
  g.output("out", g.add(conv(conv(x, 21), 23), r));
  const std::vector<std::pair<std::string, Vec>> in = {{"x", random_vec(H * W * C, 25)},
                                                       {"r", random_vec(H * W * C, 26)}};
  const Vec ref = reference_run(g, in)[0];
  const bool pays = cpu::winograd_pays(1, H, W, C, C, 2);
  const bool pays_int8 = cpu::winograd_int8_pays(1, H, W, C, C, 2);
  const bool pays_f32 = cpu::winograd_f32_pays(1, H, W, C, C, 2);
  EXPECT_EQ(pays_f32, cpu::winograd_f32::available());  // every AVX2 CPU
  EXPECT_EQ(cpu::winograd_f4_pays(1, H, W, C, C, 2), pays_f32);
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
      SCOPED_TRACE(step_kinds(*p));
      if (prec == cpu::Precision::INT8) {
        EXPECT_EQ(step_kinds(*p), pays_int8 && winograd ? "Conv2d.wino.int8 Conv2d.wino.int8+add "
                                                        : "Conv2d.int8 Conv2d.int8+add ");
      } else {
        const bool expect = winograd && (prec == cpu::Precision::BF16 ? pays : pays_f32);
        const std::string convert = prec == cpu::Precision::BF16 ? "Convert " : "";  // x to bf16
        // f32: F(4x4, 3x3) at this size (1024 blocks of 4x4, winograd_f4_pays).
        const std::string w = prec == cpu::Precision::F32 ? ".wino4" : ".wino";
        EXPECT_EQ(step_kinds(*p), convert + (expect ? "Conv2d" + w + " Conv2d" + w + "+add "
                                                    : "Conv2d Conv2d+add "));
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
