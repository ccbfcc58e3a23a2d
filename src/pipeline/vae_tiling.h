// VAE decode and encode in overlapping tiles, so that 1024×1024 and larger images fit in little
// memory: every tile runs through ONE plan of the tile's size (edge tiles are shifted inwards
// rather than cut short, so no second shape is compiled), and the tiles are blended with
// weights that ramp linearly across each overlap. The VAE's GroupNorm and mid-block attention see
// one tile at a time, so a tiled image differs slightly from the untiled one (diffusers'
// enable_vae_tiling has the same trade-off).
#pragma once

#include <span>
#include <vector>

#include "pipeline/plan_cache.h"

namespace sdc::pipeline {

// Tile sizes in image pixels: a multiple of 64 in [128, 2048]; the overlap is a quarter of it.
inline constexpr int kDefaultVaeTile = 512;

// The tile origins along one axis of `size` for tiles of `tile` (<= size) overlapping by at least
// `overlap`: 0, tile - overlap, … and the last one at size - tile.
std::vector<int> tile_origins(int size, int tile, int overlap);

// latents [4, h, w] (already divided by the scaling factor, as the decoder takes them) -> image
// [3, 8h, 8w] in [-1, 1].
std::vector<float> tiled_vae_decode(PlanCache& plans, std::span<const float> latents, int h, int w,
                                    int tile_px);
// image [3, 8h, 8w] in [-1, 1] -> the posterior's mean and logvar, [4, h, w] each.
void tiled_vae_encode(PlanCache& plans, std::span<const float> image, int h, int w, int tile_px,
                      std::vector<float>& mean, std::vector<float>& logvar);

}  // namespace sdc::pipeline
