// A ControlNet (original lllyasviel layout, control_model.*) as a graph for one shape.
//   inputs:  sample [N,h,w,4], timestep [N], context [N,T,Cctx], hint [N,8h,8w,3] (RGB in [0,1]),
//            scale [1] (the conditioning scale; every residual is multiplied by it)
//   outputs: down_00 ... down_11 (the UNet's skip shapes) and mid: residuals already x scale,
//            ready to be fed to build_unet's control_down_XX / control_mid inputs.
#pragma once

#include <string>

#include "common/tensor.h"
#include "graph/builders/unet.h"
#include "graph/graph.h"
#include "model/hparams.h"

namespace sdc::graph {

std::string controlnet_down_name(int i);  // "down_07"
inline constexpr const char* kControlNetMid = "mid";

// Uses shape.batch/height/width/context_tokens; shape.with_control is ignored.
Graph build_controlnet(const WeightMap& weights, const model::ControlNetParams& params,
                       const UNetShape& shape);
Graph build_controlnet(const WeightMap& weights, const model::ControlNetParams& params, int batch,
                       int height, int width, int context_tokens = 77);

}  // namespace sdc::graph
