// The two ways a UNet inpaints: extra input channels, or latent blending after each step.
#include "pipeline/inpainting.h"

#include <algorithm>
#include <string>

#include "common/error.h"

namespace sdc::pipeline {

void inpaint_unet_input(const InpaintState& s, std::span<const float> x_in, int batch,
                        std::vector<float>& out) {
  const size_t plane = s.mask.latent.size();
  const size_t latent = 4 * plane;
  if (x_in.size() != size_t(batch) * latent || s.masked_latents.size() != x_in.size())
    throw Error("inpainting", "latents", std::to_string(size_t(batch) * latent) + " values",
                std::to_string(x_in.size()));
  out.resize(size_t(batch) * 9 * plane);
  for (int b = 0; b < batch; ++b) {
    float* dst = out.data() + size_t(b) * 9 * plane;
    std::copy_n(x_in.data() + size_t(b) * latent, latent, dst);
    std::copy(s.mask.latent.begin(), s.mask.latent.end(), dst + latent);
    std::copy_n(s.masked_latents.data() + size_t(b) * latent, latent, dst + latent + plane);
  }
}

void blend_known_region(const InpaintState& s, const sampling::Sampler& sampler, int index,
                        std::span<float> latents) {
  const std::vector<float> proper = sampler.noised_latents(s.image_latents, s.noise, index + 1);
  const size_t plane = s.mask.latent.size();
  if (latents.size() != proper.size() || latents.size() % plane != 0)
    throw Error("inpainting", "latents", std::to_string(proper.size()) + " values",
                std::to_string(latents.size()));
  for (size_t k = 0; k < latents.size(); ++k) {
    const float m = s.mask.latent[k % plane];
    latents[k] = (1.0f - m) * proper[k] + m * latents[k];
  }
}

}  // namespace sdc::pipeline
