// The one name table of A1111's 20 samplers and 12 schedulers: display names ("DPM++ 2M SDE"),
// A1111's aliases ("k_dpmpp_2m_sde"), snake_case ids ("dpmpp_2m_sde"), each sampler's options
// (its Automatic schedule, discard_next_to_last_sigma, second order, Brownian noise, ENSD use),
// and name resolution for the CLI, `convert --defaults` and the server.
//
// Public API (stable; the server's GET /sdapi/v1/samplers and /schedulers list these):
//   all_samplers()      every sampler in A1111's order: name, aliases (A1111's own, then the
//                       snake_case id), options as A1111 reports them
//   all_schedulers()    (schedulers.h) every scheduler: name (id) and label
//   resolve_sampler()   a display name, alias or id, case-insensitive, optionally followed by a
//                       scheduler label ("DPM++ 2M Karras": A1111's older combined names)
//   resolve_scheduler() a scheduler id, label or alias, case-insensitive
// Unknown names throw sdc::UsageError whose message lists what exists (exit code 2 in the CLI,
// HTTP 400 in the server).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sampling/schedulers.h"

namespace sdc::sampling {

enum class SamplerId {
  kEulerA,
  kEuler,
  kLms,
  kHeun,
  kDpm2,
  kDpm2A,
  kDpmpp2sA,
  kDpmpp2m,
  kDpmppSde,
  kDpmpp2mSde,
  kDpmpp2mSdeHeun,
  kDpmpp3mSde,
  kDpmFast,
  kDpmAdaptive,
  kRestart,
  kDdim,
  kDdimCfgpp,
  kPlms,
  kUnipc,
  kLcm,
};

// How the sampler sees the model: k-diffusion (sigmas, denoised x0), A1111's timestep samplers
// (integer timesteps, eps), or LCM's own denoiser over k-diffusion sigmas.
enum class SamplerFamily { kKDiffusion, kTimesteps, kLcm };

struct SamplerInfo {
  SamplerId id = SamplerId::kEulerA;
  const char* name = "";             // A1111's display name (infotext "Sampler:")
  const char* id_name = "";          // snake_case id
  std::vector<std::string> aliases;  // A1111's aliases
  SamplerFamily family = SamplerFamily::kKDiffusion;
  // The schedule "Automatic" means for it; kUniform stands for k-diffusion's own get_sigmas(n)
  // (identical values). Timestep samplers and LCM have their own step lists.
  SchedulerKind automatic = SchedulerKind::kAutomatic;
  bool discard_next_to_last_sigma = false;
  bool second_order = false;          // two model evaluations per step
  bool brownian_noise = false;        // SDE: noise from the Brownian tree
  bool uses_ensd = false;             // A1111 writes "ENSD" into the infotext
  bool uses_eta = false;              // --eta applies (eta_ancestral or eta_ddim)
  bool uses_churn = false;            // --s-churn/--s-tmin/--s-tmax apply
  bool uses_s_noise = false;          // --s-noise applies
  const char* solver_type = nullptr;  // "heun" for DPM++ 2M SDE Heun
  const char* cost = "";              // UNet evaluations per step, for --help and the README
};

const std::vector<SamplerInfo>& all_samplers();
const SamplerInfo& sampler_info(SamplerId id);

// A1111's /sdapi/v1/samplers "options": string values as A1111 serialises them ("True",
// "karras").
std::vector<std::pair<std::string, std::string>> sampler_api_options(const SamplerInfo& info);

struct ResolvedSampler {
  const SamplerInfo* sampler = nullptr;
  // The scheduler a combined name carried ("DPM++ 2M Karras" -> Karras); empty otherwise.
  std::optional<SchedulerKind> scheduler;
};
ResolvedSampler resolve_sampler(std::string_view name);
SchedulerKind resolve_scheduler(std::string_view name);

// Comma-separated lists for messages and --help.
std::string sampler_names_list();
std::string scheduler_names_list();

// The schedule a sampler actually uses for `requested` (kAutomatic -> the sampler's own), as
// A1111 writes it in the infotext "Schedule type" (Automatic stays "Automatic" when the sampler
// has none of its own).
SchedulerKind effective_scheduler(const SamplerInfo& sampler, SchedulerKind requested);

}  // namespace sdc::sampling
