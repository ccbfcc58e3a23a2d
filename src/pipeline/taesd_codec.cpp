// TAESD through the plan cache; batch 1 plans, so one compiled plan serves every batch size.
#include "pipeline/taesd_codec.h"

#include "common/error.h"
#include "imaging/image_ops.h"
#include "pipeline/latent_preview.h"

namespace sdc::pipeline {

namespace {

// One NCHW tensor of `values` values ([channels, h, w]) through a batch-1 plan: the output.
std::vector<float> run_plan(cpu::Plan& plan, const char* input, std::span<const float> x,
                            int channels, int h, int w, const char* output) {
  if (x.size() != size_t(channels) * size_t(h) * size_t(w))
    throw Error("TAESD", input,
                std::to_string(channels) + " x " + std::to_string(h) + " x " + std::to_string(w),
                std::to_string(x.size()) + " values");
  plan.set_input_nchw(input, x.data());
  plan.run();
  std::vector<float> y(size_t(shape_numel(plan.output_shape_nchw(output))));
  plan.read_output_nchw(output, y.data());
  return y;
}

}  // namespace

std::vector<float> taesd_decode(PlanCache& plans, std::span<const float> latents, int h, int w) {
  return run_plan(plans.taesd_decoder(1, h, w), "latent", latents, 4, h, w, "image");
}

std::vector<float> taesd_encode(PlanCache& plans, std::span<const float> image, int height,
                                int width) {
  return run_plan(plans.taesd_encoder(1, height, width), "image", image, 3, height, width,
                  "latent");
}

io::Image preview_image(PlanCache& plans, const std::string& method, std::span<const float> latents,
                        int h, int w) {
  const bool taesd = method == "taesd" || (method == "auto" && plans.model().taesd.decoder);
  if (!taesd) return preview_latents(latents, h, w);
  const std::vector<float> chw = taesd_decode(plans, latents, h, w);
  return imaging::image_from_unit_tensor(chw.data(), 8 * w, 8 * h);
}

}  // namespace sdc::pipeline
