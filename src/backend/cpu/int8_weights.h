// W8A8 weight packing in one pass over the source: the per-output-channel scales, the s8 values
// and the blocked layout oneDNN's int8 convolutions and matmuls read, with its zero-point
// compensation. Each row of the source is read once (converted to f32 in a row buffer), and its
// s8 values go, through a small tile of rows, straight to their places in the blocked layout.
#pragma once

#include <memory>

#include <oneapi/dnnl/dnnl.hpp>

#include "backend/cpu/weight_cache.h"
#include "common/tensor.h"

namespace sdc::cpu {

struct Int8Packed {
  std::shared_ptr<PackedWeight> values;  // s8, laid out as the primitive wants
  std::shared_ptr<PackedWeight> scales;  // f32 [rows]
  // s32 [rows]: the sum of row o's s8 values, for the steps that fold the input's zero point
  // into their bias themselves.
  std::shared_ptr<PackedWeight> sums;
};

// Symmetric per output channel, row o of `t` (whatever its other dims) being channel o:
// scale[o] = max|w[o, :]| / 127 (1 for an all-zero row), value = round(w / scale[o]) (to nearest
// even, within [-127, 127]) as s8. `src_md` describes those s8 values in t's own (PyTorch)
// layout, `dst_md` is the primitive's s8 weight layout; its compensation for the u8 source's zero
// point (-sum of row o's values) is filled in too. Blocked layouts whose only extra is that
// compensation are written directly, t's rows being src_md's outermost dims (one dim, or several
// without compensation: a Winograd kernel's [point, output channel]); any other goes through a
// oneDNN reorder. Finite weights
// only (NaN or infinity give unspecified values).
Int8Packed pack_int8_weight(const TensorRef& t, const dnnl::memory::desc& src_md,
                            const dnnl::memory::desc& dst_md, const dnnl::engine& engine);

// Whether pack_int8_weight writes `dst_md` itself (rather than through a reorder) for a source of
// `rows` rows (0: src_md's outermost dim): for tests.
bool writes_int8_layout(const dnnl::memory::desc& src_md, const dnnl::memory::desc& dst_md,
                        int64_t rows = 0);

}  // namespace sdc::cpu
