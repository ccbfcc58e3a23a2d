// WinogradProducts: n packed-once bf16 (u8 x s8, f32) matmuls over slices of the transformed tiles.
#include "backend/cpu/winograd_common.h"

#include <algorithm>
#include <exception>
#include <string>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/dnnl_util.h"
#include "backend/cpu/memory_plan.h"
#include "backend/cpu/prepacked_weights.h"
#include "backend/cpu/reference_impls.h"
#include "common/error.h"

namespace sdc::cpu {

namespace {

using dnnl::memory;

using Type = WinogradProducts::Type;
using dt = memory::data_type;

memory::desc tiles_md(int64_t tiles, int64_t Ci, Type t) {
  return memory::desc({tiles, Ci},
                      t == Type::Int8  ? dt::u8
                      : t == Type::F32 ? dt::f32
                                       : dt::bf16,
                      memory::format_tag::ab);
}
memory::desc products_md(int64_t tiles, int64_t Co, Type t) {
  return memory::desc({tiles, Co}, t == Type::Int8 ? dt::s32 : dt::f32, memory::format_tag::ab);
}

dnnl::matmul::primitive_desc product_pd(int64_t tiles, int64_t Ci, int64_t Co, Type t,
                                        const dnnl::engine& engine) {
  const memory::desc w_any({Ci, Co},
                           t == Type::Int8  ? dt::s8
                           : t == Type::F32 ? dt::f32
                                            : dt::bf16,
                           memory::format_tag::any);
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return dnnl::matmul::primitive_desc(
      dnnl::matmul::desc(tiles_md(tiles, Ci, t), w_any, products_md(tiles, Co, t)), attr, engine);
}

// n kernels as one [n, Ci, Co] tensor whose [Ci, Co] slices each have the blocked layout `one`
// and follow each other: the 2D descriptor with a batch dimension put in front.
memory::desc stacked_desc(const memory::desc& one, int64_t n) {
  const dnnl_memory_desc_t& d = one.data;
  if (d.ndims != 2 || d.format_kind != dnnl_blocked || d.offset0 != 0 || d.extra.flags != 0)
    throw Error("winograd_common.cpp", "oneDNN's product kernel layout",
                "a plain blocked 2D layout", md_key(one));
  dnnl_memory_desc_t s = d;
  s.ndims = 3;
  s.dims[0] = s.padded_dims[0] = n;
  s.padded_offsets[0] = 0;
  for (int i = 1; i < 3; ++i) {
    s.dims[i] = d.dims[i - 1];
    s.padded_dims[i] = d.padded_dims[i - 1];
    s.padded_offsets[i] = d.padded_offsets[i - 1];
    s.format_desc.blocking.strides[i] = d.format_desc.blocking.strides[i - 1];
  }
  s.format_desc.blocking.strides[0] =
      dnnl_dim_t(one.get_size() / memory::data_type_size(one.data_type()));
  for (int i = 0; i < d.format_desc.blocking.inner_nblks; ++i)
    s.format_desc.blocking.inner_idxs[i] = d.format_desc.blocking.inner_idxs[i] + 1;
  return memory::desc(s);
}

}  // namespace

bool WinogradProducts::int8_available() {
  static const bool vnni = cpu_features().avx512_vnni && isa_has_int8_dot();
  return vnni && stacks_kernels(Type::Int8);
}

bool WinogradProducts::stacks_kernels(Type type) {
  auto probe = [](Type t) {
    try {
      const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
      stacked_desc(product_pd(64, 128, 128, t, engine).weights_desc(), 16);
      return true;
    } catch (const std::exception&) {  // no such primitive here, or an unexpected layout
      return false;
    }
  };
  static const bool bf16 = probe(Type::Bf16), int8 = probe(Type::Int8), f32 = probe(Type::F32);
  return type == Type::Int8 ? int8 : type == Type::F32 ? f32 : bf16;
}

WinogradProducts::WinogradProducts(int64_t n, int64_t at_once, int64_t tiles, int64_t Ci,
                                   int64_t Co, const dnnl::engine& engine, Type type)
    : at_once_(at_once),
      tiles_(tiles),
      Ci_(Ci),
      Co_(Co),
      type_(type),
      engine_(engine),
      pd_(product_pd(tiles, Ci, Co, type, engine)),
      prim_(pd_),
      point_bytes_(pd_.weights_desc().get_size()),
      weights_md_(stacked_desc(pd_.weights_desc(), n)) {
  note_primitive("Winograd products " + std::to_string(tiles) + " x " + std::to_string(Ci) +
                     " -> " + std::to_string(Co),
                 pd_.impl_info_str());
  v_at_ = arena_aligned(pd_.scratchpad_desc().get_size());
  // u8, bf16 or f32 tiles; s32 or f32 products
  v_bytes_ = arena_aligned(size_t(at_once * tiles * Ci) * winograd_tile_value_bytes(type));
  m_bytes_ = arena_aligned(size_t(at_once * tiles * Co) * 4);
}

WinogradProducts::Bound WinogradProducts::bind(const void* u, void* thread_scratch,
                                               int64_t first) const {
  auto* base = static_cast<uint8_t*>(thread_scratch);
  return bind(u, base, base + v_at_, base + v_at_ + v_bytes_, first, at_once_);
}

WinogradProducts::Bound WinogradProducts::bind(const void* u, void* pad, void* tiles,
                                               void* products, int64_t first, int64_t count) const {
  Bound b(*this, engine_);
  auto* V = static_cast<uint8_t*>(tiles);
  auto* M = static_cast<uint8_t*>(products);
  b.V_ = V;
  b.M_ = M;
  const memory scratch(pd_.scratchpad_desc(), engine_, pad);
  auto* kernels = static_cast<uint8_t*>(const_cast<void*>(u));
  const memory::desc v_md = tiles_md(tiles_, Ci_, type_), m_md = products_md(tiles_, Co_, type_);
  b.args_.resize(size_t(std::clamp<int64_t>(count, 0, at_once_)));
  for (int64_t i = 0; i < int64_t(b.args_.size()); ++i)
    b.args_[size_t(i)] = {{DNNL_ARG_SRC, memory(v_md, engine_, V + size_t(i) * v_md.get_size())},
                          {DNNL_ARG_WEIGHTS, memory(pd_.weights_desc(), engine_,
                                                    kernels + size_t(first + i) * point_bytes_)},
                          {DNNL_ARG_DST, memory(m_md, engine_, M + size_t(i) * m_md.get_size())},
                          {DNNL_ARG_SCRATCHPAD, scratch}};
  return b;
}

bool winograd_reads(Type type, DType input) {
  return type == Type::Int8  ? input == DType::BF16 || input == DType::F32
         : type == Type::F32 ? input == DType::F32
                             : input == DType::BF16;
}

DType winograd_input(Type type, std::optional<DType> input, const char* file) {
  const DType in = input.value_or(type == Type::F32 ? DType::F32 : DType::BF16);
  if (!winograd_reads(type, in))
    throw Error(file, "Winograd convolution input",
                type == Type::Int8  ? "bf16 or f32 (int8 products)"
                : type == Type::F32 ? "f32 (f32 products)"
                                    : "bf16 (bf16 products)",
                std::string(dtype_name(in)));
  return in;
}

void check_winograd_output(DType yt, const char* file) {
  if (yt == DType::BF16 && !cpu_features().avx512_bf16)
    throw Error(file, "Winograd convolution output", "f32 on a CPU without AVX-512 BF16", "bf16");
}

void check_f32_winograd_channels(int64_t Ci, int64_t Co, const char* file, const char* key) {
  if (Ci % 8 || Co % 8)
    throw Error(file, key, "multiples of 8", std::to_string(Ci) + " -> " + std::to_string(Co));
}

void WinogradProducts::Bound::run() {
  for (const auto& a : args_) p_->prim_.execute(stream_, a);
  stream_.wait();
}

}  // namespace sdc::cpu
