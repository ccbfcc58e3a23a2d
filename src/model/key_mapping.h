// One table-driven mapping between original LDM single-file names and diffusers names, for the
// UNet, VAE, text encoder and ControlNet, used in both directions.
//   LDM:       model.diffusion_model.input_blocks.1.1.proj_in.weight
//   diffusers: unet.down_blocks.0.attentions.0.proj_in.weight
// Diffusers names carry their component folder as prefix: "unet.", "vae.", "text_encoder.",
// "controlnet.". The text encoder's LDM prefix is cond_stage_model.transformer.text_model.; the
// older cond_stage_model.transformer.* (without text_model) is accepted on input.
//
// The table covers the SD1.x topology (4 levels, 2 ResBlocks per down level, 3 per up level,
// cross-attention on down levels 0-2 and up levels 1-3), which every SD1.x / SD2.x UNet shares.
#pragma once

#include <optional>
#include <string>

#include "common/tensor.h"
#include "model/hparams.h"

namespace sdc::model {

enum class Component { UNet, Vae, TextEncoder, ControlNet };
const char* component_name(Component c);  // "unet", "vae", "text_encoder", "controlnet"

// "model.diffusion_model.", "first_stage_model.", "cond_stage_model.transformer.text_model.",
// "control_model."
const char* ldm_prefix(Component c);
// "unet.", "vae.", "text_encoder.", "controlnet."
const char* diffusers_prefix(Component c);

// The component an LDM or prefixed diffusers name belongs to (by prefix only), or nullopt.
std::optional<Component> component_of(const std::string& name);

// Names inference never needs: EMA copies (model_ema.*), scheduler buffers (alphas_cumprod*,
// betas, sqrt_*, log_one_minus_*, posterior_*), *.position_ids, logvar, lvlb_weights, VAE
// training losses (loss.*). The WeightMap conversions and the loader skip them.
bool is_unused_key(const std::string& name);

// Returns nullopt for names that are not weights of a known component.
std::optional<std::string> ldm_to_diffusers(const std::string& ldm_name);
std::optional<std::string> diffusers_to_ldm(const std::string& diffusers_name);

// True for the VAE mid-block attention q/k/v/proj_out weights (either convention), whose shape
// is [C,C,1,1] in LDM files and [C,C] in diffusers files.
bool is_vae_attention_weight(const std::string& name);

// Renames a whole WeightMap (unknown names are an error naming them; unused keys are dropped).
// VAE mid-block attention weights change shape between the two conventions ([C,C,1,1] conv vs
// [C,C] linear): the bytes are the same, so the result still views the source data.
WeightMap ldm_to_diffusers(const WeightMap& ldm);
WeightMap diffusers_to_ldm(const WeightMap& diffusers);

}  // namespace sdc::model
