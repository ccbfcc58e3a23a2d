// Per-image infotext fields.
#include "pipeline/image_infotext.h"

#include <cmath>

#include "pipeline/compat.h"

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
  if (is_inpainting(request)) {
    // In the order A1111's img2img init adds them; "Mask blur" only when x and y agree (its
    // mask_blur property is None otherwise, and None values are dropped).
    if (request.mask_invert) p.extra.emplace_back("Mask mode", "Inpaint not masked");
    const float blur_y = request.mask_blur_y.value_or(request.mask_blur);
    if ((request.mask_blur > 0 || blur_y > 0) && blur_y == request.mask_blur)
      p.extra.emplace_back("Mask blur",  // an int in A1111
                           request.mask_blur == std::floor(request.mask_blur)
                               ? std::to_string(int(request.mask_blur))
                               : format_a1111_number(request.mask_blur));
    if (request.inpaint_full_res && compat_of(request) == Compat::kA1111) {
      p.extra.emplace_back("Inpaint area", "Only masked");
      p.extra.emplace_back("Masked area padding", std::to_string(request.inpaint_padding));
    }
    static const char* const kContent[] = {"fill", "", "latent noise", "latent nothing"};
    const int fill = masked_content_index(request.masked_content);
    if (fill >= 0 && fill != 1) p.extra.emplace_back("Masked content", kContent[fill]);
  }
  if (batch.inpainting_conditioning) p.conditional_mask_weight = 1.0;
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
