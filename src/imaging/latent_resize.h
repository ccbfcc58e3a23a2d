// Resizing latents (NCHW float tensors) as torch.nn.functional.interpolate(mode="bilinear",
// align_corners=False, antialias=False) does — A1111's "Latent" hires-fix upscaler.
#pragma once

#include <span>
#include <vector>

namespace sdc::imaging {

// [n, c, h, w] -> [n, c, out_h, out_w]. Source coordinate (dst + 0.5)·(in/out) − 0.5, clamped at
// 0 below and to the last pixel above, as torch computes it in float.
std::vector<float> resize_latents_bilinear(std::span<const float> x, int n, int c, int h, int w,
                                           int out_h, int out_w);

}  // namespace sdc::imaging
