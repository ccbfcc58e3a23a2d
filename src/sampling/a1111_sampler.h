// One A1111 sampling run: the sampler and schedule chosen by name, A1111's options, the image
// RNG, and the UNet as UnetEps; txt2img and img2img as A1111 v1.10.1 runs them
// (KDiffusionSampler / CompVisSampler .sample and .sample_img2img):
//   k-diffusion  sigmas from the schedule (discard_next_to_last_sigma: made for steps + 1, the
//                penultimate dropped); txt2img x = noise * sigmas[0]; img2img t_enc =
//                int(min(strength, 0.999) * steps), sigma_sched = sigmas[steps - t_enc - 1:],
//                x = init + noise * sigma_sched[0]; SDE samplers get a Brownian tree per image
//                seed over [min positive sigma, max sigma] of the full list
//   timesteps    DDIM/PLMS (CFG++) over CompVisSampler.get_timesteps, x = noise; img2img noised
//                to timesteps[t_enc] and run over timesteps[:t_enc]
//   LCM          LCMCompVisDenoiser's sigmas
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "sampling/k_samplers.h"
#include "sampling/model_wrappers.h"
#include "sampling/rng/image_rng.h"
#include "sampling/sampler_catalog.h"
#include "sampling/schedulers.h"

namespace sdc::sampling {

struct A1111Settings {
  SamplerId sampler = SamplerId::kEulerA;
  SchedulerKind scheduler = SchedulerKind::kAutomatic;
  int steps = 20;
  double cfg_scale = 7.0;
  ScheduleOptions schedule;   // --sigma-min/--sigma-max/--rho (0: the defaults)
  std::optional<double> eta;  // default: 1 (ancestral/SDE, eta_ancestral), 0 (DDIM)
  double s_churn = 0, s_tmin = 0, s_tmax = 0, s_noise = 1;  // s_tmax 0 = infinity (A1111)
  bool quantize = false;  // A1111's enable_quantization: integer UNet timesteps
  bool img2img = false;
  double strength = 0.75;  // img2img denoising strength in (0, 1]
  // setup_img2img_steps with explicit steps (the hires second pass) or img2img_fix_steps: the
  // schedule is made for int(steps / min(strength, 0.999)) steps and exactly `steps` of them run;
  // strength 0 then runs none (k-diffusion and LCM samplers; A1111 fails for the others).
  bool fix_steps = false;
};

// After every UNet evaluation: (evaluations so far, the planned total; 0 when not known in
// advance, as for DPM adaptive). May throw to stop.
using EvaluationCallback = std::function<void(int done, int total)>;
// After each sampler step: its index and the denoised prediction (A1111's callback `denoised`,
// the latents A1111 returns when interrupted).
using DenoisedCallback = std::function<void(int step, std::span<const float> denoised)>;

// A1111's inpainting blend (CFGDenoiser with p.mask/p.nmask) that keeps the known region at the
// init latents: x·nmask + init·(1 − nmask), applied to the denoised prediction after each
// evaluation for k-diffusion and LCM, and to the UNet's input for the timestep samplers
// (CFGDenoiserTimesteps blends before denoising; its sampler keeps its own unblended x).
struct LatentBlend {
  std::span<const float> init;   // [B, C, h, w], the (filled) init latents
  std::span<const float> nmask;  // [h, w], 1 = repaint
  void apply(std::span<float> x) const;
};

class A1111Sampler {
 public:
  // Validates the combination and builds the schedule; throws sdc::UsageError.
  explicit A1111Sampler(const A1111Settings& settings);

  const SamplerInfo& info() const { return *info_; }
  const A1111Settings& settings() const { return settings_; }
  // UNet evaluations the run will make (0 for DPM adaptive: decided while running).
  int planned_evaluations() const { return planned_; }
  // The sigma list the k-diffusion/LCM sampler walks (img2img: the sliced one); empty for DDIM.
  const std::vector<float>& sigmas() const { return run_sigmas_; }
  const std::vector<int>& timesteps() const { return run_timesteps_; }

  // The starting latents: txt2img from the initial noise; img2img from the encoded init
  // latents (already * 0.18215) and the initial noise.
  std::vector<float> start(std::span<const float> noise,
                           std::span<const float> init_latents = {}) const;

  // Runs the sampler from `x`; `rng` supplies later draws and the Brownian tree's seeds.
  // `blend`: inpainting (A1111's mask), or null.
  std::vector<float> run(std::vector<float> x, const UnetEps& unet, ImageRng& rng,
                         const EvaluationCallback& on_eval = {},
                         const DenoisedCallback& on_step = {},
                         const LatentBlend* blend = nullptr) const;

  // A1111's infotext fields for this run, in A1111's order: "Schedule type", then "Schedule min
  // sigma"/"max sigma"/"rho", "Beta schedule alpha"/"beta", "Eta"/"Eta DDIM", "Sigma churn"…
  std::string schedule_type_label() const;
  std::vector<std::pair<std::string, std::string>> extra_infotext() const;

 private:
  A1111Settings settings_;
  const SamplerInfo* info_;
  std::vector<float> full_sigmas_, run_sigmas_;
  std::vector<int> full_timesteps_, run_timesteps_;
  int t_enc_ = 0;
  int planned_ = 0;
};

}  // namespace sdc::sampling
