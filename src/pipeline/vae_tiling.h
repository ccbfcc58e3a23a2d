// VAE decode and encode in overlapping tiles, so that 1024×1024 and larger images fit in little
// memory. Each network is cut where it reaches latent resolution (graph::VaePart):
//  - the part at latent resolution (the decoder's head: conv_in, mid block with its attention,
//    first up block; the encoder's tail) runs ONCE over the whole latent — exactly as untiled,
//    and small there (1/64 of the pixels);
//  - the rest runs in tiles through ONE plan of the tile's size (edge tiles are shifted inwards
//    rather than cut short), blended with weights that ramp linearly across each overlap (the
//    encoder blends its head's latent-resolution features before the tail).
// The tiled part's GroupNorms use the whole image's statistics, not each tile's own: a first pass
// runs the fewest tiles that cover the image in Record mode (cpu::NormStats), their statistics
// are pooled as if all their pixels were one set, and every tile then replays them. Pooling is an
// estimate (each tile's later layers saw its own earlier normalisation); on the tiny random VAE
// it brings a 512×512 tiled decode from 6.1 to 0.9 levels off the untiled one away from the seams
// at 256-px tiles (exact statistics would give 0.0 there, so the estimate is what remains).
// Estimating from one run of a downscaled input instead was worse than no sharing. The pass costs
// about one untiled decode of the tiled part (at 1024×1024 with 512-px tiles: 4 tiles against the
// 9 of the output pass).
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
