// The planner's Winograd convolution steps (winograd_conv.h, and winograd_upsample.h for a
// convolution over a fused 2x upsampling): which bf16 (and int8 plans' W8A8) 3x3 convolutions take
// them (f32 plans' too, winograd_f32_pays, with F(4x4, 3x3) and F(4x4, 2x2) phases where they have
// the blocks: winograd_f4.h, winograd_upsample_f4.h), and the steps that run them with their
// transformed, packed kernels.
#include "backend/cpu/planner.h"
#include "backend/cpu/winograd_conv.h"
#include "backend/cpu/winograd_f4.h"
#include "backend/cpu/winograd_upsample.h"
#include "backend/cpu/winograd_upsample_f4.h"

namespace sdc::cpu::detail {

bool Planner::ends_in_relu(const Spec& s) {
  return !s.post.empty() && s.post.back().eltwise &&
         s.post.back().alg == dnnl::algorithm::eltwise_relu && s.post.back().alpha == 0.f;
}

WinogradProducts::Type Planner::winograd_type(const Spec& s) const {
  return s.int8  ? WinogradProducts::Type::Int8
         : bf16_ ? WinogradProducts::Type::Bf16
                 : WinogradProducts::Type::F32;
}

bool Planner::is_same_3x3(const Spec& s) const {
  const graph::Attrs& a = s.node->attrs;
  const Shape& ws = shape(s.node->inputs[1]);
  return ws.size() == 4 && ws[2] == 3 && ws[3] == 3 && a.stride == 1 && a.pad_top == 1 &&
         a.pad_left == 1 && a.pad_bottom == 1 && a.pad_right == 1;
}

bool Planner::runs_winograd(const Spec& s) const {
  if (!opt_.winograd) return false;
  // f32 plans: f32 throughout; an int8 plan's convolutions quantise its activations, bf16 or f32
  // (f32 where bf16 is not faster, as on CPUs without AVX-512 BF16).
  if (!winograd_reads(winograd_type(s), stores_[size_t(s.in[0])].dtype)) return false;
  const bool f32 = !bf16_ && !s.int8;
  if (!is_same_3x3(s)) return false;
  const Node& m = *s.node;
  const Shape& ws = shape(m.inputs[1]);
  // The output transform adds one residual, then maybe a ReLU (as TAESD's blocks end); other
  // activations stay with the direct convolution.
  const size_t adds = s.post.size() - (ends_in_relu(s) ? 1 : 0);
  if (adds > 1 || (adds == 1 && s.post[0].eltwise)) return false;
  const Shape& xs = shape(s.src);  // with a fused upsampling: the small image
  // The upsampling one writes the big image straight from its phases: no residual there.
  if (s.upsample2x)
    return s.post.empty() &&
           (s.int8 ? winograd_upsample_int8_pays(xs[0], xs[1], xs[2], ws[1], ws[0], plan_.threads)
            : f32  ? winograd_upsample_f32_pays(xs[0], xs[1], xs[2], ws[1], ws[0], plan_.threads)
                   : winograd_upsample_pays(xs[0], xs[1], xs[2], ws[1], ws[0], plan_.threads));
  if (s.int8) return winograd_int8_pays(xs[0], xs[1], xs[2], ws[1], ws[0], plan_.threads);
  if (f32) return winograd_f32_pays(xs[0], xs[1], xs[2], ws[1], ws[0], plan_.threads);
  return winograd_pays(xs[0], xs[1], xs[2], ws[1], ws[0], plan_.threads);
}

bool Planner::runs_winograd_f4(const Spec& s) const {
  if (!opt_.winograd_f4 || winograd_type(s) != WinogradProducts::Type::F32) return false;
  const Shape& xs = shape(s.src);  // with a fused upsampling: the small image
  const Shape& ws = shape(s.node->inputs[1]);
  return s.upsample2x ? winograd_upsample_f4_pays(xs[0], xs[1], xs[2], ws[1], ws[0], plan_.threads)
                      : winograd_f4_pays(xs[0], xs[1], xs[2], ws[1], ws[0], plan_.threads);
}

std::shared_ptr<WinogradInt8Kernels> Planner::winograd_int8_kernels(
    const Node& wn, const WeightTransform& rows, const memory::desc& packed_md,
    std::shared_ptr<PackedWeight>& packed) {
  const Shape& ws = wn.shape;
  const Int8Weight q = int8_weight(wn.name, wn.weight, nullptr,
                                   memory::desc({rows.rows, ws[1], ws[0]}, dt::s8, tag::acb),
                                   packed_md, memory::desc(), memory::desc(), &rows);
  packed = q.packed;
  return std::make_shared<WinogradInt8Kernels>(
      WinogradInt8Kernels{static_cast<const float*>(q.scales->data()),
                          static_cast<const int32_t*>(q.sums->data()), ws[0]});
}

Planner::Prepared Planner::prepare_winograd_conv(const Spec& s) {
  if (s.upsample2x)
    return s.winograd4 ? prepare_winograd_upsample_f4(s) : prepare_winograd_upsample(s);
  if (s.winograd4) return prepare_winograd_f4(s);
  const Node& m = *s.node;
  const Shape& xs = shape(s.src);
  const Shape& ws = shape(m.inputs[1]);
  auto conv = std::make_shared<WinogradConv>(WinogradConv::Shape{xs[0], xs[1], xs[2], ws[1], ws[0]},
                                             plan_.engine, plan_.threads, winograd_type(s),
                                             stores_[size_t(s.in[0])].dtype);
  const Node& wn = node(m.inputs[1]);
  std::shared_ptr<PackedWeight> w;
  std::shared_ptr<WinogradInt8Kernels> k8;  // int8 only; its arrays are the plan's weights
  if (s.int8) {  // s8 per point and output channel: the rows of winograd_weight_rows
    static const WeightTransform kRows{
        "winograd F(2x2,3x3) point rows", winograd_weight_rows, {}, 16};
    k8 = winograd_int8_kernels(wn, kRows, conv->weights_desc(), w);
  } else {
    static const WeightTransform kTransform{"winograd F(2x2,3x3)", winograd_weights, {}, 1};
    w = packed(wn, memory::desc({16, ws[1], ws[0]}, dt::f32, tag::abc), conv->weights_desc(),
               &kTransform);
  }
  auto b = m.inputs[2] != kNone ? packed_f32(node(m.inputs[2])) : nullptr;
  Prepared p;
  p.scratch = conv->scratch_bytes();
  const Spec* sp = &s;
  const DType yt = stores_[size_t(s.out)].dtype;
  const bool relu = ends_in_relu(s);
  p.bind = [this, sp, conv, w, k8, b, yt, relu]() {
    const void* x = ptr(sp->in[0]);
    void* y = ptr(sp->out);
    WinogradConv::Addend add;
    if (!sp->post.empty() && !sp->post[0].eltwise) {  // a residual summed in place is y's own
      add.data = sp->post[0].sum ? y : ptr(sp->post[0].store);
      add.type = sp->post[0].sum ? yt : stores_[size_t(sp->post[0].store)].dtype;
    }
    const float* bias = b ? static_cast<const float*>(b->data()) : nullptr;
    void* scr = scratch();
    return std::function<void()>([conv, x, w, k8, bias, add, y, yt, scr, relu] {
      conv->run(x, w->data(), bias, add, y, yt, scr, k8.get(), relu);
    });
  };
  return p;
}

Planner::Prepared Planner::prepare_winograd_upsample(const Spec& s) {
  const Node& m = *s.node;
  const Shape& xs = shape(s.src);
  const Shape& ws = shape(m.inputs[1]);
  auto conv = std::make_shared<WinogradUpsampleConv>(
      WinogradUpsampleConv::Shape{xs[0], xs[1], xs[2], ws[1], ws[0]}, plan_.engine, plan_.threads,
      winograd_type(s), stores_[size_t(s.in[0])].dtype);
  const Node& wn = node(m.inputs[1]);
  std::shared_ptr<PackedWeight> w;
  std::shared_ptr<WinogradInt8Kernels> k8;  // int8 only; its arrays are the plan's weights
  if (s.int8) {                             // s8 per phase point and output channel
    static const WeightTransform kRows{
        "winograd F(2x2,2x2) upsample2x phase rows", winograd_upsample_weight_rows, {}, 36};
    k8 = winograd_int8_kernels(wn, kRows, conv->weights_desc(), w);
  } else {
    static const WeightTransform kTransform{
        "winograd F(2x2,2x2) upsample2x phases", winograd_upsample_weights, {}, 1};
    w = packed(wn, memory::desc({36, ws[1], ws[0]}, dt::f32, tag::abc), conv->weights_desc(),
               &kTransform);
  }
  auto b = m.inputs[2] != kNone ? packed_f32(node(m.inputs[2])) : nullptr;
  Prepared p;
  p.scratch = conv->scratch_bytes();
  const Spec* sp = &s;
  const DType yt = stores_[size_t(s.out)].dtype;
  p.bind = [this, sp, conv, w, k8, b, yt]() {
    const void* x = ptr(sp->in[0]);
    void* y = ptr(sp->out);
    const float* bias = b ? static_cast<const float*>(b->data()) : nullptr;
    void* scr = scratch();
    return std::function<void()>([conv, x, w, k8, bias, y, yt, scr] {
      conv->run(x, w->data(), bias, y, yt, scr, k8.get());
    });
  };
  return p;
}

Planner::Prepared Planner::prepare_winograd_f4(const Spec& s) {
  const Node& m = *s.node;
  const Shape& xs = shape(s.src);
  const Shape& ws = shape(m.inputs[1]);
  auto conv = std::make_shared<WinogradF4Conv>(
      WinogradF4Conv::Shape{xs[0], xs[1], xs[2], ws[1], ws[0]}, plan_.engine, plan_.threads);
  static const WeightTransform kTransform{"winograd F(4x4,3x3)", winograd_f4_weights, {}, 1};
  auto w = packed(node(m.inputs[1]), memory::desc({36, ws[1], ws[0]}, dt::f32, tag::abc),
                  conv->weights_desc(), &kTransform);
  auto b = m.inputs[2] != kNone ? packed_f32(node(m.inputs[2])) : nullptr;
  Prepared p;
  p.scratch = conv->scratch_bytes();
  const Spec* sp = &s;
  const bool relu = ends_in_relu(s);
  p.bind = [this, sp, conv, w, b, relu]() {
    const auto* x = static_cast<const float*>(ptr(sp->in[0]));
    auto* y = static_cast<float*>(ptr(sp->out));
    const float* add = nullptr;  // a residual summed in place is y's own
    if (!sp->post.empty() && !sp->post[0].eltwise)
      add = sp->post[0].sum ? y : static_cast<const float*>(ptr(sp->post[0].store));
    const float* bias = b ? static_cast<const float*>(b->data()) : nullptr;
    void* scr = scratch();
    return std::function<void()>([conv, x, w, bias, add, y, scr, relu] {
      conv->run(x, w->data(), bias, add, y, scr, relu);
    });
  };
  return p;
}

Planner::Prepared Planner::prepare_winograd_upsample_f4(const Spec& s) {
  const Node& m = *s.node;
  const Shape& xs = shape(s.src);
  const Shape& ws = shape(m.inputs[1]);
  auto conv = std::make_shared<WinogradUpsampleF4Conv>(
      WinogradUpsampleF4Conv::Shape{xs[0], xs[1], xs[2], ws[1], ws[0]}, plan_.engine,
      plan_.threads);
  static const WeightTransform kTransform{
      "winograd F(4x4,2x2) upsample2x phases", winograd_upsample_f4_weights, {}, 1};
  auto w = packed(node(m.inputs[1]),
                  memory::desc({4 * kWinogradUpsampleF4Points, ws[1], ws[0]}, dt::f32, tag::abc),
                  conv->weights_desc(), &kTransform);
  auto b = m.inputs[2] != kNone ? packed_f32(node(m.inputs[2])) : nullptr;
  Prepared p;
  p.scratch = conv->scratch_bytes();
  const Spec* sp = &s;
  p.bind = [this, sp, conv, w, b]() {
    const auto* x = static_cast<const float*>(ptr(sp->in[0]));
    auto* y = static_cast<float*>(ptr(sp->out));
    const float* bias = b ? static_cast<const float*>(b->data()) : nullptr;
    void* scr = scratch();
    return std::function<void()>(
        [conv, x, w, bias, y, scr] { conv->run(x, w->data(), bias, y, scr); });
  };
  return p;
}

}  // namespace sdc::cpu::detail
