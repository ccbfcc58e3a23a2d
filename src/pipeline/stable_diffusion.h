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
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "io/image.h"
#include "model/model_loader.h"
#include "model/textual_inversion.h"
#include "pipeline/generation_control.h"
#include "pipeline/generation_request.h"
#include "pipeline/plan_cache.h"
#include "pipeline/text_encoder_memo.h"
#include "text/embedding_triggers.h"
#include "text/tokenizer.h"

namespace sdc::sampling {
class TorchGenerator;
}

namespace sdc::pipeline {

struct GeneratedImage {
  io::Image image;
  int64_t seed = 0;
  std::optional<int64_t> subseed;  // with a variation strength (A1111's "Variation seed")
  std::string parameters;          // A1111 "parameters" text for the PNG
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
  // What the model saw: the initial noise draw [B,4,h,w] (before any sigma scaling; for img2img
  // the draw that noises the init latents) and the UNet's context rows per image, [tokens,
  // width] each: cond, and uncond when classifier-free guidance is on (else empty).
  std::vector<float> noise;
  std::vector<float> cond, uncond;
  int context_tokens = 0, context_width = 0;
  // Textual-inversion embeddings the prompts used: (trigger, A1111 short hash), first use first.
  std::vector<std::pair<std::string, std::string>> embeddings_used;
  StageTimings timings;
  // A Skip or Interrupt stopped the sampler early; the images are decoded from the latents
  // reached by then (A1111 returns those).
  bool interrupted = false;
  int steps_done = 0;
  // An inpainting UNet got A1111's conditioning (its info JSON's is_using_inpainting_conditioning).
  bool inpainting_conditioning = false;
};

// Components a batch may drop once it is done with them, because the caller will not need them
// again (a process that ends after this batch): the text encoder after the prompts are encoded,
// the UNet and ControlNet before the VAE decodes. Peak memory is then the largest component's
// footprint, not their sum. A later batch that does need one compiles it again.
struct ReleaseAfterUse {
  bool text_encoder = false, denoiser = false;
};

class StableDiffusion {
 public:
  // `model` must outlive this object. `model_name` goes into the PNG metadata. vae_int8: the VAE
  // decoder runs W8A8 (PlanCache).
  StableDiffusion(const model::LoadedModel& model, cpu::PlanOptions options,
                  const text::ClipTokenizer& tokenizer, std::string model_name,
                  bool vae_int8 = false);

  // One batch of request.batch_size images with seeds first_seed, first_seed+1, … (with a
  // variation strength: every image keeps request.seed and takes subseed + run-wide index, the
  // index being first_seed − request.seed + i; see batch_first_index).
  // The request must have a concrete seed (not -1); it is validated here. The observer's stop
  // token is checked between stages and sampler steps; Cancel throws GenerationCancelled.
  BatchResult generate_batch(const GenerationRequest& request, int64_t first_seed,
                             const GenerationObserver& observer = {}, ReleaseAfterUse release = {});

  PlanCache& plans() { return plans_; }
  // The text encoder's outputs kept for prompts encoded again (cleared by use_embeddings).
  const TextEncoderMemo& text_encoder_memo() const { return text_memo_; }

  // Textual-inversion embeddings for every later batch: their trigger words in prompts become
  // their vectors (the text encoder's table gets their rows). Replaces any earlier library.
  void use_embeddings(const model::EmbeddingLibrary& library);

 private:
  struct Inputs;  // decoded and fitted init image and ControlNet hint
  struct Run;     // one batch's state shared by the stages
  using UnetEvaluation = std::function<void(std::span<const float> x_in, float t)>;
  Inputs prepare_inputs(const GenerationRequest& req) const;
  void initial_latents(Run& run, const Inputs& in);
  void a1111_initial_latents(Run& run, const Inputs& in);
  void a1111_inpaint_latents(Run& run, const Inputs& in, std::vector<float>& init_latents,
                             sampling::TorchGenerator& global);
  std::vector<float> a1111_posterior_sample(Run& run, std::span<const float> image,
                                            sampling::TorchGenerator& global);
  // The VAE posterior of a [-1,1] image of the run's size (tiled when the request asks).
  void encode_signed(Run& run, std::span<const float> image, std::vector<float>& mean,
                     std::vector<float>& logvar);
  bool tiled(const Run& run) const;
  void denoise(Run& run, const Inputs& in);
  void a1111_denoise(Run& run, const UnetEvaluation& evaluate, const std::vector<float>& eps_all,
                     int total);
  void decode(Run& run);  // VAE (tiled or not) or TAESD, as the request says

  const model::LoadedModel& model_;
  PlanCache plans_;
  const text::ClipTokenizer& tokenizer_;
  std::string model_name_;
  std::unique_ptr<text::EmbeddingTriggers> triggers_;
  std::vector<std::pair<std::string, std::string>> embedding_hashes_;  // by trigger index
  TextEncoderMemo text_memo_;
};

}  // namespace sdc::pipeline
