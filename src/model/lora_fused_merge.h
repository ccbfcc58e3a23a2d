// A fast path for the commonest LoRA module (a plain up/down pair, no LoCon mid, no DoRA):
// W += scale · (alpha/rank) · up @ down computed tile by tile straight into W, without the
// Co×K delta buffer, with AVX-512 where the CPU has it. Every element goes through exactly the
// operations lora_delta() + apply_lora_module() perform, in the same order (the sum over the rank
// from 0 upwards, separate multiply and add, then × alpha/rank when it is not 1, then W + scale·Δ),
// so the result is bit-identical to merge_lora's — a compiled model and the same LoRA merged at
// load give the same images.
#pragma once

#include <vector>

#include "model/lora_file.h"

namespace sdc::model {

// True when `m` is a module the fast path handles.
bool fused_merge_applies(const LoraModule& m);

// `w` holds the weight's values in f32 (Co·K of them); false (and `w` untouched) when the module
// is not one fused_merge_applies() accepts. `allow_simd` false forces the portable kernel (tests).
bool fused_lora_merge(std::vector<float>& w, const LoraModule& m, float scale,
                      bool allow_simd = true);

}  // namespace sdc::model
