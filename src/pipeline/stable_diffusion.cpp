// The generation pipeline: text conditioning, the sampler loop around the UNet (+ ControlNet),
// VAE encode for img2img and VAE decode, each through a cached plan.
#include "pipeline/stable_diffusion.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/error.h"
#include "common/stopwatch.h"
#include "graph/builders/builders.h"
#include "imaging/canny.h"
#include "imaging/image_ops.h"
#include "pipeline/layout.h"
#include "pipeline/text_conditioning.h"
#include "sampling/rng/torch_generator.h"
#include "sampling/sampler.h"

namespace sdc::pipeline {
using imaging::canny;
using imaging::fit_image;
using imaging::flatten_alpha;
using imaging::gaussian_blur;
using imaging::image_from_signed_tensor;
using imaging::image_to_signed_tensor;
using imaging::image_to_unit_tensor;
using imaging::parse_resize_mode;
using imaging::ResizeMode;
using sampling::Denoiser;
using sampling::noise_per_image;
using sampling::parse_sampler;
using sampling::parse_schedule;
using sampling::Sampler;
using sampling::SamplerSettings;
using sampling::StepProgress;
using sampling::TorchGenerator;
using text::ClipTokenizer;
namespace {

// Each image of a batch draws from its own generator: latents of image i are the i-th slice.
std::vector<float> draw_batch(std::vector<TorchGenerator>& gens, size_t per_image) {
  std::vector<float> out(gens.size() * per_image);
  for (size_t i = 0; i < gens.size(); ++i) gens[i].randn(out.data() + i * per_image, per_image);
  return out;
}

}  // namespace

StableDiffusion::StableDiffusion(const model::LoadedModel& model, cpu::PlanOptions options,
                                 const ClipTokenizer& tokenizer, std::string model_name)
    : model_(model),
      plans_(model, options),
      tokenizer_(tokenizer),
      model_name_(std::move(model_name)) {}

BatchResult StableDiffusion::generate_batch(const GenerationRequest& req, int64_t first_seed,
                                            const ProgressCallback& on_step) {
  validate(req);
  if (first_seed < 0)
    throw UsageError("", "seed", "a concrete seed (0 or more)", std::to_string(first_seed));
  const bool img2img = !req.init_image.empty();
  const bool control = !req.control_image.empty();
  if (control && !model_.controlnet)
    throw UsageError("", "--control-image",
                     "a ControlNet (--control-net FILE or one bundled in the model)", "none");
  SamplerSettings settings;
  settings.sampler = parse_sampler(req.sampler);
  settings.schedule = parse_schedule(req.scheduler);
  settings.steps = req.steps;
  settings.strength = img2img ? double(req.strength) : 1.0;
  Sampler sampler(settings);

  const int B = req.batch_size;
  const int h = req.height / 8, w = req.width / 8, c = model_.unet.in_channels;
  const size_t per_image = size_t(c) * size_t(h) * size_t(w);
  const bool cfg = req.cfg_scale > 1.0f;  // diffusers: guidance only when the scale exceeds 1
  BatchResult result;
  result.latent_shape = {B, c, h, w};

  // Images first: a bad file is refused before any network is compiled or run.
  io::Image init, hint;
  if (img2img) {
    // A1111 composites transparent pixels onto white before resizing.
    init = io::read_image(req.init_image);
    flatten_alpha(init);
    init = fit_image(init, req.width, req.height, parse_resize_mode(req.resize_mode));
  }
  if (control) {
    hint = io::read_image(req.control_image);
    flatten_alpha(hint);
    hint = fit_image(hint, req.width, req.height, ResizeMode::Crop);
    if (req.control_preprocess == "canny")
      hint = canny(gaussian_blur(hint, req.canny_blur), req.canny_low, req.canny_high);
    if (!req.control_save_hint.empty()) io::write_png(req.control_save_hint, hint);
  }

  // Text.
  Stopwatch clock;
  PromptContext ctx =
      encode_prompts(plans_, tokenizer_, req.prompt, req.negative_prompt, req.clip_skip, cfg);
  result.timings.text_encoder_ms = clock.ms();

  std::vector<TorchGenerator> gens;
  for (int i = 0; i < B; ++i) gens.emplace_back(uint64_t(first_seed + i));

  // Start latents.
  std::vector<float> latents;
  int first_step = 0;
  if (img2img) {
    clock.reset();
    cpu::Plan& enc = plans_.vae_encoder(1, h, w);
    nchw_to_nhwc(image_to_signed_tensor(init).data(), enc.input_f32("image"), 1, 3, req.height,
                 req.width);
    enc.run();
    const float* mean = enc.output("mean");
    const float* logvar = enc.output("logvar");
    // latent_dist.sample(generator) per image, then × scaling factor (diffusers order: this
    // draw comes before the noise draw).
    std::vector<float> init_latents(B * per_image);
    std::vector<float> mean_nchw(per_image), logvar_nchw(per_image);
    nhwc_to_nchw(mean, mean_nchw.data(), 1, c, h, w);
    nhwc_to_nchw(logvar, logvar_nchw.data(), 1, c, h, w);
    for (int i = 0; i < B; ++i) {
      std::vector<float> eps = gens[size_t(i)].randn(per_image);
      for (size_t k = 0; k < per_image; ++k) {
        const float lv = std::clamp(logvar_nchw[k], -30.0f, 20.0f);
        init_latents[size_t(i) * per_image + k] =
            (mean_nchw[k] + std::exp(0.5f * lv) * eps[k]) * model_.vae.scaling_factor;
      }
    }
    std::vector<float> noise = draw_batch(gens, per_image);
    first_step = sampler.img2img_first_step();
    latents = sampler.img2img_latents(init_latents, noise);
    result.timings.vae_encode_ms = clock.ms();
  } else {
    latents = sampler.txt2img_latents(draw_batch(gens, per_image));
  }

  // ControlNet hint (same for every image and both CFG halves).
  const int unet_batch = cfg ? 2 * B : B;
  cpu::Plan& unet = plans_.unet(unet_batch, h, w, ctx.tokens, control);
  cpu::Plan* cnet = nullptr;
  if (control) {
    cnet = &plans_.controlnet(unet_batch, h, w, ctx.tokens);
    float* dst = cnet->input_f32("hint");
    const size_t hint_size = size_t(req.width) * size_t(req.height) * 3;
    nchw_to_nhwc(image_to_unit_tensor(hint).data(), dst, 1, 3, req.height, req.width);
    for (int i = 1; i < unet_batch; ++i)
      std::memcpy(dst + i * hint_size, dst, hint_size * sizeof(float));
  }

  // Context is fixed for the whole run: fill it once. Rows: [uncond × B, cond × B].
  const size_t ctx_size = size_t(ctx.tokens) * size_t(ctx.channels);
  auto fill_context = [&](float* dst) {
    for (int i = 0; i < unet_batch; ++i) {
      const auto& src = (cfg && i < B) ? ctx.uncond : ctx.cond;
      std::memcpy(dst + size_t(i) * ctx_size, src.data(), ctx_size * sizeof(float));
    }
  };
  fill_context(unet.input_f32("context"));
  if (cnet) fill_context(cnet->input_f32("context"));

  const int total_steps = req.steps - first_step;
  int step_index = 0;
  std::vector<float> eps_nhwc(size_t(unet_batch) * per_image);
  Denoiser denoise = [&](std::span<const float> x_in, float t, std::span<float> eps_out) {
    float* sample = unet.input_f32("sample");
    nchw_to_nhwc(x_in.data(), sample, B, c, h, w);
    if (cfg) std::memcpy(sample + B * per_image, sample, B * per_image * sizeof(float));
    float* ts = unet.input_f32("timestep");
    std::fill(ts, ts + unet_batch, t);
    if (cnet) {
      Stopwatch cn_clock;
      std::memcpy(cnet->input_f32("sample"), sample,
                  size_t(unet_batch) * per_image * sizeof(float));
      std::fill(cnet->input_f32("timestep"), cnet->input_f32("timestep") + unet_batch, t);
      // The ControlNet applies during [control_start, control_end] of the steps, as A1111 does.
      const float frac = float(step_index + first_step) / float(req.steps);
      const bool active = frac >= req.control_start && frac <= req.control_end;
      cnet->input_f32("scale")[0] = active ? req.control_scale : 0.0f;
      cnet->run();
      for (int i = 0; i < 12; ++i) {
        const std::string in = graph::control_down_name(i), out = graph::controlnet_down_name(i);
        const size_t n = size_t(shape_numel(cnet->output_shape(out)));
        std::memcpy(unet.input_f32(in), cnet->output(out), n * sizeof(float));
      }
      const size_t n = size_t(shape_numel(cnet->output_shape(graph::kControlNetMid)));
      std::memcpy(unet.input_f32(graph::kControlMid), cnet->output(graph::kControlNetMid),
                  n * sizeof(float));
      result.timings.controlnet_ms += cn_clock.ms();
    }
    unet.run();
    const float* out = unet.output("eps");
    if (cfg) {
      const float g = req.cfg_scale;
      const size_t half = size_t(B) * per_image;
      for (size_t k = 0; k < half; ++k) eps_nhwc[k] = out[k] + g * (out[half + k] - out[k]);
      nhwc_to_nchw(eps_nhwc.data(), eps_out.data(), B, c, h, w);
    } else {
      nhwc_to_nchw(out, eps_out.data(), B, c, h, w);
    }
    ++step_index;
    ++result.timings.unet_steps;
  };

  clock.reset();
  latents = sampler.run(std::move(latents), first_step, denoise, noise_per_image(gens),
                        [&](const StepProgress& p) {
                          if (on_step) on_step(p.step, total_steps);
                        });
  result.timings.sampling_ms = clock.ms() - result.timings.controlnet_ms;

  // Decode.
  clock.reset();
  cpu::Plan& dec = plans_.vae_decoder(1, h, w);
  const Shape img_shape = dec.output_shape("image");  // [1, H, W, 3]
  std::vector<float> chw(size_t(shape_numel(img_shape)));
  for (int i = 0; i < B; ++i) {
    float* in = dec.input_f32("latent");
    std::vector<float> scaled(per_image);
    for (size_t k = 0; k < per_image; ++k)
      scaled[k] = latents[size_t(i) * per_image + k] / model_.vae.scaling_factor;
    nchw_to_nhwc(scaled.data(), in, 1, c, h, w);
    dec.run();
    GeneratedImage gi;
    nhwc_to_nchw(dec.output("image"), chw.data(), 1, 3, img_shape[1], img_shape[2]);
    gi.image = image_from_signed_tensor(chw.data(), int(img_shape[2]), int(img_shape[1]));
    gi.seed = first_seed + i;
    result.images.push_back(std::move(gi));
  }
  result.timings.vae_decode_ms = clock.ms();
  result.latents = std::move(latents);
  return result;
}

}  // namespace sdc::pipeline
