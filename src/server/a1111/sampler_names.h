// A1111's sampler and scheduler names for the API, over sdc's one name table
// (sampling/sampler_catalog.h): resolve_sampler() turns what a request says into the sampler and
// scheduler ids the pipeline takes; GET /samplers and GET /schedulers list the same table, so a
// client only ever sees names that resolve.
//
// Matching is the catalog's: display name ("Euler a"), alias ("k_euler_a") or id ("euler_a"),
// case-insensitive; a trailing scheduler ("DPM++ 2M Karras") wins over the request's
// `scheduler`, as A1111's get_sampler_and_scheduler does. Unlike A1111 (which silently falls
// back to "DPM++ 2M" for a name it does not know), an unknown sampler or scheduler is a 400
// naming the ones sdc has. Timestep samplers (DDIM, PLMS, UniPC) and LCM ignore the scheduler,
// as in A1111.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace sdc::server::a1111 {

struct SamplerChoice {
  std::string sampler;         // the catalog's id: "euler_a", "dpmpp_2m_sde", …
  std::string schedule;        // the catalog's scheduler id: "automatic", "karras", …
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
