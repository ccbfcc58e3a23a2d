// The A1111 options sdc answers in GET /sdapi/v1/options, with A1111's keys and defaults, and
// what each means to sdc:
//   - Applied: sdc acts on it (sd_model_checkpoint, CLIP_stop_at_last_layers, sd_vae, the TAESD
//     choices sd_vae_decode_method / sd_vae_encode_method / show_progress_type).
//   - Fixed: it changes how images are made and sdc implements one value only (samples_format
//     "png", eta_noise_seed_delta 0, …). Setting it to that value is accepted; any other value
//     is refused rather than silently ignored.
//   - Free: no effect on generation in sdc (send_seed, jpeg_quality, …); stored and echoed back so
//     that clients which post the whole object back (Open WebUI) or toggle a value (A1111's own
//     tests) work.
// Keys outside the catalog are unknown, as they are to A1111 (which answers 500 KeyError).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/a1111/api_error.h"

namespace sdc::server::a1111 {

enum class OptionRole { Applied, Fixed, Free };

struct OptionSpec {
  const char* key;
  nlohmann::json default_value;
  OptionRole role;
};

// Every option, in a stable order. Defaults of Applied options are placeholders that the route
// replaces with live values (the current model's title, …).
const std::vector<OptionSpec>& option_catalog();
const OptionSpec* find_option(const std::string& key);
// The values sdc implements for an option that takes one of a few strings (empty: any value of
// the option's type).
std::vector<std::string> option_choices(const std::string& key);

// Checks one value for `key` as POST /options or override_settings sends it, recording a field
// error at `loc` when the type is wrong or a Fixed option gets a value sdc does not implement;
// returns the value coerced to the option's type (null after an error). `key` must be known.
nlohmann::json check_option_value(const OptionSpec& spec, const nlohmann::json& value,
                                  const nlohmann::json& loc, FieldErrors& errors);

}  // namespace sdc::server::a1111
