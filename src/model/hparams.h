// Hyper-parameters of the SD1.x components. The model layer reads them from tensor shapes (and
// from a diffusers config where a file cannot say, e.g. head counts); graph builders consume them.
// Defaults are SD1.5's.
#pragma once

#include <string>
#include <vector>

namespace sdc::model {

struct UNetParams {
  int in_channels = 4;
  int out_channels = 4;
  std::vector<int> block_out_channels{320, 640, 1280, 1280};
  std::vector<bool> attention_levels{true, true, true, false};  // CrossAttn blocks per level
  int layers_per_block = 2;
  int num_heads = 8;  // per attention (SD1.5: 8; head size = channels / 8)
  int transformer_depth = 1;
  int context_dim = 768;
  int norm_groups = 32;
  float resnet_eps = 1e-5f;            // GroupNorm eps in ResBlocks and the output norm
  float transformer_norm_eps = 1e-6f;  // GroupNorm before proj_in
  float layer_norm_eps = 1e-5f;
  bool use_linear_projection = false;  // SD1.5: 1x1 conv proj_in/proj_out
  int time_embed_dim() const { return 4 * block_out_channels.front(); }
};

struct TextEncoderParams {
  int vocab_size = 49408;
  int max_positions = 77;
  int hidden = 768;
  int layers = 12;
  int heads = 12;
  int intermediate = 3072;
  std::string activation = "quick_gelu";  // or "gelu"
  float layer_norm_eps = 1e-5f;
};

struct VaeParams {
  int in_channels = 3;
  int out_channels = 3;
  int latent_channels = 4;
  std::vector<int> block_out_channels{128, 256, 512, 512};
  int layers_per_block = 2;
  int norm_groups = 32;
  float norm_eps = 1e-6f;
  float scaling_factor = 0.18215f;
};

struct ControlNetParams {
  UNetParams unet;  // the down/mid half shares the UNet's hyper-parameters
  std::vector<int> hint_channels{16, 32, 96, 256};
  int conditioning_channels = 3;
};

}  // namespace sdc::model
