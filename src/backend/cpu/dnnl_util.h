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

// A new buffer holding `data` (laid out as `src_md`) reordered into `dst_md`; `zeroed` clears
// it first, so that the slack oneDNN sizes beyond the data it writes reads the same every time.
std::shared_ptr<PackedWeight> reorder_into(const void* data, const dnnl::memory::desc& src_md,
                                           const dnnl::memory::desc& dst_md,
                                           const dnnl::engine& engine, bool zeroed = false);

// The f32 values of `t` in its own layout (biases, norm weights, tables).
std::shared_ptr<PackedWeight> pack_f32(const TensorRef& t);

// Frees the staging buffer pack_weight keeps between calls (the planner calls it when done).
void release_packing_memory();

}  // namespace sdc::cpu
