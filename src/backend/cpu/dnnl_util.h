// Small oneDNN helpers for the planner: a stable text key for a memory descriptor (the weight
// cache's format key) and weight packing (source tensor -> f32 -> the primitive's layout/type).
#pragma once

#include <memory>
#include <string>

#include <oneapi/dnnl/dnnl.hpp>

#include "backend/cpu/weight_cache.h"
#include "common/tensor.h"

namespace sdc::cpu {

std::string md_key(const dnnl::memory::desc& md);

// Packs `t` (any float dtype, PyTorch layout described by `src_md` over f32 values) into a new
// buffer laid out as `dst_md`, via a oneDNN reorder (which also casts to bf16 when asked).
std::shared_ptr<PackedWeight> pack_weight(const TensorRef& t, const dnnl::memory::desc& src_md,
                                          const dnnl::memory::desc& dst_md,
                                          const dnnl::engine& engine);

// W8A8 weights, symmetric per output channel (row o of `t`, whatever its other dims):
// scale[o] = max|w[o, :]| / 127 (1 for an all-zero row), as Co floats.
std::shared_ptr<PackedWeight> int8_weight_scales(const TensorRef& t);
// round(w / scale[o]) as s8, packed from `src_md` (an s8 descriptor of t in its PyTorch layout)
// into `dst_md` (the primitive's s8 layout; the reorder adds oneDNN's s8-source compensation).
std::shared_ptr<PackedWeight> pack_int8_weight(const TensorRef& t, const PackedWeight& scales,
                                               const dnnl::memory::desc& src_md,
                                               const dnnl::memory::desc& dst_md,
                                               const dnnl::engine& engine);

// The f32 values of `t` in its own layout (biases, norm weights, tables).
std::shared_ptr<PackedWeight> pack_f32(const TensorRef& t);

// Frees the staging buffer pack_weight keeps between calls (the planner calls it when done).
void release_packing_memory();

}  // namespace sdc::cpu
