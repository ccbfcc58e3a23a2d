// What a model file is: a checkpoint (SD1.x, or SD1.x inpainting, SD2.x, SDXL — the latter
// three recognised only to refuse them clearly), a standalone VAE / text encoder / UNet, a LoRA
// (format only: kohya, peft, LyCORIS LoHa/LoKr), a ControlNet (original or diffusers) or a compiled
// sdc GGUF. The decision rests on tensor names and shapes, never on the file name; `evidence`
// names the key or shape it rests on so messages can quote it.
//
// to_ldm_weights() then gives the file's weights under the original LDM names (views into the
// file; unused keys such as EMA copies and scheduler buffers dropped), whatever naming the file
// used: LDM, diffusers (folder or prefixed), or bare component names (encoder.*/decoder.* VAE,
// diffusers component files, a bare CLIPTextModel).
#pragma once

#include <string>

#include "common/tensor.h"
#include "io/tensor_file.h"

namespace sdc::model {

enum class ModelKind { Checkpoint, Lora, ControlNet, Vae, TextEncoder, UNet, Compiled, Unknown };
// "checkpoint", "lora", "controlnet", "vae", "text_encoder", "unet", "compiled", "unknown"
const char* kind_name(ModelKind k);

enum class Architecture { SD1, SD1Inpainting, SD2, SDXL, Unknown };
// "SD1.x", "SD1.x inpainting", "SD2.x", "SDXL", "unknown"
const char* architecture_name(Architecture a);

// How the tensors are named.
enum class Naming {
  Ldm,         // model.diffusion_model.*, first_stage_model.*, cond_stage_model.*, control_model.*
  Diffusers,   // unet.*, vae.*, text_encoder.*, controlnet.* (diffusers folders)
  BareLdmVae,  // encoder.down.0.block…, decoder.*, quant_conv (a standalone LDM VAE)
  BareDiffusersVae,         // encoder.down_blocks.… (an AutoencoderKL weight file)
  BareDiffusersUNet,        // down_blocks.…, up_blocks.… (a UNet2DConditionModel weight file)
  BareDiffusersControlNet,  // controlnet_cond_embedding.… (a ControlNetModel weight file)
  BareTextEncoder,          // text_model.… (a CLIPTextModel weight file)
  Other,                    // LoRAs and anything unrecognised
};
const char* naming_name(Naming n);  // "ldm", "diffusers", "bare-ldm-vae", …

enum class LoraFormat { None, Kohya, Peft, LoHa, LoKr, DiffusersAttnProcs };
// "none", "kohya", "peft", "loha", "lokr", "diffusers-attn-procs"
const char* lora_format_name(LoraFormat f);

struct Classification {
  ModelKind kind = ModelKind::Unknown;
  Architecture architecture = Architecture::Unknown;
  Naming naming = Naming::Other;
  LoraFormat lora_format = LoraFormat::None;
  std::string
      evidence;  // e.g. "conditioner.embedders.0.…" or "input_blocks.0.0.weight [320, 9, 3, 3]"
  bool has_unet = false, has_vae = false, has_text_encoder = false, has_controlnet = false;
  bool supported() const {
    return architecture == Architecture::SD1 || architecture == Architecture::SD1Inpainting ||
           architecture == Architecture::Unknown;
  }
};

Classification classify(const io::TensorFile& file);

// The weights under LDM names (see the file comment). sdc::Error for kinds without such weights
// (LoRA, unknown), for unknown tensor names, and for two names of one weight.
WeightMap to_ldm_weights(const io::TensorFile& file, const Classification& c);

}  // namespace sdc::model
