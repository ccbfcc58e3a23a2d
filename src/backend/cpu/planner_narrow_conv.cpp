// The planner's few-output-channel convolution steps (narrow_conv.h): which convolutions take
// them — the decoders' last layer over bf16 or f32 activations — and the step that runs one with
// its taps packed once in the activations' type.
#include "backend/cpu/narrow_conv.h"
#include "backend/cpu/planner.h"

namespace sdc::cpu::detail {

bool Planner::runs_narrow_conv(const Spec& s) const {
  if (s.int8 || s.upsample2x || !s.post.empty()) return false;
  // (The output's store, F32 or BF16 in a float plan, is chosen later.)
  if (!is_same_3x3(s)) return false;
  const Shape& ws = shape(s.node->inputs[1]);
  return narrow_conv_pays(ws[1], ws[0], stores_[size_t(s.in[0])].dtype);
}

Planner::Prepared Planner::prepare_narrow_conv(const Spec& s) {
  const Node& m = *s.node;
  const Shape& xs = shape(s.src);
  const Shape& ws = shape(m.inputs[1]);
  static const WeightTransform kTaps{"narrow 3x3 taps", narrow_conv_taps, {}, 1};
  const DType xt = stores_[size_t(s.in[0])].dtype;
  auto w = packed(node(m.inputs[1]), memory::desc({9, ws[0], ws[1]}, dt::f32, tag::abc),
                  memory::desc({9, ws[0], ws[1]}, xt == DType::BF16 ? dt::bf16 : dt::f32, tag::abc),
                  &kTaps);
  auto b = m.inputs[2] != kNone ? packed_f32(node(m.inputs[2])) : nullptr;
  Prepared p;
  const Spec* sp = &s;
  const DType yt = stores_[size_t(s.out)].dtype;
  const int threads = plan_.threads;
  const int64_t N = xs[0], H = xs[1], W = xs[2], Ci = ws[1], Co = ws[0];
  p.bind = [this, sp, w, b, xt, yt, threads, N, H, W, Ci, Co]() {
    const void* x = ptr(sp->in[0]);
    void* y = ptr(sp->out);
    const void* taps = w->data();
    const float* bias = b ? static_cast<const float*>(b->data()) : nullptr;
    return std::function<void()>([x, xt, taps, bias, y, yt, threads, N, H, W, Ci, Co] {
      narrow_conv3x3(x, xt, taps, bias, N, H, W, Ci, Co, y, yt, threads);
    });
  };
  return p;
}

}  // namespace sdc::cpu::detail
