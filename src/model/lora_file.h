// LoRA files: every common on-disk layout parsed into one normalised list of modules.
//   kohya / A1111:  lora_unet_<path with _>.lora_down.weight / .lora_up.weight / .alpha
//                   (+ .lora_mid.weight for LoCon CP, .dora_scale for DoRA), lora_te_ / lora_te1_
//   LyCORIS:        .hada_w1_a/_b, .hada_w2_a/_b (+ hada_t1/t2)          LoHa
//                   .lokr_w1 | lokr_w1_a/_b, .lokr_w2 | lokr_w2_a/_b (+ lokr_t2)   LoKr
//   peft/diffusers: unet.<dotted path>.lora_A.weight / .lora_B.weight, text_encoder.…,
//                   optional base_model.model. prefix, .lora_magnitude_vector (DoRA), .alpha
//   old diffusers:  ….lora.down.weight, ….lora_linear_layer.up.weight,
//                   ….processor.to_q_lora.down.weight (attention processors)
// Parsing needs no model: it groups tensors by module, names each part by its role, checks
// dtypes and that the ranks of a module agree (names: lora_names.h; checks: lora_checks.h).
// Matching modules to model weights is lora_targets.h; the delta math is lora_delta.h; merging
// is lora_merger.h.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/tensor.h"
#include "io/tensor_file.h"

namespace sdc::model {

// How the file spells its module names.
enum class LoraNaming { Kohya, Peft, DiffusersLegacy };
const char* lora_naming_name(LoraNaming n);  // "kohya", "peft", "diffusers-legacy"

// What a module stores. LoRA covers plain low-rank pairs and LoCon's CP form (lora_mid).
enum class LoraKind { LoRA, LoHa, LoKr };
const char* lora_kind_name(LoraKind k);  // "LoRA", "LoHa", "LoKr"

// Which network a module adapts, read from its name alone.
enum class LoraComponent { UNet, TextEncoder, TextEncoder2 };

// The architecture a LoRA's own names and shapes point to (before any model is seen).
enum class LoraBase { Unknown, SD1, SD2, SDXL };
const char* lora_base_name(LoraBase b);  // "unknown", "SD1.x", "SD2.x", "SDXL"

// DoRA's magnitude: per output channel (PEFT lora_magnitude_vector, LyCORIS wd_on_out) or per
// input channel (LyCORIS dora_scale of shape [1, Ci, ...]).
enum class DoraAxis { None, Output, Input };

struct LoraModule {
  std::string name;  // module name as in the file ("lora_unet_…_to_q", "unet.down_blocks.0.…")
  std::string
      lookup;  // normalised for matching: "lora_unet_…"/"lora_te_…" or "unet.…"/"text_encoder.…"
  LoraNaming naming = LoraNaming::Kohya;
  LoraComponent component = LoraComponent::UNet;
  LoraKind kind = LoraKind::LoRA;
  // Parts by role, under the kohya/LyCORIS spelling: "lora_down", "lora_up", "lora_mid",
  // "hada_w1_a" … "hada_t2", "lokr_w1" … "lokr_t2", "dora_scale". peft's lora_A is "lora_down".
  std::map<std::string, TensorRef> parts;
  std::map<std::string, std::string> part_keys;  // role -> full tensor name in the file
  int64_t rank = 0;  // 0 for a LoKr module with both factors stored whole (no alpha scaling)
  float alpha = 0;   // = rank when the file stores none
  bool has_alpha = false;
  DoraAxis dora = DoraAxis::None;

  const TensorRef* part(const std::string& role) const;
  bool has(const std::string& role) const { return parts.count(role) != 0; }
  // alpha / rank, or 1 where the module has no rank (whole LoKr factors).
  float alpha_scale() const;
  // The first tensor name of this module in the file, for messages.
  std::string first_key() const;
  // Input width this module expects (Ci·kh·kw of the weight it adapts, flattened).
  int64_t in_features() const;
  int64_t out_features() const;
};

struct LoraFile {
  std::string path;
  io::FileFormat container = io::FileFormat::Safetensors;
  std::vector<LoraModule> modules;
  nlohmann::json metadata;
  LoraBase base = LoraBase::Unknown;
  std::string base_evidence;  // why `base` was decided, e.g. "lora_te2_* keys"
  // "kohya LoRA", "peft LoRA+DoRA", "kohya LoHa/LoKr" …
  std::string format() const;
  std::set<LoraNaming> namings() const;
  std::set<LoraKind> kinds() const;
  bool has_dora() const;
};

// True when every tensor name of `file` is a LoRA part (used to tell LoRAs from models).
bool is_lora_file(const io::TensorFile& file);

// Parses an opened tensor file. Throws sdc::Error naming the file and key for: a name that is no
// LoRA part, a module with missing parts (up without down …), ranks that disagree, a non-float
// tensor, an alpha that is not a single finite number, a DoRA magnitude of the wrong size.
LoraFile parse_lora(const io::TensorFile& file);

// Reads `path` (safetensors, or a PyTorch .ckpt/.pt/.bin LoRA where the ckpt reader is built in)
// and parses it.
LoraFile load_lora(const std::string& path);

// What `sdc inspect` prints about a LoRA.
struct LoraSummary {
  std::string format;
  LoraBase base = LoraBase::Unknown;
  std::string base_evidence;
  int unet_modules = 0, text_encoder_modules = 0, text_encoder2_modules = 0;
  int64_t min_rank = 0, max_rank = 0;
  std::set<float> alphas;            // as stored (rank where absent)
  std::map<std::string, int> kinds;  // "LoRA" -> count, …
};
LoraSummary summarize_lora(const io::TensorFile& file);
LoraSummary summarize_lora(const LoraFile& lora);

}  // namespace sdc::model
