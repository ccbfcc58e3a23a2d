// One table-driven mapping between original LDM single-file names and diffusers names, for the
// UNet, VAE, text encoder and ControlNet, used in both directions.
//   LDM:       model.diffusion_model.input_blocks.1.1.proj_in.weight
//   diffusers: unet.down_blocks.0.attentions.0.proj_in.weight
// Diffusers names carry their component folder as prefix: "unet.", "vae.", "text_encoder.",
// "controlnet.". The text encoder's LDM prefix is cond_stage_model.transformer.text_model.
#pragma once

#include <optional>
#include <string>

#include "common/tensor.h"
#include "model/hparams.h"

namespace sdc::model {

enum class Component { UNet, Vae, TextEncoder, ControlNet };
const char* component_name(Component c);  // "unet", "vae", "text_encoder", "controlnet"

// Returns nullopt for names that are not weights of a known component.
std::optional<std::string> ldm_to_diffusers(const std::string& ldm_name);
std::optional<std::string> diffusers_to_ldm(const std::string& diffusers_name);

// Renames a whole WeightMap (unknown names are an error naming them). VAE mid-block attention
// weights change shape between the two conventions ([C,C,1,1] conv vs [C,C] linear): converted.
WeightMap ldm_to_diffusers(const WeightMap& ldm);
WeightMap diffusers_to_ldm(const WeightMap& diffusers);

}  // namespace sdc::model
