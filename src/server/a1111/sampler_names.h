// A1111's sampler and scheduler names, mapped onto the samplers sdc has. One function,
// resolve_sampler(), turns what a request says into sdc's sampler and schedule; the lists behind
// GET /samplers and GET /schedulers come from the same table, so a client only ever sees names
// that resolve.
//
// Matching, case-insensitive: the A1111 display name ("Euler a"), an A1111 alias ("k_euler_a")
// or sdc's id ("euler_a"); when none matches, a trailing scheduler ("DPM++ 2M Karras") is split
// off and wins over the request's `scheduler`, as A1111's get_sampler_and_scheduler does.
// Unlike A1111 (which silently falls back to "DPM++ 2M" for a name it does not know), an unknown
// sampler or scheduler is a 400 naming the ones sdc has.
//
// Schedulers: "Automatic" is the sampler's own default (Karras for DPM++ 2M, as A1111); DDIM is a
// timestep sampler, so A1111 ignores the scheduler for it and so does sdc.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace sdc::server::a1111 {

struct SamplerChoice {
  std::string sampler;         // sdc's id: "euler_a", "dpmpp_2m", …
  std::string schedule;        // sdc's id: "default" | "karras"
  std::string display_name;    // A1111's: "Euler a"
  std::string schedule_label;  // A1111's "Schedule type": "Automatic", "Karras"
};

// `name` empty means "not given" (A1111's default sampler_index, "Euler"); `scheduler` empty
// means Automatic. Throws ApiError 400 ("Sampler not found" / "Scheduler not found") whose
// "errors" lists the valid names.
SamplerChoice resolve_sampler(std::string_view name, std::string_view scheduler);

// GET /sdapi/v1/samplers: [{name, aliases, options}] for the samplers sdc has, options as
// strings (A1111's SamplerItem.options is dict[str, str]).
nlohmann::json samplers_json();
// GET /sdapi/v1/schedulers: [{name, label, aliases, default_rho, need_inner_model}].
nlohmann::json schedulers_json();

}  // namespace sdc::server::a1111
