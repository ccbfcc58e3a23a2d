// StableDiffusion: the txt2img / img2img / ControlNet pipeline over one loaded model, as stages a
// caller can watch and stop: prepare inputs (images, hints) -> encode text -> initial latents ->
// denoise loop (the UNet with classifier-free guidance as a batch of 2·B: [uncond…, cond…], as
// diffusers stacks it) -> VAE decode. Every image i of a batch has its own torch-compatible
// generator seeded with seed + i (A1111's convention), drawing in diffusers' order: initial
// latents first, then the sampler's per-step noise. Latents are NCHW throughout; the plans own
// their layout.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "io/image.h"
#include "model/model_loader.h"
#include "pipeline/generation_control.h"
#include "pipeline/generation_request.h"
#include "pipeline/plan_cache.h"

namespace sdc::text {
class ClipTokenizer;
}

namespace sdc::pipeline {

struct GeneratedImage {
  io::Image image;
  int64_t seed = 0;
  std::string parameters;  // A1111 "parameters" text for the PNG
};

struct StageTimings {
  double text_encoder_ms = 0, sampling_ms = 0, vae_decode_ms = 0, vae_encode_ms = 0,
         controlnet_ms = 0;
  int unet_steps = 0;
};

struct BatchResult {
  std::vector<GeneratedImage> images;
  std::vector<float> latents;  // final latents before the VAE, [B,4,h,w] NCHW
  Shape latent_shape;
  StageTimings timings;
  // A Skip or Interrupt stopped the sampler early; the images are decoded from the latents
  // reached by then (A1111 returns those).
  bool interrupted = false;
  int steps_done = 0;
};

class StableDiffusion {
 public:
  // `model` must outlive this object. `model_name` goes into the PNG metadata.
  StableDiffusion(const model::LoadedModel& model, cpu::PlanOptions options,
                  const text::ClipTokenizer& tokenizer, std::string model_name);

  // One batch of request.batch_size images with seeds first_seed, first_seed+1, …
  // The request must have a concrete seed (not -1); it is validated here. The observer's stop
  // token is checked between stages and sampler steps; Cancel throws GenerationCancelled.
  BatchResult generate_batch(const GenerationRequest& request, int64_t first_seed,
                             const GenerationObserver& observer = {});

  PlanCache& plans() { return plans_; }

 private:
  struct Inputs;  // decoded and fitted init image and ControlNet hint
  struct Run;     // one batch's state shared by the stages
  Inputs prepare_inputs(const GenerationRequest& req) const;
  void initial_latents(Run& run, const Inputs& in);
  void denoise(Run& run, const Inputs& in);
  void decode(Run& run);

  const model::LoadedModel& model_;
  PlanCache plans_;
  const text::ClipTokenizer& tokenizer_;
  std::string model_name_;
};

}  // namespace sdc::pipeline
