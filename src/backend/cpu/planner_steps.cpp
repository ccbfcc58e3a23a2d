// The planner's step builders: oneDNN convolution/matmul primitives with their post-ops and
// packed weights (through the shared WeightCache), and the closures that run the own kernels,
// bound to arena/input/weight pointers once the memory plan is known.
#include <algorithm>
#include <optional>
#include <string_view>

#include "backend/cpu/attention.h"
#include "backend/cpu/dnnl_util.h"
#include "backend/cpu/int8_gemm.h"
#include "backend/cpu/planner.h"
#include "backend/cpu/prepacked_weights.h"
#include "backend/cpu/upsample_conv.h"

namespace sdc::cpu::detail {

AttentionShape Planner::attention_shape(const Node& m, const Spec& s) const {
  AttentionShape as;
  as.N = shape(m.inputs[0])[0];
  as.Tq = shape(m.inputs[0])[1];
  as.Tk = shape(m.inputs[1])[1];
  as.C = shape(m.inputs[0])[2];
  as.heads = m.attrs.heads;
  as.causal = m.attrs.causal;
  as.in = stores_[size_t(s.in[0])].dtype;
  as.out = s.out >= 0 ? stores_[size_t(s.out)].dtype : DType::F32;
  as.int8 = s.int8;
  return as;
}

void* Planner::ptr(int st) const {
  if (st < 0) return nullptr;
  int r = st;
  while (stores_[size_t(r)].parent >= 0) r = stores_[size_t(r)].parent;
  const Store& x = stores_[size_t(r)];
  switch (x.kind) {
    case Store::Input:
      return plan_.inputs_[size_t(x.input)].buf->data();
    case Store::Weight:
      return x.weight->data();
    case Store::Held:
      return static_cast<uint8_t*>(plan_.held_->data()) + x.held_offset;
    default:
      return static_cast<uint8_t*>(plan_.arena_->data()) + offsets_[size_t(x.buffer)];
  }
}

memory::desc Planner::operand_md(const memory::desc& f32_md, int store) const {
  const dt t = dnnl_dt(stores_[size_t(store)].dtype);
  if (t == dt::f32) return f32_md;
  const auto& blocking = f32_md.data.format_desc.blocking;
  return memory::desc(f32_md.dims(), t,
                      memory::dims(blocking.strides, blocking.strides + f32_md.data.ndims));
}

dnnl::post_ops Planner::make_post_ops(const Spec& s, const memory::desc& dst_f32,
                                      const memory::desc* int8_scale) const {
  dnnl::post_ops po;
  if (int8_scale) append_int8_rescale(po, *int8_scale);
  for (const PostOp& p : s.post) {
    if (p.eltwise)
      po.append_eltwise(1.f, p.alg, p.alpha, p.beta);
    else if (p.sum)
      po.append_sum(1.f);
    else
      po.append_binary(dnnl::algorithm::binary_add, operand_md(dst_f32, p.store));
  }
  return po;
}

std::shared_ptr<PackedWeight> Planner::packed(const Node& w, const memory::desc& src_md,
                                              const memory::desc& dst_md,
                                              const WeightTransform* transform) {
  const TensorRef& t = w.weight;
  if (!is_float(t.dtype)) fail(w, "a float weight", std::string(dtype_name(t.dtype)));
  auto p = dnnl_weight(
      w.name, t,
      "dnnl " + WeightTransform::prefix(transform) + std::string(dtype_name(t.dtype)) +
          shape_str(t.shape) + " " + md_key(dst_md),
      dst_md.get_size(), [&] {
        return pack_weight(transform ? transform->weight(t) : t, src_md, dst_md, plan_.engine);
      });
  plan_.weights_.push_back(p);
  return p;
}

std::shared_ptr<PackedWeight> Planner::dnnl_weight(const std::string& key, const TensorRef& t,
                                                   const std::string& format, size_t packed_bytes,
                                                   const WeightCache::Maker& make,
                                                   std::optional<uint64_t>* hash) {
  PrepackedWeights& pre = PrepackedWeights::global();
  std::shared_ptr<PackedWeight> p = pre.find(key, format, t);
  if (!p || p->bytes() != packed_bytes) p = WeightCache::global().get(t, format, make, hash);
  pre.record(key, format, p);
  return p;
}

std::shared_ptr<PackedWeight> Planner::f32_weight(const std::string& key, const TensorRef& t,
                                                  const WeightTransform* transform) {
  const size_t bytes = size_t(t.numel()) * sizeof(float) * size_t(transform ? transform->rows : 1);
  return dnnl_weight(key, t, WeightTransform::prefix(transform) + f32_format(t), bytes,
                     [&] { return pack_f32(transform ? transform->bias(t) : t); });
}

std::shared_ptr<PackedWeight> Planner::packed_f32(const Node& w, const WeightTransform* transform) {
  auto p = f32_weight(w.name, w.weight, transform);
  plan_.weights_.push_back(p);
  return p;
}

Planner::Prepared Planner::dnnl_step(const Spec& s, dnnl::primitive prim,
                                     const memory::desc& src_md, const memory::desc& w_md,
                                     std::shared_ptr<PackedWeight> w, const memory::desc& b_md,
                                     std::shared_ptr<PackedWeight> b, const memory::desc& dst_md,
                                     const memory::desc& post_md, const memory::desc& pad_md,
                                     const Int8Weight* int8, int64_t images) {
  Prepared p;
  const int64_t codes = int8 ? int8_codes_layout(s).codes() : 0;
  const int64_t channels = int8 ? int64_t(int8->scales->bytes() / sizeof(float)) : 0;
  const Int8Scratch q = int8_scratch(pad_md.get_size(), s.shared_codes < 0 ? codes : 0, channels);
  if (int8) note_min_input_scale(s, int8->min_input_scale);
  p.scratch = int8 ? q.end : pad_md.get_size();
  const Spec* sp = &s;
  const std::optional<Int8Weight> i8 = int8 ? std::optional<Int8Weight>(*int8) : std::nullopt;
  p.bind = [this, sp, prim, src_md, w_md, w, b_md, b, dst_md, post_md, pad_md, i8, q, images]() {
    auto args = std::make_shared<std::unordered_map<int, memory>>();
    const dnnl::engine& e = plan_.engine;
    uint8_t* scr = static_cast<uint8_t*>(scratch());
    const Int8Input in = i8 ? int8_input(*sp, q, i8->min_input_scale) : Int8Input{};
    (*args)[DNNL_ARG_SRC] = memory(src_md, e, i8 ? in.q : ptr(sp->in[0]));
    (*args)[DNNL_ARG_WEIGHTS] = memory(w_md, e, w->data());
    if (b) (*args)[DNNL_ARG_BIAS] = memory(b_md, e, b->data());
    (*args)[DNNL_ARG_DST] = memory(dst_md, e, ptr(sp->upsample2x ? sp->tmp : sp->out));
    (*args)[DNNL_ARG_SCRATCHPAD] = memory(pad_md, e, scr);
    // index of the spec's first post-op in the primitive's chain
    const int first = i8 ? bind_int8_operands(*args, *i8, scr + q.scales, scr + q.bias) : 0;
    for (size_t k = 0; k < sp->post.size(); ++k)
      if (!sp->post[k].eltwise && !sp->post[k].sum)
        (*args)[DNNL_ARG_ATTR_MULTIPLE_POST_OP(first + int(k)) | DNNL_ARG_SRC_1] =
            memory(operand_md(post_md, sp->post[k].store), e, ptr(sp->post[k].store));
    dnnl::stream* stream = &plan_.stream;
    if (images > 1) {  // f32 only: the primitive covers one image; src, dst and operands move on
      struct Moving {
        memory m;
        uint8_t* base;
        size_t bytes;
      };
      std::vector<Moving> moving;
      for (auto& [arg, m] : *args)
        if (arg == DNNL_ARG_SRC || arg == DNNL_ARG_DST ||
            ((arg & DNNL_ARG_SRC_1) && m.get_desc().dims() == dst_md.dims()))
          moving.push_back(
              {m, static_cast<uint8_t*>(m.get_data_handle()), m.get_desc().get_size()});
      return std::function<void()>([prim, args, stream, moving, images] {
        for (int64_t n = 0; n < images; ++n) {
          for (const Moving& v : moving)
            const_cast<memory&>(v.m).set_data_handle(v.base + size_t(n) * v.bytes);
          prim.execute(*stream, *args);
        }
        stream->wait();
      });
    }
    if (!i8)
      return std::function<void()>([prim, args, stream] {
        prim.execute(*stream, *args);
        stream->wait();
      });
    float* scale = reinterpret_cast<float*>(scr + q.scales);
    int32_t* bias = reinterpret_cast<int32_t*>(scr + q.bias);
    const Int8Weight& w = *i8;
    return std::function<void()>([=] {
      int8_channel_operands(in.quantize(), w, scale, bias);
      prim.execute(*stream, *args);
      stream->wait();
    });
  };
  return p;
}

Planner::Prepared Planner::prepare_conv(const Spec& s) {
  if (s.winograd) return prepare_winograd_conv(s);
  if (s.narrow) return prepare_narrow_conv(s);
  const Node& m = *s.node;
  const Shape& xs = shape(s.src);
  // A fused 2x upsampling runs the four output phases as one 2x2 convolution with 4x the output
  // channels over the small image padded by 1, into tmp; the interleave then fills the output.
  static const WeightTransform kPhases{"upsample2x phases", upsample_phase_weights,
                                       upsample_phase_bias, 4};
  const WeightTransform* phases = s.upsample2x ? &kPhases : nullptr;
  const Shape& ws0 = shape(m.inputs[1]);
  const Shape ws = phases ? Shape{4 * ws0[0], ws0[1], 2, 2} : ws0;
  const Shape ys = phases ? Shape{xs[0], xs[1] + 1, xs[2] + 1, ws[0]} : m.shape;
  graph::Attrs a = m.attrs;
  if (phases) a.stride = 1, a.pad_top = a.pad_left = a.pad_bottom = a.pad_right = 1;
  const DType src_t = stores_[size_t(s.in[0])].dtype, dst_t = stores_[size_t(s.out)].dtype;
  const dt in_t = s.int8 ? dt::u8 : dnnl_dt(src_t), w_t = s.int8 ? dt::s8 : in_t;
  // W8A8 reads codes already framed by their padding (int8_codes_layout) and pads nothing.
  memory::dims src_dims{xs[0], xs[3], xs[1], xs[2]};
  if (s.int8) {
    const PaddedImages g = int8_codes_layout(s);
    src_dims = {g.N, g.C, g.top + g.H + g.bottom, g.left + g.W + g.right};
    a.pad_top = a.pad_left = a.pad_bottom = a.pad_right = 0;
  }
  const memory::desc src_md(src_dims, in_t, tag::nhwc);
  const memory::desc w_any({ws[0], ws[1], ws[2], ws[3]}, w_t, tag::any);
  const memory::desc dst_md({ys[0], ys[3], ys[1], ys[2]}, dnnl_dt(dst_t), tag::nhwc);
  const memory::desc post_md({ys[0], ys[3], ys[1], ys[2]}, dt::f32, tag::nhwc);
  const memory::desc channel_md({1, ws[0], 1, 1}, dt::f32, tag::nchw);
  const bool has_bias = m.inputs[2] != kNone;
  // W8A8 adds the bias to the s32 sums, in their units, before the rescale; it always has one
  // (the input's zero point goes there).
  const memory::desc b_md = s.int8     ? memory::desc({ws[0]}, dt::s32, tag::a)
                            : has_bias ? memory::desc({ws[0]}, dt::f32, tag::a)
                                       : memory::desc();
  const dnnl::convolution_forward::desc d(
      dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src_md, w_any, b_md,
      dst_md, {a.stride, a.stride}, {a.pad_top, a.pad_left}, {a.pad_bottom, a.pad_right});
  auto make_pd = [&](bool output_scales) {
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    if (output_scales) set_int8_output_scales(attr);
    // With phases only elementwise post-ops come here (fusable_upsample): they commute with the
    // interleave.
    attr.set_post_ops(make_post_ops(s, post_md, s.int8 && !output_scales ? &channel_md : nullptr));
    return dnnl::convolution_forward::primitive_desc(d, attr, plan_.engine);
  };
  bool output_scales = false;
  const dnnl::convolution_forward::primitive_desc pd =
      s.int8 ? int8_primitive_desc(make_pd, output_scales) : make_pd(false);
  note_impl(s, pd.impl_info_str());
  const Node& wn = node(m.inputs[1]);
  Prepared p;
  if (s.int8) {
    Int8Weight q = int8_weight(wn.name, wn.weight, has_bias ? &node(m.inputs[2]).weight : nullptr,
                               memory::desc({ws[0], ws[1], ws[2], ws[3]}, dt::s8, tag::oihw),
                               pd.weights_desc(), channel_md, b_md, phases);
    q.output_scales = output_scales;
    p = dnnl_step(s, dnnl::convolution_forward(pd), src_md, pd.weights_desc(), q.packed,
                  memory::desc(), nullptr, dst_md, post_md, pd.scratchpad_desc(), &q);
  } else {
    auto w = packed(wn, memory::desc({ws[0], ws[1], ws[2], ws[3]}, dt::f32, tag::oihw),
                    pd.weights_desc(), phases);
    auto b = has_bias ? packed_f32(node(m.inputs[2]), phases) : nullptr;
    p = dnnl_step(s, dnnl::convolution_forward(pd), src_md, pd.weights_desc(), w, b_md, b, dst_md,
                  post_md, pd.scratchpad_desc());
  }
  if (!phases) return p;
  const Spec* sp = &s;
  const int64_t N = xs[0], H = xs[1], W = xs[2], Co = ws0[0];
  auto conv = p.bind;
  p.bind = [this, sp, conv, N, H, W, Co, dst_t]() {
    std::function<void()> run = conv();
    const void* t = ptr(sp->tmp);
    void* y = ptr(sp->out);
    return std::function<void()>([run, t, y, dst_t, N, H, W, Co] {
      run();
      interleave_upsample_phases(t, y, dst_t, N, H, W, Co);
    });
  };
  return p;
}

int64_t Planner::matmul_images(const Spec& s, const dnnl::matmul::primitive_desc& pd) const {
  const Shape& shape = s.node->shape;
  if (s.int8 || bf16_ || shape.size() < 2 || shape[0] < 2) return 1;
  return std::string_view(pd.impl_info_str()).starts_with("gemm") ? shape[0] : 1;
}

Planner::Prepared Planner::prepare_linear(const Spec& s) {
  const Node& m = *s.node;
  const Shape& ws = shape(m.inputs[1]);
  const int64_t K = ws[1], Nc = ws[0];
  int64_t M = shape_numel(m.shape) / Nc;
  if (runs_row_gemm(s)) return prepare_row_gemm(s);
  const DType src_t = stores_[size_t(s.in[0])].dtype, dst_t = stores_[size_t(s.out)].dtype;
  const dt in_t = s.int8 ? dt::u8 : dnnl_dt(src_t), w_t = s.int8 ? dt::s8 : in_t;
  const memory::desc w_any({K, Nc}, w_t, tag::any);
  const memory::desc channel_md({1, Nc}, dt::f32, tag::ab);
  const bool has_bias = m.inputs[2] != kNone;
  const memory::desc b_md = s.int8     ? memory::desc({1, Nc}, dt::s32, tag::ab)
                            : has_bias ? memory::desc({1, Nc}, dt::f32, tag::ab)
                                       : memory::desc();
  auto make_pd = [&](int64_t rows, bool output_scales) {
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    if (output_scales) set_int8_output_scales(attr);
    attr.set_post_ops(make_post_ops(s, memory::desc({rows, Nc}, dt::f32, tag::ab),
                                    s.int8 && !output_scales ? &channel_md : nullptr));
    return dnnl::matmul::primitive_desc(
        dnnl::matmul::desc(memory::desc({rows, K}, in_t, tag::ab), w_any, b_md,
                           memory::desc({rows, Nc}, dnnl_dt(dst_t), tag::ab)),
        attr, plan_.engine);
  };
  bool output_scales = false;
  dnnl::matmul::primitive_desc pd =
      s.int8 ? int8_primitive_desc([&](bool os) { return make_pd(M, os); }, output_scales)
             : make_pd(M, false);
  const int64_t images = matmul_images(s, pd);  // f32 only
  if (images > 1) pd = make_pd(M /= images, false);
  note_impl(s, pd.impl_info_str());
  const memory::desc src_md({M, K}, in_t, tag::ab);
  const memory::desc dst_md({M, Nc}, dnnl_dt(dst_t), tag::ab);
  const memory::desc post_md({M, Nc}, dt::f32, tag::ab);
  const Node& wn = node(m.inputs[1]);
  if (s.int8) {
    Int8Weight q =
        int8_weight(wn.name, wn.weight, has_bias ? &node(m.inputs[2]).weight : nullptr,
                    memory::desc({K, Nc}, dt::s8, tag::ba), pd.weights_desc(), channel_md, b_md);
    q.output_scales = output_scales;
    return dnnl_step(s, dnnl::matmul(pd), src_md, pd.weights_desc(), q.packed, memory::desc(),
                     nullptr, dst_md, post_md, pd.scratchpad_desc(), &q);
  }
  auto w = packed(wn, memory::desc({K, Nc}, dt::f32, tag::ba), pd.weights_desc());
  auto b = has_bias ? packed_f32(node(m.inputs[2])) : nullptr;
  return dnnl_step(s, dnnl::matmul(pd), src_md, pd.weights_desc(), w, b_md, b, dst_md, post_md,
                   pd.scratchpad_desc(), nullptr, images);
}

Planner::Prepared Planner::prepare_row_gemm(const Spec& s) {
  const Node& m = *s.node;
  const Node& wn = node(m.inputs[1]);
  // Named copies, not a structured binding: lambdas below capture them (C++20; clang 14 refuses).
  const int64_t M = linear_rows(s).first, K = linear_rows(s).second;
  const bool geglu = s.kind == SK::LinearGeglu;
  // GEGLU (PyTorch's): value = the first half of the projection's rows, gate = the second.
  const int64_t Nc = shape(m.inputs[1])[0] / (geglu ? 2 : 1);
  const bool has_bias = m.inputs[2] != kNone;
  // The values in the layout oneDNN's int8 matmul packs them in for these shapes (int8_gemm.h),
  // under the same names (GEGLU's halves as prepare_linear_geglu names them), so a compiled
  // file's packed weights serve both.
  auto weight = [&](int64_t r0) {
    const TensorRef bias = has_bias ? rows_of(node(m.inputs[2]).weight, r0, Nc) : TensorRef{};
    const std::string name = geglu ? rows_name(wn.name, r0, Nc) : wn.name;
    return int8_weight(
        name, geglu ? rows_of(wn.weight, r0, Nc) : wn.weight, has_bias ? &bias : nullptr,
        memory::desc({K, Nc}, dt::s8, tag::ba), memory::desc({K, Nc}, dt::s8, tag::BA16a64b4a),
        memory::desc({1, Nc}, dt::f32, tag::ab), memory::desc({1, Nc}, dt::s32, tag::ab));
  };
  const Int8Weight w = weight(0), gate = geglu ? weight(Nc) : Int8Weight{};
  Prepared p;
  p.scratch = s.shared_codes < 0 ? row_codes_bytes(M, K) : 0;
  const Spec* sp = &s;
  p.bind = [this, sp, w, gate, geglu, M, K, Nc]() {
    const RowCodes codes =
        row_codes_in(sp->shared_codes < 0 ? scratch() : ptr(sp->shared_codes), M, K);
    const bool quantises = !sp->reuses_codes;
    const void* x = ptr(sp->in[0]);
    const DType xt = stores_[size_t(sp->in[0])].dtype;
    auto operands = [K, Nc](const Int8Weight& iw) {
      Int8GemmWeights gw;
      gw.values = static_cast<const int8_t*>(iw.packed->data());
      gw.scales = static_cast<const float*>(iw.scales->data());
      gw.sums = static_cast<const int32_t*>(iw.sums->data());
      gw.bias = iw.bias ? static_cast<const float*>(iw.bias->data()) : nullptr;
      gw.K = K;
      gw.N = Nc;
      return gw;
    };
    const Int8GemmWeights gw = operands(w), gg = geglu ? operands(gate) : Int8GemmWeights{};
    Int8GemmOutput out;
    out.y = ptr(sp->out);
    out.type = stores_[size_t(sp->out)].dtype;
    if (!sp->post.empty() && sp->post[0].sum) {
      out.residual = GemmResidual::Sum;
    } else if (!sp->post.empty()) {
      out.residual = GemmResidual::Add;
      out.addend = ptr(sp->post[0].store);
      out.addend_type = stores_[size_t(sp->post[0].store)].dtype;
    }
    return std::function<void()>([=] {
      if (quantises) quantise_rows(x, xt, M, K, codes);
      if (geglu)
        int8_gemm_geglu(codes, M, gw, gg, out);
      else
        int8_gemm(codes, M, gw, out);
    });
  };
  return p;
}

std::string Planner::rows_name(const std::string& name, int64_t r0, int64_t rows) {
  return name + "[" + std::to_string(r0) + ":" + std::to_string(r0 + rows) + "]";
}

TensorRef Planner::rows_of(const TensorRef& t, int64_t r0, int64_t rows) {
  TensorRef part = t;
  const int64_t row = t.numel() / t.shape[0];
  part.shape = t.shape.size() == 1 ? Shape{rows} : Shape{rows, row};
  part.data = static_cast<const uint8_t*>(t.data) + size_t(r0 * row) * dtype_size(t.dtype);
  part.nbytes = size_t(rows * row) * dtype_size(t.dtype);
  return part;
}

Planner::Prepared Planner::prepare_linear_geglu(const Spec& s) {
  if (runs_row_gemm(s)) return prepare_row_gemm(s);
  const Node& m = *s.node;
  const Node& wn = node(m.inputs[1]);
  const Shape& ws = wn.shape;
  const int64_t K = ws[1], D = ws[0] / 2;
  int64_t M = shape_numel(m.shape) / ws[0];
  if (!is_float(wn.weight.dtype))
    fail(wn, "a float weight", std::string(dtype_name(wn.weight.dtype)));
  const DType src_t = stores_[size_t(s.in[0])].dtype, dst_t = stores_[size_t(s.out)].dtype;
  const dt in_t = s.int8 ? dt::u8 : dnnl_dt(src_t), w_t = s.int8 ? dt::s8 : in_t;
  // Rows per matmul: all of them, or one image's where matmul_images says so (f32 GEMM).
  const int64_t images =
      matmul_images(s, dnnl::matmul::primitive_desc(
                           dnnl::matmul::desc(memory::desc({M, K}, in_t, tag::ab),
                                              memory::desc({K, D}, w_t, tag::any),
                                              memory::desc({M, D}, dnnl_dt(dst_t), tag::ab)),
                           plan_.engine));
  M /= images;
  const memory::desc src_md({M, K}, in_t, tag::ab);
  const memory::desc w_any({K, D}, w_t, tag::any);
  const memory::desc g_md({M, D}, dnnl_dt(stores_[size_t(s.tmp)].dtype), tag::ab);
  const memory::desc dst_md({M, D}, dnnl_dt(dst_t), tag::ab);
  const memory::desc channel_md({1, D}, dt::f32, tag::ab);
  const bool has_bias = m.inputs[2] != kNone;
  const memory::desc b_md = s.int8     ? memory::desc({1, D}, dt::s32, tag::ab)
                            : has_bias ? memory::desc({1, D}, dt::f32, tag::ab)
                                       : memory::desc();
  // W8A8: both halves first rescale their s32 sums, bias included (post-op 0, or output scales:
  // int8_primitive_desc).
  auto attr_with = [&](dnnl::algorithm alg, const memory::desc& operand, bool output_scales) {
    dnnl::post_ops po;
    if (s.int8 && !output_scales) append_int8_rescale(po, channel_md);
    if (alg == dnnl::algorithm::eltwise_gelu_erf)
      po.append_eltwise(1.f, alg, 0.f, 0.f);
    else
      po.append_binary(alg, operand);
    dnnl::primitive_attr attr;
    if (output_scales) set_int8_output_scales(attr);
    attr.set_post_ops(po);
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    return attr;
  };
  auto make_gate = [&](bool os) {
    return dnnl::matmul::primitive_desc(
        dnnl::matmul::desc(src_md, w_any, b_md, g_md),
        attr_with(dnnl::algorithm::eltwise_gelu_erf, memory::desc(), os), plan_.engine);
  };
  auto make_value = [&](bool os) {
    return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src_md, w_any, b_md, dst_md),
                                        attr_with(dnnl::algorithm::binary_mul, g_md, os),
                                        plan_.engine);
  };
  bool gate_scales = false, value_scales = false;
  const dnnl::matmul::primitive_desc gate_pd =
      s.int8 ? int8_primitive_desc(make_gate, gate_scales) : make_gate(false);
  const dnnl::matmul::primitive_desc value_pd =
      s.int8 ? int8_primitive_desc(make_value, value_scales) : make_value(false);
  note_impl(s, gate_pd.impl_info_str());
  note_impl(s, value_pd.impl_info_str());
  // PyTorch's GEGLU: value = first half of the projection, gate = second half.
  auto half_name = [&](int64_t r0) { return rows_name(wn.name, r0, D); };
  auto pack_half = [&](const dnnl::matmul::primitive_desc& pd, int64_t r0) {
    const TensorRef part = rows_of(wn.weight, r0, D);
    auto p = dnnl_weight(half_name(r0), part,
                         "dnnl " + std::string(dtype_name(part.dtype)) + shape_str(part.shape) +
                             " " + md_key(pd.weights_desc()),
                         pd.weights_desc().get_size(), [&] {
                           return pack_weight(part, memory::desc({K, D}, dt::f32, tag::ba),
                                              pd.weights_desc(), plan_.engine);
                         });
    plan_.weights_.push_back(p);
    return p;
  };
  auto bias_half = [&](int64_t r0) -> std::shared_ptr<PackedWeight> {
    if (!has_bias) return nullptr;
    const TensorRef part = rows_of(node(m.inputs[2]).weight, r0, D);
    auto p = f32_weight(half_name(r0) + " bias", part);
    plan_.weights_.push_back(p);
    return p;
  };
  auto int8_half = [&](const dnnl::matmul::primitive_desc& pd, int64_t r0) {
    const TensorRef part = rows_of(wn.weight, r0, D);
    const TensorRef bias = has_bias ? rows_of(node(m.inputs[2]).weight, r0, D) : TensorRef{};
    return int8_weight(half_name(r0), part, has_bias ? &bias : nullptr,
                       memory::desc({K, D}, dt::s8, tag::ba), pd.weights_desc(), channel_md, b_md);
  };
  Int8Weight q_value, q_gate;
  float min_scale = 0.f;  // the input's scale floor for both halves' biases
  std::shared_ptr<PackedWeight> w_value, w_gate, b_value, b_gate;
  if (s.int8) {
    q_value = int8_half(value_pd, 0);
    q_gate = int8_half(gate_pd, D);
    q_value.output_scales = value_scales;
    q_gate.output_scales = gate_scales;
    min_scale = std::max(q_value.min_input_scale, q_gate.min_input_scale);
    note_min_input_scale(s, min_scale);
    w_value = q_value.packed;
    w_gate = q_gate.packed;
  } else {
    w_value = pack_half(value_pd, 0);
    w_gate = pack_half(gate_pd, D);
    b_value = bias_half(0);
    b_gate = bias_half(D);
  }
  const size_t pad =
      std::max(gate_pd.scratchpad_desc().get_size(), value_pd.scratchpad_desc().get_size());
  // W8A8 scratch: the u8 input, shared by both halves, the gate's and the value's scales and
  // s32 biases.
  const Int8Scratch q =
      int8_scratch(pad, s.int8 && s.shared_codes < 0 ? M * K : 0, s.int8 ? 2 * D : 0);
  Prepared p;
  p.scratch = s.int8 ? q.end : pad;
  const Spec* sp = &s;
  const dnnl::primitive gate_prim = dnnl::matmul(gate_pd), value_prim = dnnl::matmul(value_pd);
  const bool int8 = s.int8;
  p.bind = [=, this]() {
    const dnnl::engine& e = plan_.engine;
    uint8_t* scr = static_cast<uint8_t*>(scratch());
    auto gate_args = std::make_shared<std::unordered_map<int, memory>>();
    auto value_args = std::make_shared<std::unordered_map<int, memory>>();
    const Int8Input in = int8 ? int8_input(*sp, q, min_scale) : Int8Input{};
    const memory src(src_md, e, int8 ? in.q : ptr(sp->in[0])), g(g_md, e, ptr(sp->tmp));
    float* scale = reinterpret_cast<float*>(scr + q.scales);
    int32_t* bias = reinterpret_cast<int32_t*>(scr + q.bias);
    (*gate_args)[DNNL_ARG_SRC] = src;
    (*gate_args)[DNNL_ARG_WEIGHTS] = memory(gate_pd.weights_desc(), e, w_gate->data());
    (*gate_args)[DNNL_ARG_DST] = g;
    (*gate_args)[DNNL_ARG_SCRATCHPAD] = memory(gate_pd.scratchpad_desc(), e, scr);
    (*value_args)[DNNL_ARG_SRC] = src;
    (*value_args)[DNNL_ARG_WEIGHTS] = memory(value_pd.weights_desc(), e, w_value->data());
    (*value_args)[DNNL_ARG_DST] = memory(dst_md, e, ptr(sp->out));
    (*value_args)[DNNL_ARG_SCRATCHPAD] = memory(value_pd.scratchpad_desc(), e, scr);
    int first = 0;  // the value half's own post-op (× GELU(gate)) after any W8A8 ones
    if (int8) {
      bind_int8_operands(*gate_args, q_gate, scale, bias);
      first = bind_int8_operands(*value_args, q_value, scale + D, bias + D);
    } else if (b_gate) {
      (*gate_args)[DNNL_ARG_BIAS] = memory(b_md, e, b_gate->data());
      (*value_args)[DNNL_ARG_BIAS] = memory(b_md, e, b_value->data());
    }
    (*value_args)[DNNL_ARG_ATTR_MULTIPLE_POST_OP(first) | DNNL_ARG_SRC_1] = g;
    dnnl::stream* stream = &plan_.stream;
    if (images > 1) {  // f32 only: one image's rows at a time
      auto* x = static_cast<uint8_t*>(ptr(sp->in[0]));
      auto* gv = static_cast<uint8_t*>(ptr(sp->tmp));
      auto* y = static_cast<uint8_t*>(ptr(sp->out));
      const memory dst = value_args->at(DNNL_ARG_DST);
      return std::function<void()>([=] {
        for (int64_t n = 0; n < images; ++n) {
          const_cast<memory&>(src).set_data_handle(x + size_t(n) * src_md.get_size());
          const_cast<memory&>(g).set_data_handle(gv + size_t(n) * g_md.get_size());
          const_cast<memory&>(dst).set_data_handle(y + size_t(n) * dst_md.get_size());
          gate_prim.execute(*stream, *gate_args);
          value_prim.execute(*stream, *value_args);
        }
        stream->wait();
      });
    }
    auto run = [gate_prim, value_prim, gate_args, value_args, stream] {
      gate_prim.execute(*stream, *gate_args);
      value_prim.execute(*stream, *value_args);
      stream->wait();
    };
    if (!int8) return std::function<void()>(run);
    return std::function<void()>([=] {
      const ActivationScale a = in.quantize();
      int8_channel_operands(a, q_gate, scale, bias);
      int8_channel_operands(a, q_value, scale + D, bias + D);
      run();
    });
  };
  return p;
}

Planner::Prepared Planner::prepare(const Spec& s) {
  const Spec* sp = &s;
  auto P = [this](int st) { return ptr(st); };
  auto F = [this](int st) { return static_cast<float*>(ptr(st)); };
  auto DT = [this](int st) { return stores_[size_t(st)].dtype; };
  switch (s.kind) {
    case SK::Conv:
      return prepare_conv(s);
    case SK::Linear:
      return prepare_linear(s);
    case SK::LinearGeglu:
      return prepare_linear_geglu(s);
    case SK::GroupNorm: {
      const Node& m = *s.node;
      const Shape& xs = m.shape;
      const int64_t N = xs[0], C = xs.back(), Pn = shape_numel(xs) / (N * C);
      const size_t index = plan_.group_norm_sizes_.size();  // run order: specs are in it
      plan_.group_norm_sizes_.push_back(size_t(N * m.attrs.groups));
      return simple(group_norm_scratch_bytes(N, C, plan_.threads), [=, this]() {
        const void* x = P(sp->in[0]);
        const DType xt = DT(sp->in[0]);
        const float *add = F(sp->in[1]), *ga = F(sp->in[2]), *be = F(sp->in[3]);
        void* y = P(sp->out);
        const DType yt = DT(sp->out);
        void* scr = scratch();
        const int64_t G = m.attrs.groups;
        const float eps = m.attrs.eps;
        const bool silu = m.attrs.silu;
        const CpuPlan* plan = &plan_;
        if (sp->codes_out >= 0) {  // fuse_norm_codes
          const RowCodes codes = row_codes_in(P(sp->codes_out), N * Pn, C);
          return std::function<void()>([=] {
            group_norm_row_codes(x, xt, add, ga, be, N, Pn, C, G, eps, silu, codes, scr,
                                 plan->group_norm_stats_io(index));
          });
        }
        return std::function<void()>([=] {
          group_norm(x, xt, add, ga, be, N, Pn, C, G, eps, silu, y, yt, scr,
                     plan->group_norm_stats_io(index));
        });
      });
    }
    case SK::LayerNorm: {
      const Node& m = *s.node;
      const int64_t C = m.shape.back(), rows = shape_numel(m.shape) / C;
      return simple(0, [=]() -> std::function<void()> {
        const void* x = P(sp->in[0]);
        const DType xt = DT(sp->in[0]);
        const float *ga = F(sp->in[1]), *be = F(sp->in[2]);
        const float eps = m.attrs.eps;
        if (sp->codes_out >= 0) {  // fuse_norm_codes
          const RowCodes codes = row_codes_in(P(sp->codes_out), rows, C);
          return [=] { layer_norm_row_codes(x, xt, ga, be, rows, C, eps, codes); };
        }
        void* y = P(sp->out);
        const DType yt = DT(sp->out);
        return [=] { layer_norm(x, xt, ga, be, rows, C, eps, y, yt); };
      });
    }
    case SK::Attention: {
      const Node& m = *s.node;
      const AttentionShape as = attention_shape(m, s);
      if (DT(s.in[1]) != as.in || DT(s.in[2]) != as.in)
        fail(m, "q, k, v of one storage type", "mixed (planner bug)");
      auto kernel = std::make_shared<AttentionKernel>(as, plan_.engine, plan_.threads);
      return simple(kernel->scratch_bytes(), [=, this]() {
        const void *q = P(sp->in[0]), *k = P(sp->in[1]), *v = P(sp->in[2]);
        void* y = P(sp->out);
        void* scr = scratch();
        return [=] { kernel->run(q, k, v, y, scr); };
      });
    }
    case SK::Unary: {
      const Node& m = *s.node;
      const int64_t n = shape_numel(m.shape);
      return simple(0, [=]() {
        const float* x = F(sp->in[0]);
        void* y = P(sp->out);
        const DType yt = DT(sp->out);
        const Unary op = sp->unary;
        const float sc = m.attrs.scale, bi = m.attrs.bias;
        return [=] { unary(op, x, y, yt, n, sc, bi); };
      });
    }
    case SK::Geglu: {
      const Node& m = *s.node;
      const int64_t D = m.shape.back(), rows = shape_numel(m.shape) / D;
      return simple(0, [=]() {
        const float* x = F(sp->in[0]);
        void* y = P(sp->out);
        const DType yt = DT(sp->out);
        return [=] { geglu(x, y, yt, rows, D); };
      });
    }
    case SK::Binary: {
      const Node& m = *s.node;
      const Shape& as = m.shape;
      const int64_t N = as.size() >= 3 ? as[0] : 1, C = as.back();
      const int64_t inner = shape_numel(as) / (N * C);
      return simple(0, [=]() {
        const float *a = F(sp->in[0]), *b = F(sp->in[1]);
        float* y = F(sp->out);
        const Binary op = sp->binary;
        const Broadcast bc = sp->bc;
        return [=] { binary(op, bc, a, b, y, N, inner, C); };
      });
    }
    case SK::Upsample: {
      const Shape &xs = shape(s.node->inputs[0]), &ys = s.node->shape;
      return simple(0, [=]() {
        const float* x = F(sp->in[0]);
        void* y = P(sp->out);
        const DType yt = DT(sp->out);
        return [=] { upsample_nearest(x, y, yt, xs[0], xs[1], xs[2], xs[3], ys[1], ys[2]); };
      });
    }
    case SK::Concat: {
      const int64_t Ca = shape(s.node->inputs[0]).back(), Cb = shape(s.node->inputs[1]).back();
      const int64_t rows = shape_numel(shape(s.node->inputs[0])) / Ca;
      return simple(0, [=]() {
        const float *a = F(sp->in[0]), *b = F(sp->in[1]);
        float* y = F(sp->out);
        return [=] { concat_last(a, b, y, rows, Ca, Cb); };
      });
    }
    case SK::Slice: {
      const int64_t C = shape(s.node->inputs[0]).back();
      const int64_t rows = shape_numel(s.node->shape) / s.node->shape.back();
      const int64_t b0 = s.node->attrs.begin, e0 = s.node->attrs.end;
      return simple(0, [=]() {
        const float* x = F(sp->in[0]);
        float* y = F(sp->out);
        return [=] { slice_last(x, y, rows, C, b0, e0); };
      });
    }
    case SK::Timestep: {
      const Node& m = *s.node;
      const int64_t N = m.shape[0];
      return simple(0, [=]() {
        const float* t = F(sp->in[0]);
        float* y = F(sp->out);
        return [=] {
          timestep_embedding(t, y, N, m.attrs.dim, m.attrs.flip_sin_to_cos, m.attrs.freq_shift);
        };
      });
    }
    case SK::Embedding: {
      const Node& m = *s.node;
      const Shape& ts = shape(m.inputs[1]);
      const int64_t n = shape_numel(shape(m.inputs[0]));
      return simple(0, [=]() {
        const int32_t* ids = static_cast<const int32_t*>(P(sp->in[0]));
        // The source table (its owner kept by the spec), or its f32 copy in a store.
        const bool in_place = sp->in[1] < 0;
        const void* table = in_place ? sp->table.data : P(sp->in[1]);
        const DType dtype = in_place ? sp->table.dtype : DType::F32;
        float* y = F(sp->out);
        // The step holds the table's owner: specs end with the compile.
        std::shared_ptr<const void> owner = in_place ? sp->table.owner : nullptr;
        return [=] {
          (void)owner;
          embedding(ids, table, dtype, y, n, ts[0], ts[1]);
        };
      });
    }
    case SK::Convert: {
      const int64_t n = s.n;
      return simple(0, [=]() {
        const float* x = F(sp->in[0]);
        uint16_t* y = static_cast<uint16_t*>(P(sp->out));
        return [=] { convert_to_bf16(x, y, n); };
      });
    }
    case SK::Copy: {
      const int64_t n = s.n;
      return simple(0, [=]() {
        const float* x = F(sp->in[0]);
        float* y = F(sp->out);
        return [=] { copy_f32(x, y, n); };
      });
    }
  }
  throw Error("plan", "step", "a known step kind", "other");
}

}  // namespace sdc::cpu::detail
