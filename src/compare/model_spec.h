// A model named on the `sdc compare` command line: PATH with an optional precision suffix
// (@f32, @bf16, @f16, @int8), to which "+vae-int8" may be added (@f32+vae-int8, or @vae-int8 for
// f32 with it). f32 and bf16 are the CPU backend's compute precisions (bf16 matmul and
// convolution inputs, f32 accumulation and norms); int8 runs the UNet's int8-eligible layers W8A8
// (cpu::Precision::INT8); f16 rounds every float weight to f16 and computes in f32 (what an f16
// file gives); vae-int8 runs the VAE decoder's int8-eligible layers W8A8 (--vae-precision int8);
// "+direct" (after the precision or +vae-int8) keeps every convolution direct (--no-winograd), so
// M@bf16+direct against M@bf16 measures the Winograd convolutions on the user's own model.
#pragma once

#include <string>

#include "backend/cpu/plan.h"
#include "pipeline/model_bundle.h"

namespace sdc::compare {

struct ModelSpec {
  std::string path;
  std::string precision = "f32";  // "f32", "bf16", "f16" or "int8"
  bool vae_int8 = false;
  bool direct = false;  // no Winograd convolutions (cpu::PlanOptions::winograd)
  cpu::Precision compute() const;
  std::string label() const {
    return path + "@" + precision + (vae_int8 ? "+vae-int8" : "") + (direct ? "+direct" : "");
  }
};

// "model.safetensors@bf16" -> {model.safetensors, bf16}; no suffix: f32. A suffix after '@' that
// is not a precision (with or without "+vae-int8", then "+direct") is a UsageError (a path
// containing '@' keeps it when no suffix follows).
ModelSpec parse_model_spec(const std::string& arg);

// Loads the model (any format `sdc generate -m` takes, or an ONNX export folder of sdc convert:
// its weights as written, run by sdc's backend), with a TAESD from `taesd` when not empty, and
// applies the f16 weight rounding.
pipeline::ModelBundle load_for_compare(const ModelSpec& spec, const std::string& model_config,
                                       const std::string& taesd = "");

}  // namespace sdc::compare
