// A1111's image-side inpainting (v1.10.1: processing.py's img2img init, masking.py, images.py's
// create_binary_mask and apply_overlay), on 8-bit images with PIL's integer arithmetic:
//   - the mask: an RGBA mask whose alpha is not all opaque gives its alpha (> 128 → 255 when
//     rounding), anything else PIL's convert("L") of its colours, kept grey; optionally inverted;
//     blurred with cv2.GaussianBlur along x, then along y (kernel 2·int(2.5σ + 0.5) + 1, reflected
//     borders, each pass rounded to 8 bits);
//   - "Only masked" (inpaint_full_res): the mask's bounding box plus padding, widened to the
//     output's aspect ratio, is cropped and generated at the output size, then pasted back;
//   - "fill" masked content: the masked-out image blurred at radii 256, 64, 16, 4, 2, 0 (PIL's
//     GaussianBlur: three extended box blurs) and composited layer over layer;
//   - the overlay: the original image with alpha 255 − overlay mask, composited over the
//     generated image (PIL's alpha_composite), so unmasked pixels come back unchanged.
// Grey images are io::Image with R = G = B (so the resize functions apply) and no alpha.
#pragma once

#include <optional>
#include <vector>

#include "io/image.h"

namespace sdc::imaging {

// create_binary_mask(image, round): the grey mask A1111 starts from.
io::Image a1111_mask_grey(const io::Image& mask, bool round);
// ImageOps.invert on a grey image.
void invert_grey(io::Image& grey);
// The mask blur along x (sigma_x) then along y (sigma_y); 0 skips that pass.
io::Image a1111_mask_blur(const io::Image& grey, float sigma_x, float sigma_y);
// clip(2·v, 0, 255): the overlay mask of "Whole picture" inpainting.
io::Image doubled_mask(const io::Image& grey);

// A rectangle [x1, x2) × [y1, y2) in pixels.
struct CropRegion {
  int x1 = 0, y1 = 0, x2 = 0, y2 = 0;
  int width() const { return x2 - x1; }
  int height() const { return y2 - y1; }
};
// masking.get_crop_region_v2: the bounding box of the non-zero pixels grown by `pad` on every
// side (clipped to the image); nullopt for an all-black mask.
std::optional<CropRegion> mask_crop_region(const io::Image& grey, int pad);
// masking.expand_crop_region: grows the shorter side to the processing aspect ratio, centred,
// shifted back inside the image when it sticks out.
CropRegion expand_crop_region(CropRegion region, int processing_width, int processing_height,
                              int image_width, int image_height);
// PIL's Image.crop (the region lies inside the image).
io::Image crop(const io::Image& image, const CropRegion& region);

// PIL's GaussianBlur(radius) on an RGBA image held as rgb + alpha (every band blurred alike).
io::Image pil_gaussian_blur(const io::Image& rgba, float radius);
// masking.fill(image, mask): the masked region (mask = grey, 255 = repaint) filled with colours
// spread in from around it.
io::Image masked_content_fill(const io::Image& image, const io::Image& grey_mask);

// The overlay A1111 pastes over its result: `image` with alpha = 255 − overlay_mask (premultiplied
// and back, as PIL's RGBa paste and RGBa → RGBA conversion round).
io::Image inpaint_overlay(const io::Image& image, const io::Image& overlay_mask);
// apply_overlay: the generated image (resized with A1111's "crop and resize" into `paste_to` on a
// transparent canvas of the overlay's size, when given) with the overlay composited on top.
io::Image apply_inpaint_overlay(const io::Image& generated,
                                const std::optional<CropRegion>& paste_to,
                                const io::Image& overlay);

// The latent mask A1111 blends with (its nmask, 1 = repaint): the grey mask resized with PIL's
// bicubic to the latent size, / 255, rounded to 0 or 1 when `round`.
std::vector<float> a1111_latent_mask(const io::Image& grey, int latent_width, int latent_height,
                                     bool round);
// The grey mask as values v / 255, rounded to 0 or 1 when `round` ([H, W]; what A1111's inpainting
// conditioning masks the image with).
std::vector<float> a1111_mask_values(const io::Image& grey, bool round);
// The mask channel of an inpainting UNet's conditioning: those values sampled nearest at the
// latent size (pixel [8i, 8j]).
std::vector<float> a1111_conditioning_mask(const io::Image& grey, int latent_width,
                                           int latent_height, bool round);

}  // namespace sdc::imaging
