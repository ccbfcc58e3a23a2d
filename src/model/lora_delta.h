// The dense weight update ΔW of one LoRA module, computed in f32:
//   LoRA        up @ down                      (3x3 conv: up[:, :, 0, 0] @ down.flatten(1))
//   LoCon CP    Σ mid[n,m,k,l] · up[i,n] · down[m,j]
//   LoHa        (w1a @ w1b) ⊙ (w2a @ w2b)      (Tucker: t ×₁ w_a ×₂ w_b)
//   LoKr        kron(w1, w2)                   (w1 = w1a @ w1b, w2 = w2a @ w2b or Tucker)
// times alpha/rank. ΔW is a row-major [Co, K] matrix with K = Ci·kh·kw, which is exactly the
// memory layout of a [Co, Ci] Linear, a [Co, Ci, 1, 1] 1x1 conv or a [Co, Ci, kh, kw] conv, so
// Linear weights stored as 1x1 convs (and the reverse) take the same delta.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "model/lora_file.h"

namespace sdc::model {

struct LoraDeltaShape {
  int64_t out = 0;  // Co
  int64_t in = 0;   // K = Ci·kh·kw
  // The kernel, where a part of the module states it (4-D down, mid, Tucker core, 4-D w2).
  std::optional<std::pair<int64_t, int64_t>> kernel;
  std::string str() const;  // "[Co, Ci, kh, kw]" where the kernel is known, else "[Co, K]"
  // True when a weight of `target` shape can take this delta ([Co,Ci] ≡ [Co,Ci,1,1]).
  bool fits(const Shape& target) const;
};

LoraDeltaShape lora_delta_shape(const LoraModule& m);

// Throws sdc::Error(file, module's first key, "a delta of shape TARGET for WEIGHT", FOUND) when
// the module does not fit the weight it was matched to (or its per-input DoRA magnitude does not
// have one value per input channel).
void check_lora_fits(const LoraModule& m, const Shape& target, const std::string& weight_name,
                     const std::string& file);

// ΔW · alpha/rank, Co·K values row-major.
std::vector<float> lora_delta(const LoraModule& m);

}  // namespace sdc::model
