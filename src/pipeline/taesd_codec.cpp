// TAESD through the plan cache; batch 1 plans, so one compiled plan serves every batch size.
#include "pipeline/taesd_codec.h"

#include "common/error.h"
#include "imaging/image_ops.h"
#include "pipeline/latent_preview.h"

namespace sdc::pipeline {

std::vector<float> taesd_decode(PlanCache& plans, std::span<const float> latents, int h, int w) {
  if (latents.size() != size_t(4) * size_t(h) * size_t(w))
    throw Error("TAESD", "latents", "4 x " + std::to_string(h) + " x " + std::to_string(w),
                std::to_string(latents.size()) + " values");
  cpu::Plan& dec = plans.taesd_decoder(1, h, w);
  dec.set_input_nchw("latent", latents.data());
  dec.run();
  std::vector<float> image(size_t(shape_numel(dec.output_shape_nchw("image"))));
  dec.read_output_nchw("image", image.data());
  return image;
}

std::vector<float> taesd_encode(PlanCache& plans, std::span<const float> image, int height,
                                int width) {
  if (image.size() != size_t(3) * size_t(height) * size_t(width))
    throw Error("TAESD", "image", "3 x " + std::to_string(height) + " x " + std::to_string(width),
                std::to_string(image.size()) + " values");
  cpu::Plan& enc = plans.taesd_encoder(1, height, width);
  enc.set_input_nchw("image", image.data());
  enc.run();
  std::vector<float> latents(size_t(shape_numel(enc.output_shape_nchw("latent"))));
  enc.read_output_nchw("latent", latents.data());
  return latents;
}

io::Image preview_image(PlanCache& plans, const std::string& method, std::span<const float> latents,
                        int h, int w) {
  const bool taesd = method == "taesd" || (method == "auto" && plans.model().taesd.decoder);
  if (!taesd) return preview_latents(latents, h, w);
  const std::vector<float> chw = taesd_decode(plans, latents, h, w);
  return imaging::image_from_unit_tensor(chw.data(), 8 * w, 8 * h);
}

}  // namespace sdc::pipeline
