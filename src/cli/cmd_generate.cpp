// `sdc generate`: txt2img / img2img / ControlNet from a checkpoint, diffusers folder or compiled
// .gguf, writing PNGs with A1111 "parameters" metadata (and optionally the final latents).
#include <filesystem>
#include <iostream>

#include "backend/cpu/plan.h"
#include "backend/cpu/prepacked_weights.h"
#include "cli/commands.h"
#include "cli/model_options.h"
#include "cli/progress_bar.h"
#include "common/error.h"
#include "common/stopwatch.h"
#include "io/image.h"
#include "io/safetensors.h"
#include "pipeline/generation_params.h"
#include "pipeline/hires_fix.h"
#include "pipeline/image_infotext.h"
#include "pipeline/model_bundle.h"
#include "pipeline/plan_warmup.h"
#include "pipeline/stable_diffusion.h"
#include "sampling/rng/torch_generator.h"
#include "sampling/sampler_kind.h"
#include "text/tokenizer.h"

namespace sdc::cli {
namespace {

struct GenerateArgs {
  pipeline::BundleOptions model;
  pipeline::GenerationRequest req;
  std::string rng = "cpu";
  std::string precision = "auto";
  int threads = 0;
  std::string output = "output.png";
  std::string save_latents;
  std::string save_noise, save_conditioning;
  std::vector<int> seed_resize_from;  // W H
  std::vector<int> hires_size;        // W H
  std::string preview;                // --preview FILE: the latest preview, rewritten
  int preview_every = 5;
};

// Batches of a run, concatenated along the first axis, written once at the end.
struct RunTensors {
  std::vector<float> noise, cond, uncond;
  Shape noise_shape;
  int tokens = 0, width = 0;
  void add(const pipeline::BatchResult& r) {
    noise.insert(noise.end(), r.noise.begin(), r.noise.end());
    cond.insert(cond.end(), r.cond.begin(), r.cond.end());
    uncond.insert(uncond.end(), r.uncond.begin(), r.uncond.end());
    noise_shape = r.latent_shape;
    tokens = r.context_tokens;
    width = r.context_width;
  }
};

// "out.png" for one image; "out-1.png", "out-2.png", … for several.
std::string output_path(const std::string& base, int index, int total) {
  if (total == 1) return base;
  std::filesystem::path p(base);
  return (p.parent_path() /
          (p.stem().string() + "-" + std::to_string(index + 1) + p.extension().string()))
      .string();
}

void check_output_folder(const std::string& path, const char* option) {
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (dir.empty()) return;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    throw UsageError(path, option, "an existing output directory",
                     dir.string() + " does not exist");
}

void run_generate(GenerateArgs& a) {
  pipeline::GenerationRequest& req = a.req;
  if (a.rng != "cpu") throw UsageError("", "--rng", "cpu", a.rng);
  pipeline::validate(req);
  sampling::parse_sampler(req.sampler);
  sampling::parse_schedule(req.scheduler);
  check_output_folder(a.output, "-o");
  if (!a.save_latents.empty()) check_output_folder(a.save_latents, "--save-latents");
  if (!a.save_noise.empty()) check_output_folder(a.save_noise, "--save-noise");
  if (!a.preview.empty()) check_output_folder(a.preview, "--preview");
  if (a.preview_every < 1 || a.preview_every > pipeline::kMaxSteps)
    throw UsageError("", "--preview-every", "1 to " + std::to_string(pipeline::kMaxSteps),
                     std::to_string(a.preview_every));
  if (!a.save_conditioning.empty()) check_output_folder(a.save_conditioning, "--save-conditioning");
  if (!a.hires_size.empty()) {
    req.enable_hr = true;
    req.hr_width = a.hires_size.at(0);
    req.hr_height = a.hires_size.at(1);
  }
  if (!a.seed_resize_from.empty()) {
    req.seed_resize_from_w = a.seed_resize_from.at(0);
    req.seed_resize_from_h = a.seed_resize_from.at(1);
  }
  pipeline::validate(req);
  if (!req.control_save_hint.empty())
    check_output_folder(req.control_save_hint, "--control-save-hint");
  if (!req.control_image.empty() && a.model.controlnet.empty() &&
      std::filesystem::path(a.model.model).extension() != ".gguf")
    throw UsageError("", "--control-image",
                     "a ControlNet (--control-net FILE or one bundled in a .gguf)", "none");
  const cpu::Precision precision = cpu::parse_precision(a.precision);

  Stopwatch since_start;  // for "load to first UNet step", the figure a deployment cares about
  pipeline::ModelBundle loaded = pipeline::load_bundle(a.model, std::cerr);
  const double load_ms = since_start.ms();
  pipeline::apply_defaults(loaded, req);
  pipeline::validate(req);

  if (req.seed < 0) {
    req.seed = int64_t(sampling::random_seed() & 0xffffffffULL);
    std::cout << "seed: " << req.seed << "\n";
  }
  if (req.subseed_strength != 0 && req.subseed < 0) {
    req.subseed = int64_t(sampling::random_seed() & 0xffffffffULL);
    std::cout << "subseed: " << req.subseed << "\n";
  }
  cpu::PlanOptions options;
  options.precision = precision;
  options.threads = a.threads;
  pipeline::StableDiffusion sd(loaded.model, options, loaded.tokenizer(), loaded.name);
  if (!loaded.embeddings.embeddings.empty()) sd.use_embeddings(loaded.embeddings);
  if (!loaded.declared_sizes.empty()) {  // a compiled model's `convert -s` sizes: plan them now
    Stopwatch clock;
    pipeline::WarmupSpec spec{loaded.declared_sizes, {}, req.clip_skip, !req.control_image.empty()};
    spec.unet_batches = {req.cfg_scale > 1.0f ? 2 * loaded.declared_batch : loaded.declared_batch};
    const size_t n = pipeline::warm_plans(sd.plans(), spec);
    std::cerr << "planned " << n << " plans for the declared sizes in " << int(clock.ms()) << " ms";
    if (const size_t mapped = cpu::PrepackedWeights::global().hits())
      std::cerr << " (" << mapped << " weights mapped already packed)";
    std::cerr << "\n";
  }

  const int total = req.batch_size * req.batch_count;
  std::vector<float> all_latents;
  Shape latent_shape;
  RunTensors seen;
  for (int b = 0; b < req.batch_count; ++b) {
    ProgressBar bar(req.batch_count > 1 ? "batch " + std::to_string(b + 1) + " step" : "step");
    const int64_t seed = req.seed + int64_t(b) * req.batch_size;
    double first_step_ms = 0;
    pipeline::GenerationObserver observer;
    if (!a.preview.empty()) observer.preview_every = a.preview_every;
    observer.on_progress = [&](const pipeline::ProgressEvent& e) {
      // Written atomically: a viewer polling the file never sees half a PNG.
      if (e.preview) io::write_png(a.preview, *e.preview);
      if (e.stage != pipeline::GenerationStage::Denoising || e.step == 0) return;
      if (e.step == 1 && b == 0) first_step_ms = since_start.ms();
      bar.update(e.step, e.total_steps);
    };
    pipeline::BatchResult r = req.enable_hr ? pipeline::generate_hires(sd, req, seed, observer)
                                            : sd.generate_batch(req, seed, observer);
    bar.finish();
    if (b == 0 && first_step_ms > 0)
      std::cerr << "first UNet step done " << int(first_step_ms) << " ms after start (model load "
                << int(load_ms) << " ms, then plans, text encoder, step 1)\n";
    for (size_t i = 0; i < r.images.size(); ++i) {
      const int index = b * req.batch_size + int(i);
      const std::string path = output_path(a.output, index, total);
      pipeline::GenerationParams params = pipeline::describe_image(loaded, req, r, i);
      io::write_png(path, r.images[i].image,
                    {{"parameters", pipeline::format_a1111_parameters(params)}});
      std::cout << path << "\n";
    }
    all_latents.insert(all_latents.end(), r.latents.begin(), r.latents.end());
    seen.add(r);
    latent_shape = r.latent_shape;
    std::cerr << "text encoder " << r.timings.text_encoder_ms << " ms, sampling "
              << r.timings.sampling_ms << " ms (" << r.timings.unet_steps << " steps), VAE decode "
              << r.timings.vae_decode_ms << " ms\n";
  }
  if (!a.save_latents.empty()) {
    latent_shape[0] = total;
    WeightMap m;
    m.set("latents", TensorRef::from_f32(all_latents, latent_shape, DType::F32));
    io::write_safetensors(a.save_latents, m);
  }
  if (!a.save_noise.empty()) {
    Shape shape = seen.noise_shape;
    shape[0] = total;
    WeightMap m;
    m.set("noise", TensorRef::from_f32(seen.noise, shape, DType::F32));
    io::write_safetensors(a.save_noise, m);
  }
  if (!a.save_conditioning.empty()) {
    WeightMap m;
    const Shape shape{total, seen.tokens, seen.width};
    m.set("cond", TensorRef::from_f32(seen.cond, shape, DType::F32));
    if (!seen.uncond.empty()) m.set("uncond", TensorRef::from_f32(seen.uncond, shape, DType::F32));
    io::write_safetensors(a.save_conditioning, m);
  }
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("generate", "Generate images (txt2img, img2img, ControlNet)");
  auto a = std::make_shared<GenerateArgs>();
  add_model_options(*cmd, a->model);
  auto& r = a->req;
  cmd->add_option("-p,--prompt", r.prompt,
                  "Prompt (A1111 syntax: (word), [word], (word:1.3), BREAK)");
  cmd->add_option("-n,--negative-prompt", r.negative_prompt, "Negative prompt");
  cmd->add_option("-W,--width", r.width, "Image width (multiple of 8)");
  cmd->add_option("-H,--height", r.height, "Image height (multiple of 8)");
  cmd->add_option("--steps", r.steps, "Sampling steps")->each([&r](const std::string&) {
    r.steps_set = true;
  });
  cmd->add_option("--cfg-scale", r.cfg_scale, "Classifier-free guidance scale")
      ->each([&r](const std::string&) { r.cfg_set = true; });
  cmd->add_option("--sampler", r.sampler, "lcm | ddim | euler | euler_a | dpmpp_2m")
      ->each([&r](const std::string&) { r.sampler_set = true; });
  cmd->add_option("--scheduler", r.scheduler, "default | karras")->each([&r](const std::string&) {
    r.scheduler_set = true;
  });
  cmd->add_option("--seed", r.seed, "Seed (-1: random)");
  cmd->add_option("--rng", a->rng, "Noise generator: cpu (torch.Generator('cpu') compatible)");
  cmd->add_option("--clip-skip", r.clip_skip, "1 = last text-encoder layer, 2 = penultimate");
  cmd->add_option("--batch-size", r.batch_size, "Images per UNet run");
  cmd->add_option("--batch-count", r.batch_count, "Number of runs");
  cmd->add_option("--precision", a->precision, "f32 | bf16 | auto");
  cmd->add_option("--threads", a->threads, "CPU threads (0 = all cores)");
  cmd->add_option("-o,--output", a->output,
                  "Output PNG (several images: name-1.png, name-2.png, …)");
  cmd->add_option("--save-latents", a->save_latents,
                  "Also write the final latents (safetensors, NCHW f32)");
  cmd->add_option("--save-noise", a->save_noise,
                  "Also write the initial noise, before any sigma scaling (safetensors 'noise', "
                  "[batch,4,h,w] f32)");
  cmd->add_option("--save-conditioning", a->save_conditioning,
                  "Also write the text-encoder outputs the UNet gets (safetensors 'cond' and, "
                  "with CFG, 'uncond': [batch,tokens,width] f32)");
  cmd->add_option("--subseed", r.subseed, "Variation seed (-1: random)");
  cmd->add_option("--subseed-strength", r.subseed_strength,
                  "Variation strength in [0, 1]: 0 = the seed's noise, 1 = the subseed's");
  cmd->add_option("--seed-resize-from", a->seed_resize_from,
                  "W H: make the noise as for this size and centre it (A1111 'Resize seed from')")
      ->expected(2);
  cmd->add_option("--hires-scale", r.hr_scale,
                  "Hires fix: a second pass at this factor of the size (A1111)")
      ->each([&r](const std::string&) { r.enable_hr = true; });
  cmd->add_option("--hires-size", a->hires_size, "W H: hires fix to this size instead")
      ->expected(2);
  cmd->add_option("--hires-steps", r.hr_steps, "Hires fix second-pass steps (0: as --steps)");
  cmd->add_option("--hires-denoise", r.hr_denoise,
                  "Hires fix second-pass denoising strength in (0, 1]");
  cmd->add_option("--hires-upscaler", r.hr_upscaler,
                  "latent (bilinear on latents, A1111's Latent) | lanczos (on pixels)");
  cmd->add_option("--preview", a->preview,
                  "Write a cheap preview of the current latents (A1111 'Approx cheap', 1/8 size) "
                  "to this PNG while sampling");
  cmd->add_option("--preview-every", a->preview_every, "Steps between previews (default 5)");
  cmd->add_option("--embeddings", a->model.embeddings_dir,
                  "Folder of textual-inversion embeddings (.pt, .bin, .safetensors); the trigger "
                  "word is the file name, as in A1111");
  cmd->add_option("--init-image", r.init_image, "img2img: the starting image (PNG or JPEG)");
  cmd->add_option("--strength", r.strength, "img2img denoising strength in (0, 1]");
  cmd->add_option("--resize-mode", r.resize_mode,
                  "resize | crop | fill (when the image size differs)");
  cmd->add_option("--mask", r.mask,
                  "Inpainting mask for --init-image (white = repaint; resized with Lanczos)");
  cmd->add_flag("--mask-invert", r.mask_invert, "Repaint the black part of the mask instead");
  cmd->add_option("--mask-blur", r.mask_blur,
                  "Gaussian blur sigma (pixels) on the mask before thresholding (A1111)");
  cmd->add_option("--control-image", r.control_image, "ControlNet hint image");
  cmd->add_option("--control-scale", r.control_scale, "ControlNet conditioning scale");
  cmd->add_option("--control-start", r.control_start, "Fraction of steps where ControlNet starts");
  cmd->add_option("--control-end", r.control_end, "Fraction of steps where ControlNet ends");
  cmd->add_option("--control-preprocess", r.control_preprocess, "none | canny");
  cmd->add_option("--canny-low", r.canny_low, "Canny low threshold");
  cmd->add_option("--canny-high", r.canny_high, "Canny high threshold");
  cmd->add_option(
      "--canny-blur", r.canny_blur,
      "Gaussian blur sigma (pixels) before Canny; 0 = none, as the ControlNet annotator");
  cmd->add_option("--control-save-hint", r.control_save_hint,
                  "Write the hint image the ControlNet sees (PNG)");
  cmd->callback([a] { run_generate(*a); });
}

}  // namespace sdc::cli
