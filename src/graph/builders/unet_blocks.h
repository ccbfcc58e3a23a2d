// The pieces the UNet and the ControlNet share (LDM openaimodel.py structure, diffusers numerics):
// the timestep embedding MLP, ResBlocks, SpatialTransformers, and the whole down path + middle
// block. Names are local to the component prefix (e.g. "input_blocks.1.1.proj_in").
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "graph/builders/weight_source.h"
#include "model/hparams.h"

namespace sdc::graph {

// Shapes [N, h, w, C] of the 12 (for SD1.5) skip connections of the down path, in order: the
// conv_in output, then each ResBlock/SpatialTransformer pair and each Downsample. A latent size
// not divisible by 8 shrinks as ceil(x/2) per Downsample (stride 2, pad 1).
std::vector<Shape> unet_skip_shapes(const model::UNetParams& p, int batch, int h, int w);
// Shape [N, h8, w8, C] of the middle block's output.
Shape unet_mid_shape(const model::UNetParams& p, int batch, int h, int w);

// time_embed.0 -> SiLU -> time_embed.2, then the SiLU every ResBlock's emb_layers starts with:
// returns silu(emb) [N, 4*C0] from timesteps t [N].
ValueId time_embedding_silu(WeightSource& ws, ValueId t, const model::UNetParams& p);

// LDM ResBlock NAME.{in_layers.0,in_layers.2,emb_layers.1,out_layers.0,out_layers.3,
// skip_connection}: x [N,H,W,ci] -> [N,H,W,co].
ValueId res_block(WeightSource& ws, ValueId x, ValueId emb_silu, const std::string& name,
                  int64_t co, const model::UNetParams& p);

// LDM SpatialTransformer NAME.{norm,proj_in,transformer_blocks.d.*,proj_out} with cross-attention
// on `context` [N,T,Cctx]: x [N,H,W,C] -> [N,H,W,C].
ValueId spatial_transformer(WeightSource& ws, ValueId x, ValueId context, const std::string& name,
                            const model::UNetParams& p);

// Called with each skip connection as it is made (index 0..11, value h); returns the value to
// remember as that skip (e.g. h + a ControlNet residual, or a zero-conv of h).
using SkipHook = std::function<ValueId(int index, ValueId h)>;

struct DownPath {
  ValueId mid = kNone;         // middle block output [N, h8, w8, C_last]
  std::vector<ValueId> skips;  // what the hook returned for each skip, in order
};

// input_blocks.* (conv_in, ResBlocks, SpatialTransformers, Downsamples) and middle_block.0/1/2 on
// `sample` [N,h,w,in_channels]. When `hint` is given it is added to conv_in's output (ControlNet).
DownPath down_path(WeightSource& ws, ValueId sample, ValueId emb_silu, ValueId context,
                   ValueId hint, const model::UNetParams& p, const SkipHook& hook);

}  // namespace sdc::graph
