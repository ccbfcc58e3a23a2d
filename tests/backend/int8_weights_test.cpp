// The one-pass W8A8 weight packer against the path it replaced, rebuilt here: the source staged
// as f32, per-row scales max|w| / 127, std::nearbyint quantisation, then oneDNN's own reorder
// (which adds any zero-point compensation) into the layout the primitive picked. Scales and
// packed bytes must be identical, for the layouts the UNet's convolutions and matmuls get (and
// padded ones), every source dtype, both kernel paths, and the reorder fallback. The planner's
// primitives take no source zero point (they fold it into the bias); the layouts with oneDNN's
// zero-point compensation that such a primitive would get are written directly too.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include <oneapi/dnnl/dnnl.hpp>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/int8_weights.h"
#include "backend/cpu/prepacked_weights.h"
#include "backend/cpu/winograd_common.h"
#include "reference.h"

namespace sdc::test {
namespace {

using dnnl::memory;
using dt = memory::data_type;
using tag = memory::format_tag;

struct Reference {
  std::vector<float> scales;
  std::vector<uint8_t> packed;
};

Reference reference_pack(const TensorRef& t, const memory::desc& src_md, const memory::desc& dst_md,
                         const dnnl::engine& engine) {
  const std::vector<float> values = t.to_f32();
  const int64_t rows = t.shape.at(0), row = t.numel() / rows;
  Reference r;
  r.scales.resize(size_t(rows));
  std::vector<int8_t> q(values.size());
  for (int64_t o = 0; o < rows; ++o) {
    const float* w = values.data() + o * row;
    float m = 0.f;
    for (int64_t k = 0; k < row; ++k) m = std::max(m, std::fabs(w[k]));
    r.scales[size_t(o)] = m > 0.f ? m / 127.f : 1.f;
    const float inv = 1.f / r.scales[size_t(o)];
    for (int64_t k = 0; k < row; ++k)
      q[size_t(o * row + k)] = int8_t(std::clamp(std::nearbyint(w[k] * inv), -127.f, 127.f));
  }
  r.packed.resize(dst_md.get_size());
  memory src(src_md, engine, q.data()), dst(dst_md, engine, r.packed.data());
  dnnl::stream stream(engine);
  dnnl::reorder(src, dst).execute(stream, src, dst);
  stream.wait();
  return r;
}

// Weights with an all-zero row, a row of one repeated value and exact .5 ties, in `dtype`.
TensorRef weights(const Shape& s, DType dtype, uint32_t seed) {
  Vec v = random_vec(shape_numel(s), seed, -0.2f, 0.2f);
  const int64_t row = shape_numel(s) / s[0];
  std::fill(v.begin(), v.begin() + row, 0.f);
  if (s[0] > 2) {
    std::fill(v.begin() + row, v.begin() + 2 * row, -0.0625f);
    for (int64_t k = 0; k < row; ++k) v[size_t(2 * row + k)] = float(k % 255 - 127) / 2.f;
  }
  return TensorRef::from_f32(v, s, dtype);
}

class Int8Weights : public testing::TestWithParam<bool> {  // parameter: portable kernels
 protected:
  void SetUp() override {
    if (!cpu::isa_has_int8_dot()) GTEST_SKIP() << "no VNNI: int8 plans are refused here";
    cpu::force_generic_kernels(GetParam());
  }
  void TearDown() override { cpu::force_generic_kernels(false); }

  // Packs `t` both ways and compares; returns whether the packer wrote the layout itself.
  bool expect_same(const TensorRef& t, const memory::desc& src_md, const memory::desc& dst_md) {
    const Reference ref = reference_pack(t, src_md, dst_md, engine_);
    const cpu::Int8Packed got = cpu::pack_int8_weight(t, src_md, dst_md, engine_);
    EXPECT_EQ(got.scales->bytes(), ref.scales.size() * sizeof(float));
    EXPECT_EQ(std::memcmp(got.scales->data(), ref.scales.data(), got.scales->bytes()), 0);
    EXPECT_EQ(got.values->bytes(), ref.packed.size());
    const auto* p = static_cast<const uint8_t*>(got.values->data());
    const size_t n = std::min(got.values->bytes(), ref.packed.size());
    const size_t first = size_t(std::mismatch(p, p + n, ref.packed.begin()).first - p);
    EXPECT_EQ(first, n) << "first differing byte of " << n << ", " << shape_str(t.shape) << " "
                        << dtype_name(t.dtype) << ": " << int(int8_t(p[first])) << " vs "
                        << int(int8_t(ref.packed[first]));
    return cpu::writes_int8_layout(src_md, dst_md, t.shape.at(0));
  }

  // The weight layout of a W8A8 matmul [M, K] x [K, N] as the planner asks for it (with
  // `zero_point`: as a primitive with a runtime source zero point gets it).
  memory::desc matmul_weights(int64_t M, int64_t K, int64_t N, bool zero_point = false) {
    dnnl::primitive_attr attr;
    if (zero_point) attr.set_zero_points(DNNL_ARG_SRC, 0, {DNNL_RUNTIME_S32_VAL});
    const dnnl::matmul::desc d(memory::desc({M, K}, dt::u8, tag::ab),
                               memory::desc({K, N}, dt::s8, tag::any),
                               memory::desc({M, N}, dt::f32, tag::ab));
    return dnnl::matmul::primitive_desc(d, attr, engine_).weights_desc();
  }
  // The weight layout of a W8A8 convolution (stride 1, same padding) on an H x W image as the
  // planner asks for it: over the image framed by the padding, padding nothing itself; with
  // `zero_point`, padding itself with a runtime source zero point (oneDNN's compensation).
  memory::desc conv_weights(int64_t Ci, int64_t Co, int64_t k, int64_t H, int64_t W,
                            dt src = dt::u8, bool zero_point = false) {
    dnnl::primitive_attr attr;
    if (src == dt::u8 && zero_point) attr.set_zero_points(DNNL_ARG_SRC, 0, {DNNL_RUNTIME_S32_VAL});
    const int64_t pad = k / 2, frame = zero_point ? 0 : pad, own = pad - frame;
    const dnnl::convolution_forward::desc d(
        dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
        memory::desc({1, Ci, H + 2 * frame, W + 2 * frame}, src, tag::nhwc),
        memory::desc({Co, Ci, k, k}, dt::s8, tag::any),
        memory::desc({1, Co, H, W}, dt::f32, tag::nhwc), {1, 1}, {own, own}, {own, own});
    return dnnl::convolution_forward::primitive_desc(d, attr, engine_).weights_desc();
  }

  dnnl::engine engine_{dnnl::engine::kind::cpu, 0};
};

TEST_P(Int8Weights, MatmulLayoutsMatchTheReorder) {
  struct Case {
    int64_t M, K, N;
  };
  for (const Case c : {Case{64, 320, 320}, Case{77, 768, 640}, Case{256, 1280, 5120},
                       Case{16, 100, 70}, Case{9, 33, 3}}) {
    for (DType dtype : {DType::F16, DType::BF16, DType::F32})
      for (bool zero_point : {false, true}) {
        const TensorRef w = weights({c.N, c.K}, dtype, uint32_t(c.K + c.N));
        EXPECT_TRUE(expect_same(w, memory::desc({c.K, c.N}, dt::s8, tag::ba),
                                matmul_weights(c.M, c.K, c.N, zero_point)))
            << "matmul " << c.K << "x" << c.N << " went through the reorder";
      }
  }
}

TEST_P(Int8Weights, ConvLayoutsMatchTheReorder) {
  struct Case {
    int64_t Ci, Co, k, H;
  };
  // Large and small images (oneDNN picks other layouts for 4x4), 1x1, channels that pad.
  for (const Case c : {Case{320, 320, 3, 32}, Case{1280, 1280, 3, 4}, Case{640, 320, 1, 16},
                       Case{2560, 1280, 3, 8}, Case{20, 24, 3, 7}, Case{3, 5, 3, 5}}) {
    for (DType dtype : {DType::F16, DType::BF16})
      for (bool zero_point : {false, true}) {
        const TensorRef w = weights({c.Co, c.Ci, c.k, c.k}, dtype, uint32_t(c.Ci * 7 + c.Co));
        EXPECT_TRUE(expect_same(w, memory::desc({c.Co, c.Ci, c.k, c.k}, dt::s8, tag::oihw),
                                conv_weights(c.Ci, c.Co, c.k, c.H, c.H, dt::u8, zero_point)))
            << "conv " << c.Co << "x" << c.Ci << "x" << c.k << " went through the reorder";
      }
  }
}

// A Winograd kernel's rows are its points' output channels, [16 * Co, Ci], quantised row by
// row: two dims of the [16, Ci, Co] source, into the stacked product kernels (and channels that
// pad).
TEST_P(Int8Weights, WinogradPointRowsMatchTheReorder) {
  if (!cpu::WinogradProducts::stacks_kernels(cpu::WinogradProducts::Type::Int8))
    GTEST_SKIP() << "no plainly blocked int8 product kernels here";
  struct Case {
    int64_t Ci, Co;
  };
  for (const Case c : {Case{320, 320}, Case{2560, 1280}, Case{40, 24}}) {
    const TensorRef w = weights({16 * c.Co, c.Ci}, DType::F32, uint32_t(c.Ci + 3 * c.Co));
    const cpu::WinogradProducts products(16, 16, 64, c.Ci, c.Co, engine_,
                                         cpu::WinogradProducts::Type::Int8);
    EXPECT_TRUE(
        expect_same(w, memory::desc({16, c.Ci, c.Co}, dt::s8, tag::acb), products.weights_desc()))
        << "Winograd " << c.Ci << " -> " << c.Co << " went through the reorder";
  }
}

TEST_P(Int8Weights, OtherLayoutsGoThroughTheReorder) {
  // An s8-source convolution's weights carry the s8s8 compensation the writer does not make.
  const TensorRef w = weights({64, 32, 3, 3}, DType::F16, 7);
  EXPECT_FALSE(expect_same(w, memory::desc({64, 32, 3, 3}, dt::s8, tag::oihw),
                           conv_weights(32, 64, 3, 16, 16, dt::s8)));
}

INSTANTIATE_TEST_SUITE_P(Kernels, Int8Weights, testing::Values(false, true),
                         [](const testing::TestParamInfo<bool>& i) {
                           return i.param ? "generic" : "native";
                         });

}  // namespace
}  // namespace sdc::test
