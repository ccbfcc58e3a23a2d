// The SD1.5 components as ONNX models, with the inputs and outputs of the layout accelerator
// compile steps read (DIR/<folder>/<file>): text encoder, UNet (optionally with the ControlNet
// residual inputs), VAE encoder and decoder, ControlNet. Each is built from the graph IR at two
// sizes (to tell symbolic dimensions apart) or, for static shapes, at the one declared size.
//
// Dimension names: batch; height/width = latent size (image / 8); image_height/image_width =
// pixels; height_2/width_2, height_4/…, height_8/… = ceil(height / 2^k) (UNet skip sizes);
// sequence = text tokens (77 x prompt chunks).
#pragma once

#include <string>
#include <vector>

#include "export/onnx_model.h"
#include "model/model_loader.h"

namespace sdc::exporter {

enum class ComponentKind { TextEncoder, UNet, VaeEncoder, VaeDecoder, ControlNet };

struct ComponentSpec {
  ComponentKind kind;
  std::string id;      // "text_encoder", "unet", "vae_encoder", "vae_decoder", "controlnet"
  std::string folder;  // DIR/<folder>/
  std::string file;    // "unet_fuse_1.onnx"
};

struct ShapeOptions {
  bool fixed = false;             // --static: every dimension fixed to `batch` and the size below
  int batch = 1;                  // -b
  int width = 512, height = 512;  // first -s size, in pixels
};

// The components `m` yields: text encoder, UNet, VAE encoder and decoder, and the ControlNet if
// the model has one; UNet and ControlNet files are named after the batch (-b).
std::vector<ComponentSpec> components_of(const model::LoadedModel& m, int batch);

// The ONNX model of one component. `compute` is Float or Float16.
OnnxModel component_onnx(const model::LoadedModel& m, const ComponentSpec& c,
                         const ShapeOptions& shapes, ElemType compute, bool control_inputs);

}  // namespace sdc::exporter
