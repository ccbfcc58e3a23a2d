// A1111's sampler and scheduler names; see sampler_catalog.h.

#include "sampling/sampler_catalog.h"

#include <algorithm>
#include <cctype>

#include "common/error.h"

namespace sdc::sampling {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool equals_ci(std::string_view a, std::string_view b) {
  return lower(a) == lower(b);
}

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

const SamplerInfo* find_sampler(std::string_view name) {
  for (const SamplerInfo& s : all_samplers()) {
    if (equals_ci(name, s.name) || equals_ci(name, s.id_name)) return &s;
    for (const std::string& a : s.aliases)
      if (equals_ci(name, a)) return &s;
  }
  return nullptr;
}

const SchedulerInfo* find_scheduler(std::string_view name) {
  for (const SchedulerInfo& s : all_schedulers()) {
    if (equals_ci(name, s.name) || equals_ci(name, s.label)) return &s;
    for (const std::string& a : s.aliases)
      if (equals_ci(name, a)) return &s;
  }
  return nullptr;
}

}  // namespace

const std::vector<SamplerInfo>& all_samplers() {
  using F = SamplerFamily;
  using K = SchedulerKind;
  // A1111 v1.10.1's order and options (sd_samplers_kdiffusion/_timesteps/_lcm).
  static const std::vector<SamplerInfo> kAll = [] {
    std::vector<SamplerInfo> v;
    v.reserve(20);  // `add` hands out a pointer to the last element
    auto add = [&](SamplerId id, const char* name, const char* snake,
                   std::vector<std::string> aliases, F family, K automatic, const char* cost) {
      SamplerInfo s;
      s.id = id;
      s.name = name;
      s.id_name = snake;
      s.aliases = std::move(aliases);
      s.family = family;
      s.automatic = automatic;
      s.cost = cost;
      v.push_back(std::move(s));
      return &v.back();
    };
    SamplerInfo* s;
    s = add(SamplerId::kDpmpp2m, "DPM++ 2M", "dpmpp_2m", {"k_dpmpp_2m"}, F::kKDiffusion, K::kKarras,
            "1");
    s = add(SamplerId::kDpmppSde, "DPM++ SDE", "dpmpp_sde", {"k_dpmpp_sde"}, F::kKDiffusion,
            K::kKarras, "2");
    s->second_order = s->brownian_noise = s->uses_eta = s->uses_s_noise = true;
    s = add(SamplerId::kDpmpp2mSde, "DPM++ 2M SDE", "dpmpp_2m_sde", {"k_dpmpp_2m_sde"},
            F::kKDiffusion, K::kExponential, "1");
    s->brownian_noise = s->uses_eta = s->uses_s_noise = true;
    s = add(SamplerId::kDpmpp2mSdeHeun, "DPM++ 2M SDE Heun", "dpmpp_2m_sde_heun",
            {"k_dpmpp_2m_sde_heun"}, F::kKDiffusion, K::kExponential, "1");
    s->brownian_noise = s->uses_eta = s->uses_s_noise = true;
    s->solver_type = "heun";
    s = add(SamplerId::kDpmpp2sA, "DPM++ 2S a", "dpmpp_2s_a", {"k_dpmpp_2s_a"}, F::kKDiffusion,
            K::kKarras, "2");
    s->uses_ensd = s->second_order = s->uses_eta = s->uses_s_noise = true;
    s = add(SamplerId::kDpmpp3mSde, "DPM++ 3M SDE", "dpmpp_3m_sde", {"k_dpmpp_3m_sde"},
            F::kKDiffusion, K::kExponential, "1");
    s->discard_next_to_last_sigma = s->brownian_noise = s->uses_eta = s->uses_s_noise = true;
    s = add(SamplerId::kEulerA, "Euler a", "euler_a", {"k_euler_a", "k_euler_ancestral"},
            F::kKDiffusion, K::kUniform, "1");
    s->uses_ensd = s->uses_eta = true;
    s = add(SamplerId::kEuler, "Euler", "euler", {"k_euler"}, F::kKDiffusion, K::kUniform, "1");
    s->uses_churn = s->uses_s_noise = true;
    s = add(SamplerId::kLms, "LMS", "lms", {"k_lms"}, F::kKDiffusion, K::kUniform, "1");
    s = add(SamplerId::kHeun, "Heun", "heun", {"k_heun"}, F::kKDiffusion, K::kUniform,
            "2 (1 on the last step)");
    s->second_order = s->uses_churn = s->uses_s_noise = true;
    s = add(SamplerId::kDpm2, "DPM2", "dpm2", {"k_dpm_2"}, F::kKDiffusion, K::kKarras,
            "2 (1 on the last step)");
    s->discard_next_to_last_sigma = s->second_order = s->uses_churn = s->uses_s_noise = true;
    s = add(SamplerId::kDpm2A, "DPM2 a", "dpm2_a", {"k_dpm_2_a"}, F::kKDiffusion, K::kKarras,
            "2 (1 on the last step)");
    s->discard_next_to_last_sigma = s->uses_ensd = s->second_order = s->uses_eta = true;
    s->uses_s_noise = true;
    s = add(SamplerId::kDpmFast, "DPM fast", "dpm_fast", {"k_dpm_fast"}, F::kKDiffusion,
            K::kUniform, "1 (steps = model evaluations)");
    s->uses_ensd = s->uses_eta = s->uses_s_noise = true;
    s = add(SamplerId::kDpmAdaptive, "DPM adaptive", "dpm_adaptive", {"k_dpm_ad"}, F::kKDiffusion,
            K::kUniform, "adaptive: 3 per attempt, ignores --steps");
    s->uses_ensd = s->uses_eta = true;
    s = add(SamplerId::kRestart, "Restart", "restart", {"restart"}, F::kKDiffusion, K::kKarras,
            "2, plus 18 restart evaluations from 20 steps on");
    s->second_order = true;
    s = add(SamplerId::kDdim, "DDIM", "ddim", {"ddim"}, F::kTimesteps, K::kAutomatic,
            "1 (len(timesteps) - 1 steps)");
    s->uses_eta = true;
    s = add(SamplerId::kDdimCfgpp, "DDIM CFG++", "ddim_cfgpp", {"ddim_cfgpp"}, F::kTimesteps,
            K::kAutomatic, "1 (len(timesteps) - 1 steps)");
    s->uses_eta = true;
    s = add(SamplerId::kPlms, "PLMS", "plms", {"plms"}, F::kTimesteps, K::kAutomatic,
            "1 (2 on the first step)");
    s = add(SamplerId::kUnipc, "UniPC", "unipc", {"unipc"}, F::kTimesteps, K::kAutomatic, "1");
    s = add(SamplerId::kLcm, "LCM", "lcm", {"k_lcm"}, F::kLcm, K::kAutomatic, "1");
    (void)s;
    return v;
  }();
  return kAll;
}

const SamplerInfo& sampler_info(SamplerId id) {
  for (const SamplerInfo& s : all_samplers())
    if (s.id == id) return s;
  throw Error("", "sampler", "a known sampler id", std::to_string(static_cast<int>(id)));
}

std::vector<std::pair<std::string, std::string>> sampler_api_options(const SamplerInfo& info) {
  std::vector<std::pair<std::string, std::string>> o;
  if (info.automatic != SchedulerKind::kAutomatic && info.automatic != SchedulerKind::kUniform)
    o.emplace_back("scheduler", scheduler_info(info.automatic).name);
  if (info.discard_next_to_last_sigma) o.emplace_back("discard_next_to_last_sigma", "True");
  if (info.uses_ensd) o.emplace_back("uses_ensd", "True");
  if (info.second_order) o.emplace_back("second_order", "True");
  if (info.brownian_noise) o.emplace_back("brownian_noise", "True");
  if (info.solver_type) o.emplace_back("solver_type", info.solver_type);
  return o;
}

std::string sampler_names_list() {
  std::string out;
  for (const SamplerInfo& s : all_samplers()) {
    if (!out.empty()) out += ", ";
    out += std::string("\"") + s.name + "\" (" + s.id_name + ")";
  }
  return out;
}

std::string scheduler_names_list() {
  std::string out;
  for (const SchedulerInfo& s : all_schedulers()) {
    if (!out.empty()) out += ", ";
    out += std::string("\"") + s.label + "\" (" + s.name + ")";
  }
  return out;
}

ResolvedSampler resolve_sampler(std::string_view raw) {
  const std::string name = trim(raw);
  ResolvedSampler r;
  r.sampler = find_sampler(name);
  if (r.sampler) return r;
  // A1111's combined names: "<sampler> <scheduler label or alias>".
  for (const SchedulerInfo& sch : all_schedulers()) {
    std::vector<std::string> suffixes = {sch.label};
    suffixes.insert(suffixes.end(), sch.aliases.begin(), sch.aliases.end());
    for (const std::string& suffix : suffixes) {
      if (name.size() <= suffix.size() + 1) continue;
      const std::string tail = name.substr(name.size() - suffix.size());
      if (name[name.size() - suffix.size() - 1] != ' ' || !equals_ci(tail, suffix)) continue;
      const SamplerInfo* s = find_sampler(trim(name.substr(0, name.size() - suffix.size() - 1)));
      if (s) {
        r.sampler = s;
        r.scheduler = sch.kind;
        return r;
      }
    }
  }
  throw UsageError("", "--sampler", "one of " + sampler_names_list(), std::string(raw));
}

SchedulerKind resolve_scheduler(std::string_view raw) {
  const std::string name = trim(raw);
  if (const SchedulerInfo* s = find_scheduler(name)) return s->kind;
  if (equals_ci(name, "default")) return SchedulerKind::kAutomatic;  // sdc's earlier name
  throw UsageError("", "--scheduler", "one of " + scheduler_names_list(), std::string(raw));
}

SchedulerKind effective_scheduler(const SamplerInfo& sampler, SchedulerKind requested) {
  if (requested != SchedulerKind::kAutomatic) return requested;
  return sampler.automatic == SchedulerKind::kUniform ? SchedulerKind::kAutomatic
                                                      : sampler.automatic;
}

}  // namespace sdc::sampling
