// Planning ahead: a compiled model declares the image sizes (and batch) it will be used at;
// building their plans at load makes the first image as fast as the second.
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

#include "pipeline/plan_cache.h"

namespace sdc::pipeline {

struct WarmupSpec {
  std::vector<std::pair<int, int>> sizes;  // (width, height) in pixels, multiples of 8
  std::vector<int> unet_batches;           // e.g. {2·B, B}: with and without CFG
  int clip_skip = 1;
  bool with_control = false;   // also the ControlNet and the UNet that takes its residuals
  bool vae_decoder = true;     // false: the images are decoded by TAESD
  bool taesd_decoder = false;  // the TAESD decoder too (it needs a loaded one)
};

// Builds the text encoder plan, and per size the decoders' plans asked for and the UNet plan at
// each batch (one 77-token prompt chunk); returns how many plans were built (cached ones not
// counted).
size_t warm_plans(PlanCache& plans, const WarmupSpec& spec);

}  // namespace sdc::pipeline
