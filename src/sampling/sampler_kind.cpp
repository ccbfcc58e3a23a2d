// Sampler and schedule names.
#include "sampling/sampler_kind.h"

#include <string>

#include "common/error.h"

namespace sdc::sampling {

SamplerKind parse_sampler(std::string_view name) {
  for (SamplerKind k : {SamplerKind::kLcm, SamplerKind::kDdim, SamplerKind::kEuler,
                        SamplerKind::kEulerA, SamplerKind::kDpmpp2m})
    if (name == sampler_name(k)) return k;
  throw UsageError("", "--sampler", "one of lcm, ddim, euler, euler_a, dpmpp_2m",
                   std::string(name));
}

ScheduleKind parse_schedule(std::string_view name) {
  // "automatic" is A1111's word for the sampler's own spacing, the shared default of --scheduler.
  if (name == "default" || name == "automatic" || name == "Automatic")
    return ScheduleKind::kDefault;
  if (name == "karras" || name == "Karras") return ScheduleKind::kKarras;
  throw UsageError("", "--scheduler", "one of automatic, karras (with --compat diffusers)",
                   std::string(name));
}

const char* sampler_name(SamplerKind kind) {
  switch (kind) {
    case SamplerKind::kLcm:
      return "lcm";
    case SamplerKind::kDdim:
      return "ddim";
    case SamplerKind::kEuler:
      return "euler";
    case SamplerKind::kEulerA:
      return "euler_a";
    case SamplerKind::kDpmpp2m:
      return "dpmpp_2m";
  }
  return "?";
}

const char* schedule_name(ScheduleKind kind) {
  return kind == ScheduleKind::kKarras ? "karras" : "default";
}

bool uses_sigmas(SamplerKind kind) {
  return kind == SamplerKind::kEuler || kind == SamplerKind::kEulerA ||
         kind == SamplerKind::kDpmpp2m;
}

std::string a1111_sampler_name(SamplerKind kind, ScheduleKind schedule) {
  std::string name;
  switch (kind) {
    case SamplerKind::kLcm:
      name = "LCM";
      break;
    case SamplerKind::kDdim:
      name = "DDIM";
      break;
    case SamplerKind::kEuler:
      name = "Euler";
      break;
    case SamplerKind::kEulerA:
      name = "Euler a";
      break;
    case SamplerKind::kDpmpp2m:
      name = "DPM++ 2M";
      break;
  }
  if (schedule == ScheduleKind::kKarras) name += " Karras";
  return name;
}

}  // namespace sdc::sampling
