// Two-pass txt2img over the staged pipeline.
#include "pipeline/hires_fix.h"

#include "common/error.h"
#include "imaging/image_ops.h"
#include "imaging/latent_resize.h"

namespace sdc::pipeline {
namespace {

void add_timings(StageTimings& a, const StageTimings& b) {
  a.text_encoder_ms += b.text_encoder_ms;
  a.sampling_ms += b.sampling_ms;
  a.vae_decode_ms += b.vae_decode_ms;
  a.vae_encode_ms += b.vae_encode_ms;
  a.controlnet_ms += b.controlnet_ms;
  a.unet_steps += b.unet_steps;
}

void append(BatchResult& out, BatchResult&& r) {
  for (auto& im : r.images) out.images.push_back(std::move(im));
  out.latents.insert(out.latents.end(), r.latents.begin(), r.latents.end());
  out.noise.insert(out.noise.end(), r.noise.begin(), r.noise.end());
  out.cond.insert(out.cond.end(), r.cond.begin(), r.cond.end());
  out.uncond.insert(out.uncond.end(), r.uncond.begin(), r.uncond.end());
  out.context_tokens = r.context_tokens;
  out.context_width = r.context_width;
  out.embeddings_used = r.embeddings_used;
  out.interrupted = out.interrupted || r.interrupted;
  out.steps_done = r.steps_done;
  add_timings(out.timings, r.timings);
}

}  // namespace

BatchResult generate_hires(StableDiffusion& sd, const GenerationRequest& req, int64_t first_seed,
                           const GenerationObserver& observer, ReleaseAfterUse release) {
  if (!req.enable_hr) throw Error("", "hires fix", "a request with enable_hr", "none");
  validate(req);
  GenerationRequest base = req;
  base.enable_hr = false;
  BatchResult first = sd.generate_batch(base, first_seed, observer);
  if (first.interrupted) return first;

  const auto [width, height] = hires_size(req);
  GenerationRequest second = base;
  second.width = width;
  second.height = height;
  second.steps = req.hr_steps > 0 ? req.hr_steps : req.steps;
  second.strength = req.hr_denoise;
  second.img2img_fix_steps = true;  // A1111 passes the pass's steps explicitly
  const int B = req.batch_size;
  if (req.hr_upscaler == "latent") {
    const Shape& s = first.latent_shape;  // [B, 4, h, w]
    second.init_latents_data = imaging::resize_latents_bilinear(
        first.latents, int(s[0]), int(s[1]), int(s[2]), int(s[3]), height / 8, width / 8);
    BatchResult r = sd.generate_batch(second, first_seed, observer, release);
    add_timings(r.timings, first.timings);
    return r;
  }
  // Pixels: each image is its own init image, so each goes through img2img alone; image i keeps
  // its seed (and its place in the run for a variation subseed).
  BatchResult out;
  add_timings(out.timings, first.timings);
  for (int i = 0; i < B; ++i) {
    GenerationRequest one = second;
    one.batch_size = 1;
    one.init_image_data =
        imaging::resize(first.images[size_t(i)].image, width, height, imaging::Filter::Lanczos);
    append(out, sd.generate_batch(one, first_seed + i, observer,
                                  i + 1 == B ? release : ReleaseAfterUse{}));
    if (out.interrupted) break;
  }
  out.latent_shape = {int64_t(out.images.size()), first.latent_shape[1], height / 8, width / 8};
  return out;
}

}  // namespace sdc::pipeline
