// A1111's img2img-with-mask preprocessing and paste-back.
#include "pipeline/a1111_inpainting.h"

#include "imaging/image_ops.h"

namespace sdc::pipeline {

std::optional<A1111Inpaint> prepare_a1111_inpaint(const io::Image& init, const io::Image& mask,
                                                  const GenerationRequest& r) {
  using namespace imaging;
  const ResizeMode mode = parse_resize_mode(r.resize_mode);
  io::Image grey = a1111_mask_grey(mask, r.mask_round);
  if (r.mask_invert) invert_grey(grey);
  grey = a1111_mask_blur(grey, r.mask_blur, r.mask_blur_y.value_or(r.mask_blur));

  A1111Inpaint p;
  p.fill = masked_content_index(r.masked_content);
  io::Image overlay_mask;
  if (r.inpaint_full_res) {
    // A1111 takes the crop box in mask coordinates and cuts it from the unresized init image:
    // a mask of another size is first fitted to the init image so that the two stay aligned.
    if (grey.width != init.width || grey.height != init.height)
      grey = fit_image(grey, init.width, init.height, mode);
    const std::optional<CropRegion> box = mask_crop_region(grey, r.inpaint_padding);
    if (!box) return std::nullopt;
    const CropRegion region = expand_crop_region(*box, r.width, r.height, init.width, init.height);
    p.paste_to = region;
    overlay_mask = grey;
    p.mask = fit_image(crop(grey, region), r.width, r.height, ResizeMode::Fill);
    p.overlay = inpaint_overlay(init, overlay_mask);
    p.image = fit_image(crop(init, region), r.width, r.height, ResizeMode::Fill);
  } else {
    p.mask = fit_image(grey, r.width, r.height, mode);
    overlay_mask = doubled_mask(p.mask);
    const io::Image fitted = fit_image(init, r.width, r.height, mode);
    p.overlay = inpaint_overlay(fitted, overlay_mask);
    p.image = fitted;
  }
  if (p.fill != 1) p.image = masked_content_fill(p.image, p.mask);
  return p;
}

io::Image finish_a1111_inpaint(const io::Image& generated, const A1111Inpaint& inpaint) {
  return imaging::apply_inpaint_overlay(generated, inpaint.paste_to, inpaint.overlay);
}

}  // namespace sdc::pipeline
