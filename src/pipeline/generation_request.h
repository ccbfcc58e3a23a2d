// GenerationRequest: everything one `sdc generate` call (or, later, one HTTP request) asks for,
// with A1111's defaults, and its validation — the single place where ranges are checked so the
// CLI and the server refuse bad values with the same one-line messages.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "io/image.h"

namespace sdc::pipeline {

struct GenerationRequest {
  std::string prompt;
  std::string negative_prompt;
  int width = 512, height = 512;
  int steps = 20;
  float cfg_scale = 7.0f;
  // Whose numbers to reproduce: "a1111" (A1111/Forge's samplers, schedules, RNG and 8-bit
  // conversion; the default) or "diffusers" (diffusers' pipelines). See pipeline/a1111_request.h.
  std::string compat = "a1111";
  // a1111: any A1111 sampler name, alias or id ("DPM++ 2M SDE", "k_euler_a", "dpmpp_2m_sde"),
  // optionally with a scheduler suffix ("DPM++ 2M Karras"). diffusers: lcm | ddim | euler |
  // euler_a | dpmpp_2m.
  std::string sampler = "euler_a";
  // a1111: any A1111 scheduler id or label ("automatic", "Karras", "sgm_uniform", …);
  // diffusers: automatic (= the scheduler's own spacing) | karras.
  std::string scheduler = "automatic";
  // Random source: "cpu" (torch.Generator("cpu")) or "nv" (A1111's NV: torch.randn on an NVIDIA
  // GPU); empty = nv for a1111 (A1111's default GPU source on the GPUs most users have), cpu for
  // diffusers.
  std::string rng;
  // A1111 options (a1111 only): eta (ancestral/SDE default 1, DDIM 0), Karras churn, ENSD,
  // schedule sigma range and rho (0 = the model's / the scheduler's default).
  std::optional<double> eta;
  double s_churn = 0.0, s_tmin = 0.0, s_tmax = 0.0, s_noise = 1.0;
  int64_t ensd = 0;
  double sigma_min = 0.0, sigma_max = 0.0, rho = 0.0;
  int64_t seed = -1;    // -1: pick one at random and report it
  int clip_skip = 1;    // 1 = last layer; 2 = penultimate + final LayerNorm
  int batch_size = 1;   // images per UNet run
  int batch_count = 1;  // runs

  // img2img
  std::string init_image;  // path; empty for txt2img (unless init_image_data is set)
  std::optional<io::Image> init_image_data;  // already decoded (the server); wins over the path
  double strength = 0.75;            // 0 < strength <= 1 (double: int(steps·strength) as Python)
  std::string resize_mode = "crop";  // resize | crop | fill
  // A1111's img2img_fix_steps (always on for the hires second pass): run exactly `steps` steps of
  // a schedule made for int(steps / min(strength, 0.999)); strength 0 then runs none.
  bool img2img_fix_steps = false;

  // img2img from latents instead of an image ([batch_size, 4, height/8, width/8], already ×
  // the VAE scaling factor): no VAE encode and no posterior draw (hires fix's second pass).
  std::optional<std::vector<float>> init_latents_data;

  // Hires fix (txt2img, A1111): a first pass at width × height, the result upscaled to the hires
  // size, then a second pass as img2img of it at hr_denoise with the same seeds.
  bool enable_hr = false;
  double hr_scale = 2.0;               // used when hr_width/hr_height are 0
  int hr_width = 0, hr_height = 0;     // --hires-size
  int hr_steps = 0;                    // 0: as many as the first pass
  double hr_denoise = 0.7;             // the second pass's strength
  std::string hr_upscaler = "latent";  // latent (bilinear on latents) | lanczos (on pixels)

  // Which autoencoder turns latents into the image and the init image into latents: "vae" (the
  // model's) or "taesd" (the Tiny AutoEncoder loaded with --taesd or bundled by convert: ~1/18
  // of the VAE decoder's work, a slightly softer image). TAESD takes the UNet's latents as they are
  // and encodes without a posterior draw (diffusers' AutoencoderTiny, A1111's "TAESD" methods).
  std::string decode_with = "vae";
  std::string encode_with = "vae";
  // Live previews (when an observer asks for them): "cheap" = a fixed linear map of the latents
  // to RGB at 1/8 size (A1111's "Approx cheap"); "taesd" = the TAESD decoder at full size
  // (A1111's "TAESD"); "auto" = taesd when the model has a TAESD decoder, else cheap.
  std::string preview_method = "auto";
  // VAE tiling: decode and encode in overlapping tiles of vae_tile_size pixels (a multiple of 64,
  // 128–2048; a quarter overlap, blended) when the image is larger than one tile. Less memory
  // for large images; seams are blended, GroupNorm/attention see one tile at a time.
  bool vae_tiling = false;
  int vae_tile_size = 512;

  // Inpainting (with an init image): white (>= 128) = repaint, black = keep.
  std::string mask;                    // path
  std::optional<io::Image> mask_data;  // already decoded (the server); wins over the path
  bool mask_invert = false;            // A1111 "inpainting mask invert"
  float mask_blur = 0.0f;              // A1111 "mask blur": Gaussian sigma on the mask, pixels
  // A1111's img2img-with-mask (--compat a1111 only; diffusers' pipeline has none of these):
  std::optional<float> mask_blur_y;  // the vertical sigma when it differs (A1111's mask_blur_y)
  bool mask_round = true;            // latent and conditioning masks rounded to 0/1 (mask_round)
  bool inpaint_full_res = false;     // "Only masked": generate the mask's surroundings at W×H
  int inpaint_padding = 32;          // pixels around the mask's box ("Masked area padding")
  // What the masked region starts from: fill (colours spread in from around it), original,
  // latent-noise, latent-nothing (A1111's inpainting_fill 0-3).
  std::string masked_content = "original";

  // ControlNet
  std::string control_image;                    // path
  std::optional<io::Image> control_image_data;  // already decoded (the server); wins over the path
  float control_scale = 1.0f;
  float control_start = 0.0f, control_end = 1.0f;
  std::string control_preprocess = "none";  // none | canny
  float canny_low = 100.f, canny_high = 200.f;
  float canny_blur = 0.f;  // Gaussian sigma in pixels before the edges; 0: none (as the annotator)
  std::string control_save_hint;  // write the hint the ControlNet was given (after preprocessing)

  // A1111 variation seeds: image i's noise is slerp(subseed_strength, noise(seed), noise(subseed
  // + i)); with a strength every image of the run keeps `seed`. -1: a random subseed.
  int64_t subseed = -1;
  double subseed_strength = 0.0;  // [0, 1]; 0: no variation
  // "Resize seed from": draw the noise as for this size and centre it (0 0: off).
  int seed_resize_from_w = 0, seed_resize_from_h = 0;

  // Whether the user set these explicitly (a compiled model's recommended defaults apply
  // otherwise).
  bool sampler_set = false, steps_set = false, cfg_set = false, scheduler_set = false;
};

inline constexpr int kMaxImageSide = 2048;
inline constexpr int kMinImageSide = 64;
inline constexpr int kMaxSteps = 1000;

// Throws sdc::UsageError naming the field, the expected range and the value found.
void validate(const GenerationRequest& r);

// Image i of the batch whose first image has seed `first_seed`: its run-wide index is
// first_seed − request.seed + i (batch b of a run starts at seed + b·batch_size).
int64_t batch_first_index(const GenerationRequest& r, int64_t first_seed);

inline bool is_img2img(const GenerationRequest& r) {
  return r.init_image_data.has_value() || !r.init_image.empty() || r.init_latents_data.has_value();
}
// The hires size: --hires-size, else int(side · scale) (A1111), each floored to a multiple of 8.
std::pair<int, int> hires_size(const GenerationRequest& r);
inline bool is_inpainting(const GenerationRequest& r) {
  return r.mask_data.has_value() || !r.mask.empty();
}
// A1111's inpainting_fill index of masked_content (0 fill … 3 latent nothing); -1 when unknown.
int masked_content_index(const std::string& name);
inline bool uses_control(const GenerationRequest& r) {
  return r.control_image_data.has_value() || !r.control_image.empty();
}

}  // namespace sdc::pipeline
