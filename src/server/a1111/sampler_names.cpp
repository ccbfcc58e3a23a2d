// The A1111 ⇄ sdc sampler table and resolve_sampler().
#include "server/a1111/sampler_names.h"

#include <algorithm>
#include <cctype>

#include "sampling/sampler_kind.h"
#include "server/a1111/api_error.h"

namespace sdc::server::a1111 {
namespace {

struct SamplerEntry {
  const char* name;                  // A1111's display name
  std::vector<const char*> aliases;  // A1111's aliases
  sampling::SamplerKind kind;        // sdc's sampler
  const char* default_schedule;      // A1111's options["scheduler"]; "" = none
  bool timestep_sampler;             // A1111 ignores the scheduler
  std::vector<std::pair<const char*, const char*>> options;  // as GET /samplers shows them
};

// In A1111's all_samplers order.
const std::vector<SamplerEntry>& sampler_table() {
  static const std::vector<SamplerEntry> table = {
      {"DPM++ 2M",
       {"k_dpmpp_2m"},
       sampling::SamplerKind::kDpmpp2m,
       "karras",
       false,
       {{"scheduler", "karras"}}},
      {"Euler a",
       {"k_euler_a", "k_euler_ancestral"},
       sampling::SamplerKind::kEulerA,
       "",
       false,
       {{"uses_ensd", "True"}}},
      {"Euler", {"k_euler"}, sampling::SamplerKind::kEuler, "", false, {}},
      {"DDIM", {"ddim"}, sampling::SamplerKind::kDdim, "", true, {}},
      {"LCM", {"k_lcm"}, sampling::SamplerKind::kLcm, "", false, {}},
  };
  return table;
}

struct SchedulerEntry {
  const char* name;   // A1111's name
  const char* label;  // A1111's label
  double default_rho;
  sampling::ScheduleKind kind;
};

const std::vector<SchedulerEntry>& scheduler_table() {
  static const std::vector<SchedulerEntry> table = {
      {"automatic", "Automatic", -1, sampling::ScheduleKind::kDefault},
      {"karras", "Karras", 7.0, sampling::ScheduleKind::kKarras},
  };
  return table;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  return out;
}

const SamplerEntry* find_sampler(std::string_view name) {
  const std::string key = lower(name);
  for (const SamplerEntry& e : sampler_table()) {
    if (key == lower(e.name) || key == sampling::sampler_name(e.kind)) return &e;
    for (const char* a : e.aliases)
      if (key == lower(a)) return &e;
  }
  return nullptr;
}

const SchedulerEntry* find_scheduler(std::string_view name) {
  const std::string key = lower(name);
  for (const SchedulerEntry& e : scheduler_table())
    if (key == e.name || key == lower(e.label)) return &e;
  // sdc's own id for Automatic.
  if (key == "default") return &scheduler_table()[0];
  return nullptr;
}

std::string sampler_list() {
  std::string s;
  for (const SamplerEntry& e : sampler_table()) s += (s.empty() ? "" : ", ") + std::string(e.name);
  return s;
}

std::string scheduler_list() {
  std::string s;
  for (const SchedulerEntry& e : scheduler_table())
    s += (s.empty() ? "" : ", ") + std::string(e.label);
  return s;
}

}  // namespace

SamplerChoice resolve_sampler(std::string_view name, std::string_view scheduler) {
  const std::string requested = name.empty() ? "Euler" : std::string(name);
  const SamplerEntry* sampler = find_sampler(requested);
  const SchedulerEntry* schedule = nullptr;
  bool schedule_from_suffix = false;
  if (!sampler) {
    // "DPM++ 2M Karras": the suffix names the scheduler.
    for (const SchedulerEntry& s : scheduler_table())
      for (std::string_view option : {std::string_view(s.label), std::string_view(s.name)}) {
        const std::string suffix = " " + lower(option);
        const std::string l = lower(requested);
        if (!sampler && l.size() > suffix.size() && l.ends_with(suffix)) {
          sampler = find_sampler(std::string_view(requested).substr(0, l.size() - suffix.size()));
          if (sampler) {
            schedule = &s;
            schedule_from_suffix = true;
          }
        }
      }
  }
  if (!sampler)
    throw ApiError(400, "HTTPException", "Sampler not found",
                   "sampler '" + requested + "' is not one sdc has: " + sampler_list());
  if (!schedule_from_suffix) {
    if (scheduler.empty()) {
      schedule = &scheduler_table()[0];
    } else {
      schedule = find_scheduler(scheduler);
      if (!schedule && !sampler->timestep_sampler)
        throw ApiError(
            400, "HTTPException", "Scheduler not found",
            "scheduler '" + std::string(scheduler) + "' is not one sdc has: " + scheduler_list());
    }
  }
  SamplerChoice c;
  c.sampler = sampling::sampler_name(sampler->kind);
  c.display_name = sampler->name;
  if (sampler->timestep_sampler || !sampling::uses_sigmas(sampler->kind)) {
    // DDIM and LCM run their own (diffusers) timesteps; only Automatic means anything.
    if (!sampler->timestep_sampler && schedule &&
        schedule->kind != sampling::ScheduleKind::kDefault)
      throw ApiError(400, "HTTPException", "Scheduler not found",
                     std::string(sampler->name) + " runs only with the Automatic schedule in sdc");
    c.schedule = "default";
    c.schedule_label = "Automatic";
    return c;
  }
  if (schedule->kind == sampling::ScheduleKind::kDefault && *sampler->default_schedule) {
    schedule = find_scheduler(sampler->default_schedule);  // Automatic = the sampler's own
  }
  c.schedule = sampling::schedule_name(schedule->kind);
  c.schedule_label = schedule->label;
  return c;
}

nlohmann::json samplers_json() {
  nlohmann::json out = nlohmann::json::array();
  for (const SamplerEntry& e : sampler_table()) {
    nlohmann::json options = nlohmann::json::object();
    for (const auto& [k, v] : e.options) options[k] = v;
    nlohmann::json aliases = nlohmann::json::array();
    for (const char* a : e.aliases) aliases.push_back(a);
    out.push_back({{"name", e.name}, {"aliases", aliases}, {"options", options}});
  }
  return out;
}

nlohmann::json schedulers_json() {
  nlohmann::json out = nlohmann::json::array();
  for (const SchedulerEntry& e : scheduler_table())
    out.push_back({{"name", e.name},
                   {"label", e.label},
                   {"aliases", nullptr},
                   {"default_rho", e.default_rho},
                   {"need_inner_model", false}});
  return out;
}

}  // namespace sdc::server::a1111
