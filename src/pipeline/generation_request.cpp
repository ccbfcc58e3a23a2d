// Range checks of a GenerationRequest.
#include "pipeline/generation_request.h"

#include <cmath>

#include "common/error.h"
#include "pipeline/compat.h"

namespace sdc::pipeline {
namespace {

std::string num(double v) {
  std::string s = std::to_string(v);
  s.erase(s.find_last_not_of('0') + 1);
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

void check_side(const char* name, int v) {
  if (v % 8 != 0 || v < kMinImageSide || v > kMaxImageSide)
    throw UsageError("", name,
                     "a multiple of 8 from " + std::to_string(kMinImageSide) + " to " +
                         std::to_string(kMaxImageSide),
                     std::to_string(v));
}

void check_fraction(const char* name, double v, bool zero_ok) {
  if (!std::isfinite(v) || v > 1.0 || (zero_ok ? v < 0.0 : v <= 0.0))
    throw UsageError("", name, zero_ok ? "a value in [0, 1]" : "a value in (0, 1]", num(v));
}

}  // namespace

void validate(const GenerationRequest& r) {
  check_side("--width", r.width);
  check_side("--height", r.height);
  if (r.steps < 1 || r.steps > kMaxSteps)
    throw UsageError("", "--steps", "1 to " + std::to_string(kMaxSteps), std::to_string(r.steps));
  if (!std::isfinite(r.cfg_scale) || r.cfg_scale < 0.0f || r.cfg_scale > 100.0f)
    throw UsageError("", "--cfg-scale", "a number from 0 to 100", num(r.cfg_scale));
  if (r.seed < -1 || r.seed > int64_t(0xffffffffffffLL))
    throw UsageError("", "--seed", "-1 (random) or 0 to 2^48-1", std::to_string(r.seed));
  if (r.clip_skip < 1 || r.clip_skip > 12)
    throw UsageError("", "--clip-skip", "1 to 12", std::to_string(r.clip_skip));
  if (r.batch_size < 1 || r.batch_size > 16)
    throw UsageError("", "--batch-size", "1 to 16", std::to_string(r.batch_size));
  if (r.batch_count < 1 || r.batch_count > 10000)
    throw UsageError("", "--batch-count", "1 to 10000", std::to_string(r.batch_count));
  if (is_img2img(r))
    check_fraction("--strength", r.strength, r.img2img_fix_steps && compat_of(r) == Compat::kA1111);
  if (r.decode_with != "vae" && r.decode_with != "taesd")
    throw UsageError("", "--decode-with", "vae or taesd", r.decode_with);
  if (r.encode_with != "vae" && r.encode_with != "taesd")
    throw UsageError("", "--encode-with", "vae or taesd", r.encode_with);
  if (r.vae_tiling &&
      (r.vae_tile_size < 128 || r.vae_tile_size > 2048 || r.vae_tile_size % 64 != 0))
    throw UsageError("", "--vae-tile-size", "a multiple of 64 from 128 to 2048 (pixels)",
                     std::to_string(r.vae_tile_size));
  if (r.preview_method != "auto" && r.preview_method != "cheap" && r.preview_method != "taesd")
    throw UsageError("", "--preview-method", "auto, cheap or taesd", r.preview_method);
  if (r.resize_mode != "resize" && r.resize_mode != "crop" && r.resize_mode != "fill")
    throw UsageError("", "--resize-mode", "one of resize, crop, fill", r.resize_mode);
  if (r.control_preprocess != "none" && r.control_preprocess != "canny")
    throw UsageError("", "--control-preprocess", "one of none, canny", r.control_preprocess);
  if (!std::isfinite(r.control_scale) || r.control_scale < 0.0f || r.control_scale > 10.0f)
    throw UsageError("", "--control-scale", "a number from 0 to 10", num(r.control_scale));
  check_fraction("--control-start", r.control_start, true);
  check_fraction("--control-end", r.control_end, true);
  if (r.control_start > r.control_end)
    throw UsageError("", "--control-start", "at most --control-end (" + num(r.control_end) + ")",
                     num(r.control_start));
  if (!(r.canny_low >= 0 && r.canny_low <= r.canny_high))
    throw UsageError("", "--canny-low", "0 <= low <= --canny-high", num(r.canny_low));
  if (is_inpainting(r) && !is_img2img(r))
    throw UsageError("", "--mask", "an --init-image to inpaint", "none");
  if (!(r.mask_blur >= 0.0f && r.mask_blur <= 64.0f))
    throw UsageError("", "--mask-blur", "a sigma from 0 (none) to 64 pixels", num(r.mask_blur));
  if (r.mask_blur_y && !(*r.mask_blur_y >= 0.0f && *r.mask_blur_y <= 64.0f))
    throw UsageError("", "--mask-blur-y", "a sigma from 0 (none) to 64 pixels",
                     num(*r.mask_blur_y));
  if (masked_content_index(r.masked_content) < 0)
    throw UsageError("", "--masked-content", "one of fill, original, latent-noise, latent-nothing",
                     r.masked_content);
  if (r.inpaint_padding < 0 || r.inpaint_padding > kMaxImageSide)
    throw UsageError("", "--inpaint-padding", "0 to " + std::to_string(kMaxImageSide) + " pixels",
                     std::to_string(r.inpaint_padding));
  if (is_inpainting(r) && compat_of(r) == Compat::kDiffusers) {
    // diffusers' StableDiffusionInpaintPipeline has none of A1111's extras.
    if (r.inpaint_full_res)
      throw UsageError("", "--inpaint-full-res", "--compat a1111 (diffusers has no such option)",
                       "--compat diffusers");
    if (masked_content_index(r.masked_content) != 1)
      throw UsageError("", "--masked-content", "original under --compat diffusers",
                       r.masked_content);
    if (r.mask_blur_y && *r.mask_blur_y != r.mask_blur)
      throw UsageError("", "--mask-blur-y", "the same as --mask-blur under --compat diffusers",
                       num(*r.mask_blur_y));
  }
  if (r.enable_hr) {
    if (is_img2img(r)) throw UsageError("", "--hires-scale", "a txt2img run", "an --init-image");
    if (!std::isfinite(r.hr_scale) || r.hr_scale < 1.0 || r.hr_scale > 8.0)
      throw UsageError("", "--hires-scale", "a factor from 1 to 8", num(r.hr_scale));
    const auto [w, h] = hires_size(r);
    check_side("--hires-size", w);
    check_side("--hires-size", h);
    if (r.hr_steps < 0 || r.hr_steps > kMaxSteps)
      throw UsageError("", "--hires-steps", "0 (as the first pass) to " + std::to_string(kMaxSteps),
                       std::to_string(r.hr_steps));
    // 0: the upscaled first pass decoded as it is (A1111's zero-step schedule).
    check_fraction("--hires-denoise", r.hr_denoise, compat_of(r) == Compat::kA1111);
    if (r.hr_upscaler != "latent" && r.hr_upscaler != "lanczos")
      throw UsageError("", "--hires-upscaler", "one of latent, lanczos", r.hr_upscaler);
  }
  check_fraction("--subseed-strength", r.subseed_strength, true);
  if (r.subseed < -1 || r.subseed > int64_t(0xffffffffffffLL))
    throw UsageError("", "--subseed", "-1 (random) or 0 to 2^48-1", std::to_string(r.subseed));
  const bool resize_w = r.seed_resize_from_w > 0, resize_h = r.seed_resize_from_h > 0;
  if (r.seed_resize_from_w < 0 || r.seed_resize_from_h < 0 || resize_w != resize_h ||
      (resize_w && (r.seed_resize_from_w < 8 || r.seed_resize_from_h < 8 ||
                    r.seed_resize_from_w > kMaxImageSide || r.seed_resize_from_h > kMaxImageSide)))
    throw UsageError(
        "", "--seed-resize-from",
        "a width and height from 8 to " + std::to_string(kMaxImageSide) + " (0 0: off)",
        std::to_string(r.seed_resize_from_w) + " " + std::to_string(r.seed_resize_from_h));
  if (!(r.canny_blur >= 0.0f && r.canny_blur <= 20.0f))
    throw UsageError("", "--canny-blur", "a sigma from 0 (no blur) to 20 pixels",
                     num(r.canny_blur));
}

std::pair<int, int> hires_size(const GenerationRequest& r) {
  const int w = r.hr_width > 0 ? r.hr_width : int(double(r.width) * r.hr_scale);
  const int h = r.hr_height > 0 ? r.hr_height : int(double(r.height) * r.hr_scale);
  return {w / 8 * 8, h / 8 * 8};
}

int masked_content_index(const std::string& name) {
  static const char* const kNames[][2] = {{"fill", "fill"},
                                          {"original", "original"},
                                          {"latent-noise", "latent noise"},
                                          {"latent-nothing", "latent nothing"}};
  for (int i = 0; i < 4; ++i)
    if (name == kNames[i][0] || name == kNames[i][1]) return i;
  return -1;
}

int64_t batch_first_index(const GenerationRequest& r, int64_t first_seed) {
  return r.seed >= 0 && first_seed >= r.seed ? first_seed - r.seed : 0;
}

}  // namespace sdc::pipeline
