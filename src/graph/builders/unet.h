// The SD1.x UNet (LDM names under model.diffusion_model.*) as a graph for one shape.
//   inputs:  sample [N,h,w,4] (NHWC latent), timestep [N] (f32), context [N,T,Cctx]
//            with_control: control_down_00 ... control_down_11 (the skip shapes, see
//            unet_skip_shapes) and control_mid (unet_mid_shape), added to the skip connections and
//            the middle block's output (diffusers down/mid_block_additional_residual semantics:
//            the caller passes residuals already multiplied by the conditioning scale, summed over
//            ControlNets).
//   output:  eps [N,h,w,4]
#pragma once

#include <string>

#include "common/tensor.h"
#include "graph/graph.h"
#include "model/hparams.h"

namespace sdc::graph {

struct UNetShape {
  int batch = 1;
  int height = 64;          // latent height (image / 8)
  int width = 64;           // latent width
  int context_tokens = 77;  // 77 x prompt chunks
  bool with_control = false;
  // LDM's (A1111's) up path instead of diffusers': each Upsample doubles the size, and a skip
  // concatenation whose sizes differ first nearest-resizes to the skip (A1111's
  // TorchHijackForUnet.cat). Identical to diffusers' when both latent sides are multiples of 8.
  bool ldm_upsampling = false;
};

// Name of the i-th ControlNet skip input ("control_down_07") and of the middle one.
std::string control_down_name(int i);
inline constexpr const char* kControlMid = "control_mid";

Graph build_unet(const WeightMap& weights, const model::UNetParams& params, const UNetShape& shape);

}  // namespace sdc::graph
