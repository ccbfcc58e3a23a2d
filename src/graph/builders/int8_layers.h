// Which UNet layers may run W8A8 (int8 weights and activations) when a plan asks for int8: the
// big 3x3 convolutions, 1x1 skips/projections and the transformer's linears. Kept in float, where
// quantisation costs quality and saves almost no time: conv_in (4 latent channels in) and conv_out
// (the noise prediction itself), the time-embedding MLP and every ResBlock's emb_layers (one row
// per image), and cross-attention's to_k/to_v (77 text tokens; their error would reach every
// pixel that attends to a token). The self-attention (attn1) runs int8 scores and probabilities
// where the CPU allows (backend/cpu/attention_int8.h); cross-attention, norms and the residual
// stream never are int8.
#pragma once

#include "graph/graph.h"

namespace sdc::graph {

// Marks the int8-eligible Conv2d/Linear/Attention nodes of a UNet (or ControlNet) graph, named by
// their LDM layer names (input_blocks.*, middle_block.*, output_blocks.*).
void mark_int8_layers(Graph& g);

// True when a layer of that LDM name is one mark_int8_layers keeps in float.
bool keeps_float_in_int8(const std::string& layer);

// Marks a VAE decoder graph's int8-eligible layers (an opt-in of its own, --vae-precision int8):
// the ResNets' 3x3 convolutions and 1x1 shortcuts and the upsampling convolutions, which are
// nearly all of its work, and the mid block's attention (its QK^T and PV: one head of 512 over
// 4096 latent pixels at 512x512 took 216 ms of a 2.3 s decode in f32 on an Ice Lake, 74 ms
// int8, image PSNR against the f32 decoder 42.16 -> 42.15 dB). Kept in float: post_quant_conv
// and conv_in (4 latent channels in), conv_out (the pixels themselves) and the attention's
// projections.
void mark_vae_decoder_int8_layers(Graph& g);

}  // namespace sdc::graph
