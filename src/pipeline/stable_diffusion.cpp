// The generation pipeline as stages over cached plans: inputs (init image, ControlNet hint) ->
// text conditioning -> initial latents (noise, or VAE-encoded init + noise) -> the sampler loop
// around the UNet (+ ControlNet), watched and stoppable between steps -> VAE decode.
#include "pipeline/stable_diffusion.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "common/error.h"
#include "common/stopwatch.h"
#include "graph/builders/builders.h"
#include "imaging/canny.h"
#include "imaging/image_ops.h"
#include "imaging/inpaint_mask.h"
#include "pipeline/a1111_inpainting.h"
#include "pipeline/compat.h"
#include "pipeline/control_residuals.h"
#include "pipeline/inpainting.h"
#include "pipeline/taesd_codec.h"
#include "pipeline/text_conditioning.h"
#include "pipeline/vae_tiling.h"
#include "sampling/a1111_sampler.h"
#include "sampling/rng/image_rng.h"
#include "sampling/rng/torch_generator.h"
#include "sampling/sampler.h"
#include "sampling/torch_float.h"
#include "sampling/variation_noise.h"

namespace sdc::pipeline {
using imaging::ResizeMode;

struct StableDiffusion::Inputs {
  std::optional<io::Image> init;              // fitted to the output size, alpha flattened
  std::optional<imaging::InpaintMask> mask;   // binarised at the output size (diffusers)
  std::optional<A1111Inpaint> a1111_inpaint;  // A1111's masks, crop and overlay
  std::optional<io::Image> hint;              // fitted and preprocessed
};

struct StableDiffusion::Run {
  Run(const GenerationRequest& r, const GenerationObserver& o, int64_t seed, int channels)
      : req(r),
        obs(o),
        first_seed(seed),
        compat(compat_of(r)),
        B(r.batch_size),
        c(channels),
        h(r.height / 8),
        w(r.width / 8),
        per_image(size_t(c) * size_t(h) * size_t(w)),
        cfg(uses_cfg(r)) {
    if (compat == Compat::kA1111)
      a1111.emplace(a1111_settings(r));
    else
      sampler.emplace(diffusers_settings(r));
    result.latent_shape = {B, c, h, w};
  }

  const GenerationRequest& req;
  const GenerationObserver& obs;
  int64_t first_seed;
  Compat compat;
  std::optional<sampling::Sampler> sampler;     // --compat diffusers
  std::optional<sampling::A1111Sampler> a1111;  // --compat a1111
  std::optional<sampling::ImageRng> image_rng;  // every image's noise, both conventions
  int B, c, h, w;
  size_t per_image;
  bool cfg;
  sampling::VariationSeeds seeds;
  std::optional<InpaintState> inpaint;
  const A1111Inpaint* a1111_inpaint = nullptr;  // A1111 inpainting: the overlay at the end
  std::vector<float> blend_init, blend_nmask;   // A1111 inpainting: the latent blend
  PromptContext ctx;
  std::vector<float> latents;  // NCHW [B, c, h, w]
  int first_step = 0;
  Stopwatch since_start;
  BatchResult result;

  // Tells the observer where we are; stops between stages when asked.
  void report(GenerationStage stage, int step = 0, int total = 0, double eta = -1,
              const io::Image* preview = nullptr) const {
    if (obs.on_progress) {
      ProgressEvent e;
      e.stage = stage;
      e.step = step;
      e.total_steps = total;
      e.elapsed_s = since_start.ms() / 1000.0;
      e.eta_s = eta;
      e.preview = preview;
      obs.on_progress(e);
    }
  }
  void throw_if_cancelled() const {
    if (obs.stop && obs.stop->cancelled()) throw GenerationCancelled();
  }
};

namespace {

io::Image load(const std::optional<io::Image>& data, const std::string& path) {
  return data ? *data : io::read_image(path);
}

// Thrown from inside the sampler loop when a Skip/Interrupt asks it to stop; caught by denoise().
struct StopSampling {};

// float32(1 / scale_factor) with scale_factor the decimal the model config states (0.18215):
// the shortest decimal that reads back as the float32 factor, inverted in double as Python does.
float a1111_inverse_scale(float scaling_factor) {
  for (int digits = 1; digits <= 9; ++digits) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.*g", digits, double(scaling_factor));
    const double decimal = std::strtod(buf, nullptr);
    if (float(decimal) == scaling_factor) return float(1.0 / decimal);
  }
  return float(1.0 / double(scaling_factor));
}

}  // namespace

StableDiffusion::StableDiffusion(const model::LoadedModel& model, cpu::PlanOptions options,
                                 const text::ClipTokenizer& tokenizer, std::string model_name,
                                 bool vae_int8)
    : model_(model),
      plans_(model, options, vae_int8),
      tokenizer_(tokenizer),
      model_name_(std::move(model_name)) {}

// Images first: a bad file is refused before any network is compiled or run.
StableDiffusion::Inputs StableDiffusion::prepare_inputs(const GenerationRequest& req) const {
  Inputs in;
  const bool a1111_mask = is_inpainting(req) && compat_of(req) == Compat::kA1111;
  if (is_img2img(req) && !req.init_latents_data) {
    // A1111 composites transparent pixels onto white before resizing.
    io::Image init = load(req.init_image_data, req.init_image);
    imaging::flatten_alpha(init);
    if (a1111_mask) {
      io::Image mask = load(req.mask_data, req.mask);
      in.a1111_inpaint = prepare_a1111_inpaint(init, mask, req);
      if (in.a1111_inpaint) in.init = in.a1111_inpaint->image;
    }
    if (!in.init)
      in.init = imaging::fit_image(init, req.width, req.height,
                                   imaging::parse_resize_mode(req.resize_mode));
  }
  if (is_inpainting(req) && !a1111_mask) {
    // The mask is fitted exactly as the init image (--resize-mode, Lanczos) so that the two stay
    // aligned whatever their sizes (A1111 resizes both with the same mode; a mask of the init's
    // size needs no fitting, as in diffusers).
    io::Image mask = load(req.mask_data, req.mask);
    mask.alpha.clear();  // PIL's convert("L") ignores alpha
    mask = imaging::fit_image(mask, req.width, req.height,
                              imaging::parse_resize_mode(req.resize_mode));
    in.mask =
        imaging::prepare_inpaint_mask(mask, req.width, req.height, req.mask_invert, req.mask_blur);
  }
  if (uses_control(req)) {
    io::Image hint = load(req.control_image_data, req.control_image);
    imaging::flatten_alpha(hint);
    hint = imaging::fit_image(hint, req.width, req.height, ResizeMode::Crop);
    if (req.control_preprocess == "canny")
      hint = imaging::canny(imaging::gaussian_blur(hint, req.canny_blur), req.canny_low,
                            req.canny_high);
    if (!req.control_save_hint.empty()) io::write_png(req.control_save_hint, hint);
    in.hint = std::move(hint);
  }
  return in;
}

void StableDiffusion::initial_latents(Run& run, const Inputs& in) {
  if (run.compat == Compat::kA1111) return a1111_initial_latents(run, in);
  if (!in.init && !run.req.init_latents_data) {
    run.result.noise = run.image_rng->first();
    run.latents = run.sampler->txt2img_latents(run.result.noise);
    return;
  }
  Stopwatch clock;
  // The VAE posterior of an image; latent_dist.sample(generator) per image, then × scaling
  // factor. `encode` false only draws (a posterior nobody uses still advances the generators).
  // With TAESD (AutoencoderTiny): its encoder's output is the latents (scaling factor 1.0), and
  // no draw is made.
  const bool taesd = run.req.encode_with == "taesd";
  auto posterior_sample = [&](const std::vector<float>& signed_image, bool encode) {
    if (taesd) {
      std::vector<float> out;
      if (!encode) return out;
      std::vector<float> unit(signed_image.size());
      for (size_t k = 0; k < unit.size(); ++k) unit[k] = (signed_image[k] + 1.0f) / 2.0f;
      const std::vector<float> z = taesd_encode(plans_, unit, 8 * run.h, 8 * run.w);
      for (int i = 0; i < run.B; ++i) out.insert(out.end(), z.begin(), z.end());
      return out;
    }
    std::vector<float> mean(run.per_image), logvar(run.per_image);
    if (encode) encode_signed(run, signed_image, mean, logvar);
    std::vector<float> out(size_t(run.B) * run.per_image);
    for (int i = 0; i < run.B; ++i) {
      std::vector<float> eps = run.image_rng->generator(size_t(i)).randn(run.per_image);
      for (size_t k = 0; k < run.per_image; ++k) {
        const float lv = std::clamp(logvar[k], -30.0f, 20.0f);
        out[size_t(i) * run.per_image + k] =
            (mean[k] + std::exp(0.5f * lv) * eps[k]) * model_.vae.scaling_factor;
      }
    }
    return out;
  };
  run.first_step = run.sampler->img2img_first_step();
  if (run.req.init_latents_data) {
    // A1111's hires second pass: fresh generators' first draw at this shape, no posterior.
    if (run.req.init_latents_data->size() != size_t(run.B) * run.per_image)
      throw Error("", "init latents",
                  std::to_string(size_t(run.B) * run.per_image) + " values (batch × latent)",
                  std::to_string(run.req.init_latents_data->size()));
    run.result.noise = run.image_rng->first();
    run.latents = run.sampler->img2img_latents(*run.req.init_latents_data, run.result.noise);
    return;
  }
  const std::vector<float> init = imaging::image_to_signed_tensor(*in.init);
  if (!in.mask) {
    // diffusers order: the posterior draw comes before the noise draw.
    const std::vector<float> init_latents = posterior_sample(init, true);
    run.result.noise = run.image_rng->first();
    run.latents = run.sampler->img2img_latents(init_latents, run.result.noise);
    run.result.timings.vae_encode_ms = clock.ms();
    return;
  }
  InpaintState s;
  s.mask = *in.mask;
  s.nine_channel = model_.unet.in_channels == 9;
  const bool full_strength = run.req.strength >= 1.0;
  if (!(s.nine_channel && full_strength)) s.image_latents = posterior_sample(init, true);
  run.result.noise = run.image_rng->first();
  s.noise = run.result.noise;
  s.masked_latents = posterior_sample(imaging::masked_image(init, s.mask), s.nine_channel);
  // Strength 1 starts from pure noise (diffusers' is_strength_max), not from noised latents.
  run.latents = full_strength ? run.sampler->txt2img_latents(run.result.noise)
                              : run.sampler->img2img_latents(s.image_latents, run.result.noise);
  run.inpaint = std::move(s);
  run.result.timings.vae_encode_ms = clock.ms();
}

bool StableDiffusion::tiled(const Run& run) const {
  return run.req.vae_tiling &&
         (8 * run.h > run.req.vae_tile_size || 8 * run.w > run.req.vae_tile_size);
}

void StableDiffusion::encode_signed(Run& run, std::span<const float> image,
                                    std::vector<float>& mean, std::vector<float>& logvar) {
  mean.resize(run.per_image);
  logvar.resize(run.per_image);
  if (tiled(run))
    return tiled_vae_encode(plans_, image, run.h, run.w, run.req.vae_tile_size, mean, logvar);
  cpu::Plan& enc = plans_.vae_encoder(1, run.h, run.w);
  enc.set_input_nchw("image", image.data());
  enc.run();
  enc.read_output_nchw("mean", mean.data());
  enc.read_output_nchw("logvar", logvar.data());
}

// A1111: ImageRNG per seed (its first draw is the noise). img2img encodes the init image (the
// same for every image of the batch) and samples the VAE posterior from torch's global
// generator, which A1111 leaves seeded with the previous run's seed: sdc seeds it with the
// batch's first seed, so re-running a seed reproduces A1111's second run of it.
void StableDiffusion::a1111_initial_latents(Run& run, const Inputs& in) {
  std::vector<float> init_latents;
  sampling::TorchGenerator global(uint64_t(run.first_seed));
  if (run.req.init_latents_data) {
    // A1111's hires second pass: the upscaled latents as they are, no VAE encode or posterior.
    if (run.req.init_latents_data->size() != size_t(run.B) * run.per_image)
      throw Error("", "init latents",
                  std::to_string(size_t(run.B) * run.per_image) + " values (batch × latent)",
                  std::to_string(run.req.init_latents_data->size()));
    init_latents = *run.req.init_latents_data;
  } else if (in.init && run.req.encode_with == "taesd") {
    // A1111's TAESD encode method: the [0,1] image straight through the encoder, no posterior.
    Stopwatch clock;
    const std::vector<float> z =
        taesd_encode(plans_, imaging::image_to_unit_tensor(*in.init), 8 * run.h, 8 * run.w);
    for (int i = 0; i < run.B; ++i) init_latents.insert(init_latents.end(), z.begin(), z.end());
    run.result.timings.vae_encode_ms = clock.ms();
  } else if (in.init) {
    Stopwatch clock;
    init_latents = a1111_posterior_sample(run, imaging::image_to_signed_tensor(*in.init), global);
    run.result.timings.vae_encode_ms = clock.ms();
  }
  if (in.a1111_inpaint || (in.init && model_.unet.in_channels == 9))
    a1111_inpaint_latents(run, in, init_latents, global);
  run.result.noise = run.image_rng->first();
  run.latents = run.a1111->start(run.result.noise, init_latents);
}

// ldm's get_first_stage_encoding(encode_first_stage(image)) for the batch: the VAE posterior of
// the [-1,1] image sampled with torch's global generator (DiagonalGaussianDistribution: std =
// exp(0.5 · clamp(logvar, −30, 20)), z = mean + std · n), × the scaling factor.
std::vector<float> StableDiffusion::a1111_posterior_sample(Run& run, std::span<const float> image,
                                                           sampling::TorchGenerator& global) {
  std::vector<float> mean, logvar;
  encode_signed(run, image, mean, logvar);
  std::vector<float> std_dev(run.per_image);
  for (size_t k = 0; k < run.per_image; ++k)
    std_dev[k] = 0.5f * std::clamp(logvar[k], -30.0f, 20.0f);
  sampling::torch_exp_f32(std_dev);
  const std::vector<float> n = global.randn(size_t(run.B) * run.per_image);
  std::vector<float> z(n.size());
  const float sf = model_.vae.scaling_factor;
  for (size_t k = 0; k < n.size(); ++k) {
    const size_t j = k % run.per_image;
    z[k] = sf * (mean[j] + std_dev[j] * n[k]);
  }
  return z;
}

// A1111's latent side of inpainting: the latent mask (nmask) and the masked content's latents,
// then an inpainting UNet's conditioning (mask + masked-image latents, its posterior drawn from
// the global generator after the init image's).
void StableDiffusion::a1111_inpaint_latents(Run& run, const Inputs& in,
                                            std::vector<float>& init_latents,
                                            sampling::TorchGenerator& global) {
  const size_t plane = size_t(run.h) * size_t(run.w);
  if (in.a1111_inpaint) {
    const A1111Inpaint& p = *in.a1111_inpaint;
    run.a1111_inpaint = &p;
    run.blend_nmask = imaging::a1111_latent_mask(p.mask, run.w, run.h, run.req.mask_round);
    if (p.fill == 2) {
      // "latent noise": create_random_tensors over the run's first seeds, no variation.
      sampling::VariationSeeds plain;
      const int64_t base = run.req.seed >= 0 ? run.req.seed : run.first_seed;
      for (int i = 0; i < run.B; ++i)
        plain.seeds.push_back(run.req.subseed_strength != 0 ? base : base + i);
      sampling::ImageRng fresh(rng_source(run.req), plain, run.c, run.h, run.w,
                               uint64_t(run.req.ensd));
      // init·(1 − nmask) + noise·nmask: the sampler's blend with the noise as the new value.
      std::vector<float> noise = fresh.first();
      sampling::LatentBlend{init_latents, run.blend_nmask}.apply(noise);
      init_latents = std::move(noise);
    } else if (p.fill == 3) {  // "latent nothing"
      for (size_t k = 0; k < init_latents.size(); ++k)
        init_latents[k] = init_latents[k] * (1.0f - run.blend_nmask[k % plane]);
    }
    run.blend_init = init_latents;
  }
  if (model_.unet.in_channels != 9) return;
  // inpainting_image_conditioning: the mask (rounded) at full size masks the image; its nearest
  // sample at latent size is the UNet's mask channel. Without a mask (an "Only masked" run whose
  // mask was blank) A1111 uses a mask of ones.
  const int iw = 8 * run.w, ih = 8 * run.h;
  std::vector<float> full(size_t(iw) * size_t(ih), 1.0f);
  InpaintState s;
  s.nine_channel = true;
  s.mask.width = iw;
  s.mask.height = ih;
  s.mask.latent.assign(plane, 1.0f);
  if (in.a1111_inpaint) {
    full = imaging::a1111_mask_values(in.a1111_inpaint->mask, run.req.mask_round);
    s.mask.latent =
        imaging::a1111_conditioning_mask(in.a1111_inpaint->mask, run.w, run.h, run.req.mask_round);
  }
  std::vector<float> source = imaging::image_to_signed_tensor(*in.init);
  for (size_t k = 0; k < source.size(); ++k) source[k] = source[k] * (1.0f - full[k % full.size()]);
  s.masked_latents = a1111_posterior_sample(run, source, global);
  run.inpaint = std::move(s);
  run.result.inpainting_conditioning = true;
}

void StableDiffusion::denoise(Run& run, const Inputs& in) {
  const GenerationRequest& req = run.req;
  const int B = run.B;
  const int unet_batch = run.cfg ? 2 * B : B;
  const bool control = in.hint.has_value();
  cpu::Plan& unet =
      plans_.unet(unet_batch, run.h, run.w, run.ctx.tokens, control, run.compat == Compat::kA1111);
  cpu::Plan* cnet = nullptr;
  if (control) {  // the same hint for every image and both CFG halves
    cnet = &plans_.controlnet(unet_batch, run.h, run.w, run.ctx.tokens);
    const std::vector<float> hint = imaging::image_to_unit_tensor(*in.hint);
    for (int i = 0; i < unet_batch; ++i) cnet->set_input_nchw("hint", hint.data(), i, 1);
  }

  // Context is fixed for the whole run: fill it once. Rows: [uncond × B, cond × B].
  const size_t ctx_size = size_t(run.ctx.tokens) * size_t(run.ctx.channels);
  auto fill_context = [&](float* dst) {
    for (int i = 0; i < unet_batch; ++i) {
      const auto& src = (run.cfg && i < B) ? run.ctx.uncond : run.ctx.cond;
      std::memcpy(dst + size_t(i) * ctx_size, src.data(), ctx_size * sizeof(float));
    }
  };
  fill_context(unet.input_f32("context"));
  if (cnet) fill_context(cnet->input_f32("context"));

  const int total_steps = run.a1111 ? run.a1111->planned_evaluations() : req.steps - run.first_step;
  const size_t half = size_t(B) * run.per_image;
  int step_index = 0;
  std::vector<float> eps_all(size_t(unet_batch) * run.per_image);
  std::vector<float> inpaint_input;  // [B, 9, h, w] for an inpainting UNet
  // One UNet (+ ControlNet) evaluation of x_in at t into eps_all: [uncond × B, cond × B] with
  // CFG, [cond × B] without.
  auto evaluate = [&](std::span<const float> x_in, float t) {
    // Stop before the expensive call: the latents of the last finished step are kept.
    run.throw_if_cancelled();
    if (run.obs.stop && run.obs.stop->stop_sampling()) throw StopSampling{};
    const float* sample = x_in.data();
    if (run.inpaint && run.inpaint->nine_channel) {
      inpaint_unet_input(*run.inpaint, x_in, B, inpaint_input);
      sample = inpaint_input.data();
    }
    unet.set_input_nchw("sample", sample, 0, B);
    if (run.cfg) unet.set_input_nchw("sample", sample, B, B);
    float* ts = unet.input_f32("timestep");
    std::fill(ts, ts + unet_batch, t);
    if (cnet) {
      Stopwatch cn_clock;
      cnet->set_input_nchw("sample", x_in.data(), 0, B);
      if (run.cfg) cnet->set_input_nchw("sample", x_in.data(), B, B);
      std::fill(cnet->input_f32("timestep"), cnet->input_f32("timestep") + unet_batch, t);
      // The ControlNet applies during [control_start, control_end] of the steps, as A1111 does.
      const float frac = float(step_index + run.first_step) / float(req.steps);
      const bool active = frac >= req.control_start && frac <= req.control_end;
      cnet->input_f32("scale")[0] = active ? req.control_scale : 0.0f;
      cnet->run();
      pass_control_residuals(*cnet, unet);
      run.result.timings.controlnet_ms += cn_clock.ms();
    }
    unet.run();
    unet.read_output_nchw("eps", eps_all.data());
    ++step_index;
    ++run.result.timings.unet_steps;
  };
  if (run.a1111) return a1111_denoise(run, evaluate, eps_all, total_steps);
  sampling::Denoiser denoiser = [&](std::span<const float> x_in, float t,
                                    std::span<float> eps_out) {
    evaluate(x_in, t);
    if (run.cfg) {
      const float g = req.cfg_scale;
      for (size_t k = 0; k < half; ++k)
        eps_out[k] = eps_all[k] + g * (eps_all[half + k] - eps_all[k]);
    } else {
      std::copy_n(eps_all.begin(), half, eps_out.begin());
    }
  };

  Stopwatch clock;
  std::vector<float> reached = run.latents;  // latents after the last finished step
  int done = 0;
  auto on_step = [&](const sampling::StepProgress& p) {
    done = p.step;
    if (run.inpaint && !run.inpaint->nine_channel)
      blend_known_region(*run.inpaint, *run.sampler, p.schedule_index, p.latents);
    reached.assign(p.latents.begin(), p.latents.end());
    const double per_step = clock.ms() / 1000.0 / double(p.step);
    const double eta = per_step * double(p.total - p.step);
    const int every = run.obs.preview_every;
    if (every > 0 && (p.step % every == 0 || p.step == p.total)) {
      const io::Image preview =
          preview_image(plans_, run.req.preview_method,
                        std::span<const float>(reached.data(), run.per_image), run.h, run.w);
      run.report(GenerationStage::Denoising, p.step, p.total, eta, &preview);
    } else {
      run.report(GenerationStage::Denoising, p.step, p.total, eta);
    }
  };
  run.report(GenerationStage::Denoising, 0, total_steps);
  try {
    run.latents = run.sampler->run(
        std::move(run.latents), run.first_step, denoiser,
        [&](std::span<float> out) { run.image_rng->next(out); }, on_step);
    run.result.steps_done = total_steps;
  } catch (const StopSampling&) {
    run.latents = std::move(reached);
    run.result.interrupted = true;
    run.result.steps_done = done;
  }
  run.result.timings.sampling_ms = clock.ms() - run.result.timings.controlnet_ms;
}

void StableDiffusion::a1111_denoise(Run& run, const UnetEvaluation& evaluate,
                                    const std::vector<float>& eps_all, int total) {
  const size_t half = size_t(run.B) * run.per_image;
  sampling::UnetEps unet = [&](std::span<const float> x_in, float t, std::span<float> eps_cond,
                               std::span<float> eps_uncond) {
    evaluate(x_in, t);
    if (run.cfg) {
      std::copy_n(eps_all.begin(), half, eps_uncond.begin());
      std::copy_n(eps_all.begin() + long(half), half, eps_cond.begin());
    } else {  // scale 1: the guided value is the conditional one
      std::copy_n(eps_all.begin(), half, eps_cond.begin());
      std::copy_n(eps_all.begin(), half, eps_uncond.begin());
    }
  };
  Stopwatch clock;
  std::vector<float> reached = run.latents;  // A1111's last_latent: the last denoised value
  int steps_done = 0;
  auto on_eval = [&](int done, int planned) {
    const int of = planned > 0 ? planned : done;
    const double eta = clock.ms() / 1000.0 / double(done) * double(of - done);
    const int every = run.obs.preview_every;
    if (every > 0 && (done % every == 0 || done == of)) {
      const io::Image preview =
          preview_image(plans_, run.req.preview_method,
                        std::span<const float>(reached.data(), run.per_image), run.h, run.w);
      run.report(GenerationStage::Denoising, done, of, eta, &preview);
    } else {
      run.report(GenerationStage::Denoising, done, of, eta);
    }
  };
  auto on_step = [&](int step, std::span<const float> denoised) {
    steps_done = step + 1;
    reached.assign(denoised.begin(), denoised.end());
  };
  std::optional<sampling::LatentBlend> blend;
  if (!run.blend_nmask.empty()) blend = sampling::LatentBlend{run.blend_init, run.blend_nmask};
  run.report(GenerationStage::Denoising, 0, total);
  try {
    run.latents = run.a1111->run(std::move(run.latents), unet, *run.image_rng, on_eval, on_step,
                                 blend ? &*blend : nullptr);
    run.result.steps_done = total > 0 ? total : run.result.timings.unet_steps;
  } catch (const StopSampling&) {
    run.latents = std::move(reached);
    run.result.interrupted = true;
    run.result.steps_done = steps_done;
  }
  // processing.py's sample(): the known region back to the init latents, interrupted or not.
  if (blend) blend->apply(run.latents);
  run.result.timings.sampling_ms = clock.ms() - run.result.timings.controlnet_ms;
}

// The VAE gets the latents divided by the scaling factor; TAESD takes them as they are, and both
// conventions map its [0,1] output to [-1,1] (diffusers' AutoencoderTiny.decode: 2y - 1; A1111:
// decoder(x) * 2 - 1). Either image is then converted as that convention converts a VAE image.
void StableDiffusion::decode(Run& run) {
  Stopwatch clock;
  const bool a1111 = run.compat == Compat::kA1111;
  const bool taesd = run.req.decode_with == "taesd";
  // Tiled: no plan of the full size is ever built (that is where the memory goes).
  cpu::Plan* dec = taesd || tiled(run) ? nullptr : &plans_.vae_decoder(1, run.h, run.w);
  const int iw = 8 * run.w, ih = 8 * run.h;
  // Only the full-size VAE plan writes into a buffer of ours; TAESD and the tiled decode return
  // their own (a fresh buffer is ~800 page faults at 512x512: not one more than needed).
  std::vector<float> chw(dec ? size_t(3) * size_t(iw) * size_t(ih) : 0);
  std::vector<float> scaled(taesd ? 0 : run.per_image);
  for (int i = 0; i < run.B; ++i) {
    run.throw_if_cancelled();
    const std::span<const float> z =
        std::span<const float>(run.latents).subspan(size_t(i) * run.per_image, run.per_image);
    if (taesd) {
      chw = taesd_decode(plans_, z, run.h, run.w);
      for (float& v : chw) v = 2.0f * v - 1.0f;
    } else {
      for (size_t k = 0; k < run.per_image; ++k)
        // ldm's decode_first_stage multiplies by the Python float 1 / scale_factor.
        scaled[k] = a1111 ? z[k] * a1111_inverse_scale(model_.vae.scaling_factor)
                          : z[k] / model_.vae.scaling_factor;
      if (dec) {
        dec->set_input_nchw("latent", scaled.data());
        dec->run();
        dec->read_output_nchw("image", chw.data());
      } else {
        chw = tiled_vae_decode(plans_, scaled, run.h, run.w, run.req.vae_tile_size);
      }
    }
    GeneratedImage gi;
    gi.image = a1111 ? imaging::image_from_signed_tensor_truncated(chw.data(), iw, ih)
                     : imaging::image_from_signed_tensor(chw.data(), iw, ih);
    if (run.a1111_inpaint) gi.image = finish_a1111_inpaint(gi.image, *run.a1111_inpaint);
    gi.seed = run.seeds.seeds[size_t(i)];
    if (run.seeds.uses_subseed()) gi.subseed = run.seeds.subseeds[size_t(i)];
    run.result.images.push_back(std::move(gi));
  }
  run.result.timings.vae_decode_ms = clock.ms();
}

void StableDiffusion::use_embeddings(const model::EmbeddingLibrary& library) {
  static const std::string kTable =
      std::string(graph::kTextEncoderPrefix) + "embeddings.token_embedding.weight";
  const TensorRef& table = model_.weights.get(kTable);
  std::vector<text::EmbeddingTriggers::Entry> entries;
  embedding_hashes_.clear();
  for (const model::Embedding& e : library.embeddings) {
    entries.push_back({e.name, e.vectors});
    embedding_hashes_.emplace_back(e.name, e.shorthash());
  }
  triggers_ =
      std::make_unique<text::EmbeddingTriggers>(tokenizer_, entries, int(table.shape.at(0)));
  plans_.use_token_table(model::extend_token_table(table, library));
  text_memo_.clear();  // a trigger's ids may now have other vectors
}

BatchResult StableDiffusion::generate_batch(const GenerationRequest& req, int64_t first_seed,
                                            const GenerationObserver& observer,
                                            ReleaseAfterUse release) {
  validate(req);
  if (first_seed < 0)
    throw UsageError("", "seed", "a concrete seed (0 or more)", std::to_string(first_seed));
  if (uses_control(req) && !model_.controlnet)
    throw UsageError("", "--control-image",
                     "a ControlNet (--control-net FILE or one bundled in the model)", "none");
  // TAESD choices need the networks: refuse before any work rather than after sampling.
  const bool img2img_encode = is_img2img(req) && !req.init_latents_data;
  if ((req.decode_with == "taesd" || req.preview_method == "taesd") && !model_.taesd.decoder)
    throw UsageError("", "--taesd",
                     "a TAESD decoder (--taesd FILE|DIR, or a model converted with it) for " +
                         std::string(req.decode_with == "taesd" ? "--decode-with taesd"
                                                                : "--preview-method taesd"),
                     "none loaded");
  if (req.encode_with == "taesd" && img2img_encode && !model_.taesd.encoder)
    throw UsageError("", "--taesd",
                     "a TAESD encoder (taesd_encoder.* beside the decoder, or an AutoencoderTiny "
                     "folder) for --encode-with taesd",
                     "none loaded");
  if (model_.unet.in_channels == 9 && !is_inpainting(req))
    throw UsageError("", "--mask", "a mask and an --init-image for an inpainting model", "none");
  if (model_.unet.in_channels != 4 && model_.unet.in_channels != 9)
    throw Error(model_.source, "UNet input channels", "4, or 9 (inpainting)",
                std::to_string(model_.unet.in_channels));
  // Latents have the UNet's output channels; an inpainting UNet takes 5 more as input.
  Run run(req, observer, first_seed, model_.unet.out_channels);

  run.report(GenerationStage::Preparing);
  const Inputs in = prepare_inputs(req);
  run.throw_if_cancelled();

  run.report(GenerationStage::EncodingText);
  Stopwatch clock;
  run.ctx = encode_prompts(plans_, tokenizer_, req.prompt, req.negative_prompt, req.clip_skip,
                           run.cfg, triggers_.get(), &text_memo_);
  run.result.timings.text_encoder_ms = clock.ms();
  if (release.text_encoder) plans_.release(Component::TextEncoder);
  for (int e : run.ctx.used_embeddings)
    run.result.embeddings_used.push_back(embedding_hashes_[size_t(e)]);
  run.result.context_tokens = run.ctx.tokens;
  run.result.context_width = run.ctx.channels;
  for (int i = 0; i < run.B; ++i) {
    run.result.cond.insert(run.result.cond.end(), run.ctx.cond.begin(), run.ctx.cond.end());
    run.result.uncond.insert(run.result.uncond.end(), run.ctx.uncond.begin(), run.ctx.uncond.end());
  }
  run.throw_if_cancelled();

  run.report(GenerationStage::InitialLatents);
  if (req.subseed_strength != 0 && req.subseed < 0)
    throw UsageError("", "--subseed", "a concrete subseed (0 or more) with --subseed-strength",
                     std::to_string(req.subseed));
  // Without a variation image i has seed first_seed + i; with one, every image keeps the run's
  // seed and the subseed follows the run-wide index (A1111's processing.py).
  const bool variation = req.subseed_strength != 0;
  run.seeds = sampling::batch_variation_seeds(
      variation && req.seed >= 0 ? req.seed : first_seed, req.subseed, req.subseed_strength,
      req.seed_resize_from_w, req.seed_resize_from_h,
      variation ? int(batch_first_index(req, first_seed)) : 0, run.B);
  // One noise path for both conventions: A1111's ImageRNG in the chosen source (diffusers: the
  // torch CPU generator, no ENSD), variation seeds shaping its first draw.
  run.image_rng.emplace(rng_source(req), run.seeds, run.c, run.h, run.w,
                        run.compat == Compat::kA1111 ? uint64_t(req.ensd) : 0);
  initial_latents(run, in);
  run.throw_if_cancelled();

  denoise(run, in);
  if (release.denoiser) plans_.release(Component::Denoiser);
  run.throw_if_cancelled();

  run.report(GenerationStage::Decoding);
  decode(run);
  run.result.latents = std::move(run.latents);
  run.report(GenerationStage::Done, run.result.steps_done,
             run.a1111 ? run.a1111->planned_evaluations() : req.steps - run.first_step, 0);
  return std::move(run.result);
}

}  // namespace sdc::pipeline
