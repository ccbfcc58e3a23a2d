// Per-image infotext fields.
#include "pipeline/image_infotext.h"

#include <cmath>

namespace sdc::pipeline {

GenerationParams describe_image(const ModelBundle& bundle, const GenerationRequest& request,
                                const BatchResult& batch, size_t image) {
  const GeneratedImage& gi = batch.images.at(image);
  GenerationParams p = describe(bundle, request, gi.seed);
  if (gi.subseed) {
    p.variation_seed = *gi.subseed;
    p.variation_strength = request.subseed_strength;
  }
  if (request.seed_resize_from_w > 0 && request.seed_resize_from_h > 0)
    p.seed_resize_from = std::pair{request.seed_resize_from_w, request.seed_resize_from_h};
  if (request.enable_hr) {
    p.denoising_strength = request.hr_denoise;
    if (request.hr_width > 0 || request.hr_height > 0) {
      const auto [w, h] = hires_size(request);
      p.extra.emplace_back("Hires resize", std::to_string(w) + "x" + std::to_string(h));
    } else {
      p.extra.emplace_back("Hires upscale", format_a1111_number(request.hr_scale));
    }
    if (request.hr_steps > 0) p.extra.emplace_back("Hires steps", std::to_string(request.hr_steps));
    p.extra.emplace_back("Hires upscaler", request.hr_upscaler == "latent" ? "Latent" : "Lanczos");
  }
  if (is_inpainting(request) && request.mask_blur > 0)
    p.extra.emplace_back("Mask blur", std::to_string(int(std::lround(request.mask_blur))));
  if (is_inpainting(request) && request.mask_invert)
    p.extra.emplace_back("Mask mode", "Inpaint not masked");
  if (!batch.embeddings_used.empty()) {
    // A1111 drops ':' and ',' from the names so that the list stays parseable.
    std::string hashes;
    for (const auto& [name, hash] : batch.embeddings_used) {
      std::string clean;
      for (char c : name)
        if (c != ':' && c != ',') clean += c;
      hashes += (hashes.empty() ? "" : ", ") + clean + ": " + hash;
    }
    p.extra.emplace_back("TI hashes", hashes);
  }
  return p;
}

}  // namespace sdc::pipeline
