// The A1111 ⇄ sdc sampler table and resolve_sampler().
#include "server/a1111/sampler_names.h"

#include "common/error.h"
#include "sampling/sampler_catalog.h"
#include "server/a1111/api_error.h"

namespace sdc::server::a1111 {
namespace {

// A1111's sd_schedulers.py marks these as needing the inner model (GET /schedulers shows it).
bool needs_inner_model(sampling::SchedulerKind k) {
  using K = sampling::SchedulerKind;
  return k == K::kUniform || k == K::kSgmUniform || k == K::kSimple || k == K::kNormal ||
         k == K::kDdim || k == K::kBeta;
}

// sampling's UsageError as the 400 A1111 clients get, its message listing what exists.
template <class F>
auto or_400(const char* what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const UsageError& e) {
    throw ApiError(400, "HTTPException", what, e.what());
  }
}

}  // namespace

SamplerChoice resolve_sampler(std::string_view name, std::string_view scheduler) {
  // A1111's default sampler_index is "Euler".
  const std::string requested = name.empty() ? "Euler" : std::string(name);
  const sampling::ResolvedSampler r =
      or_400("Sampler not found", [&] { return sampling::resolve_sampler(requested); });
  // A combined name ("DPM++ 2M Karras") wins over the request's scheduler, as A1111's
  // get_sampler_and_scheduler does.
  sampling::SchedulerKind kind = sampling::SchedulerKind::kAutomatic;
  if (r.scheduler)
    kind = *r.scheduler;
  else if (!scheduler.empty())
    kind = or_400("Scheduler not found", [&] { return sampling::resolve_scheduler(scheduler); });
  SamplerChoice c;
  c.sampler = r.sampler->id_name;
  c.display_name = r.sampler->name;
  if (r.sampler->family != sampling::SamplerFamily::kKDiffusion) {
    // DDIM, PLMS, UniPC, LCM run their own step lists: A1111 ignores the scheduler for them.
    kind = sampling::SchedulerKind::kAutomatic;
  }
  c.schedule = sampling::scheduler_info(kind).name;
  c.schedule_label =
      sampling::scheduler_info(sampling::effective_scheduler(*r.sampler, kind)).label;
  return c;
}

nlohmann::json samplers_json() {
  nlohmann::json out = nlohmann::json::array();
  for (const sampling::SamplerInfo& s : sampling::all_samplers()) {
    nlohmann::json options = nlohmann::json::object();
    for (const auto& [k, v] : sampling::sampler_api_options(s)) options[k] = v;
    nlohmann::json aliases = nlohmann::json::array();
    for (const std::string& a : s.aliases) aliases.push_back(a);
    out.push_back({{"name", s.name}, {"aliases", aliases}, {"options", options}});
  }
  return out;
}

nlohmann::json schedulers_json() {
  nlohmann::json out = nlohmann::json::array();
  for (const sampling::SchedulerInfo& s : sampling::all_schedulers()) {
    nlohmann::json aliases = nullptr;
    if (!s.aliases.empty()) {
      aliases = nlohmann::json::array();
      for (const std::string& a : s.aliases) aliases.push_back(a);
    }
    out.push_back({{"name", s.name},
                   {"label", s.label},
                   {"aliases", aliases},
                   {"default_rho", s.default_rho},
                   {"need_inner_model", needs_inner_model(s.kind)}});
  }
  return out;
}

}  // namespace sdc::server::a1111
