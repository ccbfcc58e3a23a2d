// TAESD (madebyollin's Tiny AutoEncoder for SD1.x) as graphs for one shape, in taesd.py's
// conventions, weights under kTaesdDecoderPrefix / kTaesdEncoderPrefix with taesd.py's own keys
// ("1.weight", "3.conv.0.weight", ...):
//   decoder: input latent [N,h,w,4] = the UNet's latents as they are (NOT divided by the VAE's
//            scaling factor); output image [N,8h,8w,3], nominally [0, 1], not clamped.
//   encoder: input image [N,H,W,3] in [0, 1]; output latents [N,ceil(H/8),ceil(W/8),4] on the
//            UNet's scale.
#pragma once

#include "common/tensor.h"
#include "graph/graph.h"
#include "model/taesd_file.h"

namespace sdc::graph {

using model::kTaesdDecoderPrefix;
using model::kTaesdEncoderPrefix;
inline constexpr int kTaesdChannels = 64;

// int8_layers: mark the decoder's 64 -> 64 convolutions int8-eligible (they run W8A8 in a plan
// compiled with cpu::Precision::INT8); its first (4 latent channels in) and last (the pixels)
// stay float.
Graph build_taesd_decoder(const WeightMap& weights, int batch, int latent_h, int latent_w,
                          bool int8_layers = false);
Graph build_taesd_encoder(const WeightMap& weights, int batch, int height, int width);

}  // namespace sdc::graph
