// Checks that make a parsed LoRA module safe to merge — every part present, float dtypes,
// ranks that agree (up/down, mid, LoHa and LoKr factors, Tucker cores), a single finite alpha, a
// DoRA magnitude of the right size — and the guess of the architecture a LoRA was made for.
#pragma once

#include <string>

#include "model/lora_file.h"

namespace sdc::model {

// Fills kind, rank, alpha and dora of `m` from its parts; throws sdc::Error naming `file`, the
// module or tensor, what was expected and what was found.
void check_lora_module(LoraModule& m, const std::string& file);

// Sets f.base / f.base_evidence from names (lora_te2_, label_emb, transformer depth, text-encoder
// layers) and widths (cross-attention 768/1024/2048, text encoder 768/1024).
void guess_lora_base(LoraFile& f);

}  // namespace sdc::model
