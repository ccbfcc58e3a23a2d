// The samplers and noise schedules sdc offers, their command-line names (--sampler, --scheduler)
// and the names A1111 writes into PNG "parameters" metadata.
#pragma once

#include <string>
#include <string_view>

namespace sdc::sampling {

// Each follows the diffusers 0.28 scheduler of the same name, as configured for SD1.5.
enum class SamplerKind {
  kLcm,      // LCMScheduler
  kDdim,     // DDIMScheduler, eta 0
  kEuler,    // EulerDiscreteScheduler
  kEulerA,   // EulerAncestralDiscreteScheduler
  kDpmpp2m,  // DPMSolverMultistepScheduler, dpmsolver++, order 2
};

// kDefault: the scheduler's own timestep spacing ("leading" for SD1.5).
// kKarras: Karras et al. sigmas (rho 7); only for the sigma-based samplers (euler, euler_a,
// dpmpp_2m).
enum class ScheduleKind { kDefault, kKarras };

// "lcm" | "ddim" | "euler" | "euler_a" | "dpmpp_2m"; anything else throws sdc::UsageError
// naming --sampler and listing the valid values.
SamplerKind parse_sampler(std::string_view name);
// "automatic" (or "default") | "karras"; anything else throws sdc::UsageError naming --scheduler.
ScheduleKind parse_schedule(std::string_view name);

const char* sampler_name(SamplerKind kind);    // the --sampler value, e.g. "euler_a"
const char* schedule_name(ScheduleKind kind);  // the --scheduler value, e.g. "karras"
bool uses_sigmas(SamplerKind kind);            // euler, euler_a, dpmpp_2m: karras applies

// A1111's display name: "LCM", "DDIM", "Euler", "Euler a", "DPM++ 2M", with " Karras" appended
// for the Karras schedule ("DPM++ 2M Karras").
std::string a1111_sampler_name(SamplerKind kind, ScheduleKind schedule);

}  // namespace sdc::sampling
