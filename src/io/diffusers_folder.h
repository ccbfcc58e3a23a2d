// Diffusers folders: a pipeline folder (model_index.json + unet/, vae/, text_encoder/, …) or a
// single-component folder (config.json + weights, e.g. a ControlNetModel or AutoencoderKL saved
// with save_pretrained). Weights keep their diffusers names, prefixed with the component folder:
// "unet.down_blocks.0…", "vae.encoder…", "text_encoder.text_model…", "controlnet.…".
//
// Per component the weights come from the first of: diffusion_pytorch_model.safetensors,
// model.safetensors, *.fp16.safetensors, a sharded *.safetensors.index.json, then the PyTorch
// zip *.bin files (read by io::read_ckpt). Metadata (JSON):
//   {"model_index": {...} (pipeline folders only),
//    "components": {"unet": {"folder": "unet", "weights":
//    ["…/unet/diffusion_pytorch_model.safetensors"],
//                            "config": {...}}, …},
//    "tokenizer": "…/tokenizer" (when the folder has one)}
#pragma once

#include <string>
#include <vector>

#include "io/tensor_file.h"

namespace sdc::io {

// The component folders read from a pipeline folder, in this order. Others (scheduler,
// safety_checker, feature_extractor, …) are not weights sdc uses and are left alone.
const std::vector<std::string>& diffusers_component_folders();

// True when `dir` is a directory holding model_index.json or a config.json.
bool looks_like_diffusers_folder(const std::string& dir);

// Reads the folder; sdc::Error for a directory that is not a diffusers folder, a component listed
// in model_index.json whose folder or weights are missing, unreadable configs, bad weight files.
TensorFile read_diffusers_folder(const std::string& dir);

}  // namespace sdc::io
