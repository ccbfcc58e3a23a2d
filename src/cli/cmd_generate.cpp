// `sdc generate`: txt2img / img2img / ControlNet from a checkpoint, diffusers folder or compiled
// .gguf, writing PNGs with A1111 "parameters" metadata (and optionally the final latents). A thin
// caller of the engine that `sdc serve` runs, so one request gives the same PNG either way.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>

#include "backend/cpu/plan.h"
#include "backend/cpu/reference_impls.h"
#include "cli/commands.h"
#include "cli/model_options.h"
#include "cli/progress_bar.h"
#include "cli/user_cache.h"
#include "common/error.h"
#include "common/huge_pages.h"
#include "common/stopwatch.h"
#include "engine/engine.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "pipeline/compat.h"
#include "pipeline/generation_params.h"
#include "pipeline/hires_fix.h"
#include "pipeline/image_infotext.h"
#include "pipeline/model_bundle.h"
#include "pipeline/plan_warmup.h"
#include "pipeline/stable_diffusion.h"
#include "sampling/rng/torch_generator.h"
#include "sampling/sampler_catalog.h"
#include "sampling/sampler_kind.h"
#include "text/tokenizer.h"

namespace sdc::cli {
namespace {

struct GenerateArgs {
  pipeline::BundleOptions model;
  pipeline::GenerationRequest req;
  std::string precision = "auto";
  std::string vae_precision = "auto";
  bool winograd = true;  // --no-winograd
  int threads = 0;
  std::string output = "output.png";
  std::string save_latents;
  std::string save_noise, save_conditioning;
  std::vector<int> seed_resize_from;  // W H
  std::vector<int> hires_size;        // W H
  std::string preview;                // --preview FILE: the latest preview, rewritten
  int preview_every = 5;
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

// A failed job's message as the error main() prints: bad input exits 2, the rest 1.
[[noreturn]] void rethrow_failure(const engine::JobSnapshot& s) {
  if (s.error_kind == "out_of_memory") throw std::bad_alloc();
  if (s.error_kind == "bad_request") throw Error(s.error);
  throw std::runtime_error(s.error);
}

void run_generate(GenerateArgs& a) {
  pipeline::GenerationRequest& req = a.req;
  if (a.model.model.empty())
    throw UsageError("", "-m/--model", "a model file or diffusers folder", "an empty path");
  pipeline::validate(req);
  pipeline::validate_sampling(req);
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
  if (pipeline::uses_control(req) && a.model.controlnet.empty() &&
      std::filesystem::path(a.model.model).extension() != ".gguf")
    throw UsageError("", "--control-image",
                     "a ControlNet (--control-net FILE or one bundled in a .gguf)", "none");
  cpu::parse_precision(a.precision);
  engine::parse_vae_precision(a.vae_precision);
  anonymous_huge_pages();  // a bad SDC_HUGE_PAGES is refused before any work

  // The same engine `sdc serve` runs, with this one model and a queue of one job.
  Stopwatch since_start;  // for "load to first UNet step", the figure a deployment cares about
  engine::EngineOptions options;
  options.registry.single_model = a.model.model;
  options.registry.model_config = a.model.model_config;
  options.registry.hash_cache = user_hash_cache();
  options.single_model_extras = a.model;
  options.precision = a.precision;
  options.vae_precision = a.vae_precision;
  options.winograd = a.winograd;
  options.threads = a.threads;
  options.max_queue = 1;
  options.one_shot = true;  // one job, then exit: components go once used
  engine::Engine engine(options);

  engine::JobRequest job_request;
  job_request.generation = req;
  job_request.model = engine.current_model().name;
  job_request.keep_latents = !a.save_latents.empty();
  job_request.keep_inputs = !a.save_noise.empty() || !a.save_conditioning.empty();
  if (!a.preview.empty()) job_request.preview_every = a.preview_every;
  const bool random_seed = req.seed < 0;
  const bool random_subseed = req.subseed_strength != 0 && req.subseed < 0;
  auto job = engine.submit(job_request);
  if (random_seed) std::cout << "seed: " << job->request().generation.seed << "\n";
  if (random_subseed) std::cout << "subseed: " << job->request().generation.subseed << "\n";

  // Progress from the job's events: one bar per batch.
  std::unique_ptr<ProgressBar> bar;
  int bar_batch = -1;
  double first_step_ms = 0;
  size_t slow_warned = 0;  // cpu::reference_use_count() already said
  uint64_t preview_id = 0;
  for (uint64_t seen = 0;;) {
    const auto events = job->events_after(seen, std::chrono::milliseconds(200));
    bool finished = false;
    for (const auto& e : events) {
      seen = e.seq;
      finished |= e.type == engine::JobEventType::Finished;
      if (!a.preview.empty() && e.progress.preview_id != preview_id &&
          !e.progress.preview_png.empty()) {
        // Written atomically: a viewer polling the file never sees half a PNG.
        preview_id = e.progress.preview_id;
        io::AtomicFile out(a.preview);
        out.write(reinterpret_cast<const uint8_t*>(e.progress.preview_png.data()),
                  e.progress.preview_png.size());
        out.commit();
      }
      // Said as soon as a plan holds such a step: the run ahead may take minutes, not seconds.
      if (const size_t slow = cpu::reference_use_count(); slow > slow_warned) {
        std::cerr << (bar ? "\n" : "") << cpu::reference_uses_notice(slow_warned) << "\n";
        slow_warned = slow;
      }
      if (e.type != engine::JobEventType::Progress ||
          e.progress.stage != pipeline::GenerationStage::Denoising)
        continue;
      const auto& p = e.progress;
      if (p.batch != bar_batch) {
        if (bar) bar->finish();
        bar = std::make_unique<ProgressBar>(
            p.batch_count > 1 ? "batch " + std::to_string(p.batch + 1) + " step" : "step");
        bar_batch = p.batch;
      }
      if (p.batch == 0 && p.step == 1 && first_step_ms == 0) first_step_ms = since_start.ms();
      bar->update(p.step, p.total_steps);
    }
    if (finished) break;
  }
  if (bar) bar->finish();
  const engine::JobSnapshot done = job->wait();
  if (done.status != engine::JobStatus::Succeeded) rethrow_failure(done);
  const engine::JobResult& result = *done.result;
  if (first_step_ms > 0)
    std::cerr << "first UNet step done " << int(first_step_ms)
              << " ms after start (model load, plans, text encoder, step 1)\n";

  const int total = int(result.images.size());
  for (int i = 0; i < total; ++i) {
    const std::string path = output_path(a.output, i, total);
    io::AtomicFile out(path);
    out.write(result.images[size_t(i)].png.data(), result.images[size_t(i)].png.size());
    out.commit();
    std::cout << path << "\n";
  }
  for (const auto& t : result.batch_timings)
    std::cerr << "text encoder " << t.text_encoder_ms << " ms, sampling " << t.sampling_ms
              << " ms (" << t.unet_steps << " steps), "
              << (a.req.decode_with == "taesd" ? "TAESD decode " : "VAE decode ") << t.vae_decode_ms
              << " ms\n";
  // `sdc bench` reads this line for its one-image process figures.
  std::cerr << "peak RSS " << peak_rss_bytes() / (1 << 20) << " MiB\n";
  if (!a.save_latents.empty()) {
    WeightMap m;
    m.set("latents", TensorRef::from_f32(result.latents, result.latent_shape, DType::F32));
    io::write_safetensors(a.save_latents, m);
  }
  if (!a.save_noise.empty()) {
    const Shape shape(result.noise_shape.begin(), result.noise_shape.end());
    WeightMap m;
    m.set("noise", TensorRef::from_f32(result.noise, shape, DType::F32));
    io::write_safetensors(a.save_noise, m);
  }
  if (!a.save_conditioning.empty()) {
    WeightMap m;
    const Shape shape{total, result.context_tokens, result.context_width};
    m.set("cond", TensorRef::from_f32(result.cond, shape, DType::F32));
    if (!result.uncond.empty())
      m.set("uncond", TensorRef::from_f32(result.uncond, shape, DType::F32));
    io::write_safetensors(a.save_conditioning, m);
  }
  // Everything is written and closed. Unwinding the engine, the plans and the mappings (tens of
  // milliseconds of frees and unmaps: ~55 ms for a 512x512 int8 image on the README's VM) would
  // only return memory the exit returns anyway.
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  std::_Exit(0);
}

// --sampler's help: every A1111 name with its id and its UNet cost per step.
std::string sampler_help() {
  std::string h =
      "Sampler: A1111 name, alias or id, case-insensitive, optionally + scheduler (\"DPM++ 2M "
      "Karras\"). UNet evaluations per step:";
  for (const sampling::SamplerInfo& s : sampling::all_samplers())
    h += std::string(" ") + s.name + " (" + s.id_name + "): " + s.cost + ";";
  h += " with --compat diffusers: lcm | ddim | euler | euler_a | dpmpp_2m";
  return h;
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
  cmd->add_option("--compat", r.compat,
                  "a1111 (default): the same image as A1111/Forge for a seed | diffusers: the same "
                  "image as diffusers' pipelines");
  cmd->add_option("--sampler", r.sampler, sampler_help())->each([&r](const std::string&) {
    r.sampler_set = true;
  });
  cmd->add_option("--scheduler", r.scheduler,
                  "Schedule (A1111 id or label, case-insensitive): " +
                      sampling::scheduler_names_list() + "; diffusers: automatic | karras")
      ->each([&r](const std::string&) { r.scheduler_set = true; });
  cmd->add_option("--seed", r.seed, "Seed (-1: random)");
  cmd->add_option("--rng", r.rng,
                  "Random source: nv (default with a1111: A1111's NV, what its default GPU source "
                  "gives on NVIDIA cards) | cpu (torch.Generator('cpu'); A1111's CPU)");
  cmd->add_option("--eta", r.eta,
                  "a1111: eta of ancestral/SDE samplers (default 1) and DDIM (default 0)");
  cmd->add_option("--s-churn", r.s_churn, "a1111: sigma churn (Euler, Heun, DPM2)");
  cmd->add_option("--s-tmin", r.s_tmin, "a1111: sigma tmin");
  cmd->add_option("--s-tmax", r.s_tmax, "a1111: sigma tmax (0 = infinity)");
  cmd->add_option("--s-noise", r.s_noise, "a1111: sigma noise");
  cmd->add_option("--ensd", r.ensd, "a1111: eta noise seed delta (A1111's ENSD)");
  cmd->add_option("--sigma-min", r.sigma_min, "a1111: schedule sigma min (0 = the model's)");
  cmd->add_option("--sigma-max", r.sigma_max, "a1111: schedule sigma max (0 = the model's)");
  cmd->add_option("--rho", r.rho, "a1111: schedule rho (0 = 7 for Karras, 1 for Polyexponential)");
  cmd->add_option("--clip-skip", r.clip_skip, "1 = last text-encoder layer, 2 = penultimate");
  cmd->add_option("--batch-size", r.batch_size, "Images per UNet run");
  cmd->add_option("--batch-count", r.batch_count, "Number of runs");
  cmd->add_option("--precision", a->precision,
                  "f32 | bf16 | auto | int8 (UNet W8A8, other components as auto)");
  cmd->add_option(
      "--vae-precision", a->vae_precision,
      "auto (as --precision) | int8 (VAE and TAESD decoders W8A8: ~3x / ~1.8x faster decode, "
      "check it with sdc compare)");
  add_winograd_flag(*cmd, a->winograd);
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
                  "Write a preview of the current latents to this PNG while sampling");
  cmd->add_option("--preview-method", r.preview_method,
                  "auto (TAESD when loaded, else cheap) | cheap (A1111 'Approx cheap', 1/8 size) "
                  "| taesd");
  cmd->add_flag("--vae-tiling", r.vae_tiling,
                "VAE decode/encode in overlapping tiles: large images in little memory");
  cmd->add_option("--vae-tile-size", r.vae_tile_size,
                  "Tile size in pixels for --vae-tiling (multiple of 64, 128-2048)");
  cmd->add_option("--decode-with", r.decode_with,
                  "vae | taesd: the autoencoder that makes the final image (taesd needs --taesd)");
  cmd->add_option("--encode-with", r.encode_with,
                  "vae | taesd: the autoencoder that encodes --init-image");
  cmd->add_option("--preview-every", a->preview_every, "Steps between previews (default 5)");
  cmd->add_option("--embeddings", a->model.embeddings_dir,
                  "Folder of textual-inversion embeddings (.pt, .bin, .safetensors); the trigger "
                  "word is the file name, as in A1111");
  cmd->add_option("--init-image", r.init_image, "img2img: the starting image (PNG or JPEG)");
  cmd->add_option("--strength", r.strength, "img2img denoising strength in (0, 1]");
  cmd->add_flag("--img2img-fix-steps", r.img2img_fix_steps,
                "A1111's img2img_fix_steps: run exactly --steps steps of a schedule made for "
                "steps / strength (the hires second pass always does)");
  cmd->add_option("--resize-mode", r.resize_mode,
                  "resize | crop | fill (when the image size differs)");
  cmd->add_option("--mask", r.mask,
                  "Inpainting mask for --init-image (white = repaint; resized with Lanczos)");
  cmd->add_flag("--mask-invert", r.mask_invert, "Repaint the black part of the mask instead");
  cmd->add_option("--mask-blur", r.mask_blur,
                  "Gaussian blur sigma (pixels) on the mask (A1111's mask blur; default 0)");
  cmd->add_option_function<float>(
      "--mask-blur-y", [&r](float v) { r.mask_blur_y = v; },
      "Vertical mask blur when it differs from --mask-blur (A1111's mask_blur_y)");
  cmd->add_option("--masked-content", r.masked_content,
                  "What the masked region starts from: original (default) | fill | latent-noise | "
                  "latent-nothing (A1111's masked content)");
  cmd->add_flag(
      "--inpaint-full-res", r.inpaint_full_res,
      "A1111's \"Only masked\": generate the mask's surroundings at -W x -H and paste the "
      "result back into the init image");
  cmd->add_option("--inpaint-padding", r.inpaint_padding,
                  "Pixels around the mask's box with --inpaint-full-res (default 32)");
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
