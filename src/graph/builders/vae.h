// The SD1.x VAE (AutoencoderKL; LDM names under first_stage_model.*) as graphs for one shape.
//   decoder: input latent [N,h,w,4], ALREADY divided by scaling_factor; post_quant_conv + decoder;
//            output image [N,8h,8w,3], not clamped (nominally [-1, 1]).
//   encoder: input image [N,H,W,3] in [-1, 1] (H, W multiples of 8); encoder + quant_conv;
//            outputs mean and logvar [N,H/8,W/8,4] (the caller clamps logvar to [-30, 20] and
//            takes std = exp(logvar / 2); no scaling_factor applied).
#pragma once

#include "common/tensor.h"
#include "graph/graph.h"
#include "model/hparams.h"

namespace sdc::graph {

// VAE tiling runs each network in two parts: what works at latent resolution once over the whole
// image (it holds the mid-block attention, which needs every pixel, and is small there), the rest
// in tiles.
//   decoder Head: latent -> "features" [N,h,w,C] (post_quant_conv, conv_in, mid block, the ResNets
//           of the first up block); Tail: "features" -> image (upsamplings onwards).
//   encoder Head: image -> "features" [N,H/8,W/8,C] (conv_in to the last downsample); Tail:
//           "features" -> mean, logvar (the last down block's ResNets, mid block, conv_out, ...).
// The parts' sizes are the whole network's: latent (h, w) for the decoder, image (H, W) for the
// encoder.
enum class VaePart { Whole, Head, Tail };

// int8_layers: mark the decoder's int8-eligible layers (mark_vae_decoder_int8_layers); they run
// W8A8 only in a plan compiled with cpu::Precision::INT8.
Graph build_vae_decoder(const WeightMap& weights, const model::VaeParams& params, int batch,
                        int latent_h, int latent_w, VaePart part = VaePart::Whole,
                        bool int8_layers = false);
Graph build_vae_encoder(const WeightMap& weights, const model::VaeParams& params, int batch,
                        int height, int width, VaePart part = VaePart::Whole);

}  // namespace sdc::graph
