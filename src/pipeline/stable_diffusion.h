// StableDiffusion: the txt2img / img2img / ControlNet pipeline over one loaded model. Prompts go
// through the text encoder, the sampler loop calls the UNet (classifier-free guidance as a batch
// of 2·B: [uncond…, cond…], as diffusers stacks it), the VAE decodes. Every image i of a batch
// has its own torch-compatible generator seeded with seed + i (A1111's convention), drawing in
// diffusers' order: initial latents first, then the sampler's per-step noise.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "io/image.h"
#include "model/model_loader.h"
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
};

// Called after each sampler step: (step done, total steps).
using ProgressCallback = std::function<void(int, int)>;

class StableDiffusion {
 public:
  // `model` must outlive this object. `model_name` goes into the PNG metadata.
  StableDiffusion(const model::LoadedModel& model, cpu::PlanOptions options,
                  const text::ClipTokenizer& tokenizer, std::string model_name);

  // One batch of request.batch_size images with seeds first_seed, first_seed+1, …
  // The request must be validated and have a concrete seed (not -1).
  BatchResult generate_batch(const GenerationRequest& request, int64_t first_seed,
                             const ProgressCallback& on_step = {});

  PlanCache& plans() { return plans_; }

 private:
  const model::LoadedModel& model_;
  PlanCache plans_;
  const text::ClipTokenizer& tokenizer_;
  std::string model_name_;
};

}  // namespace sdc::pipeline
