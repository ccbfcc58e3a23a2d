// The option table and the check of a value against it.
#include "server/a1111/options_catalog.h"

#include <algorithm>
#include <cmath>

#include "server/a1111/pydantic_coerce.h"

namespace sdc::server::a1111 {
namespace {

using nlohmann::json;
constexpr OptionRole A = OptionRole::Applied, X = OptionRole::Fixed, F = OptionRole::Free;

}  // namespace

const std::vector<OptionSpec>& option_catalog() {
  static const std::vector<OptionSpec> catalog = {
      // Applied (live values filled in by the route).
      {"sd_model_checkpoint", "", A},
      {"sd_checkpoint_hash", "", A},
      {"CLIP_stop_at_last_layers", 1, A},
      {"sd_vae", "Automatic", A},
      // TAESD (sdc serve --taesd): "Full" is the model's VAE.
      {"sd_vae_decode_method", "Full", A},
      {"sd_vae_encode_method", "Full", A},
      {"show_progress_type", "Approx cheap", A},
      // Fixed: what sdc does, the only value it takes.
      {"samples_format", "png", X},
      {"eta_noise_seed_delta", 0, X},
      {"ddim_discretize", "uniform", X},
      {"img2img_fix_steps", false, A},
      {"sd_hypernetwork", "None", X},
      {"initial_noise_multiplier", 1.0, X},
      {"comma_padding_backtrack", 20, X},
      {"randn_source", "CPU", X},
      {"eta_ancestral", 1.0, X},
      {"eta_ddim", 0.0, X},
      {"s_churn", 0.0, X},
      {"s_noise", 1.0, X},
      {"s_min_uncond", 0.0, X},
      {"emphasis", "Original", X},
      {"enable_pnginfo", true, X},
      {"sd_unet", "Automatic", X},
      {"upcast_attn", false, X},
      {"api_enable_requests", false, X},
      // Free: stored and echoed, no effect on images.
      {"sd_checkpoints_limit", 1, F},
      {"sd_vae_overrides_per_model_preferences", true, F},
      {"s_tmin", 0.0, F},
      {"s_tmax", 0.0, F},
      {"inpainting_mask_weight", 1.0, F},
      {"send_seed", true, F},
      {"send_size", true, F},
      {"live_previews_enable", true, F},
      {"live_previews_image_format", "png", F},
      {"show_progress_every_n_steps", 10, F},
      {"add_model_hash_to_info", true, F},
      {"add_model_name_to_info", true, F},
      {"add_vae_name_to_info", true, F},
      {"add_vae_hash_to_info", true, F},
      {"add_version_to_infotext", true, F},
      {"jpeg_quality", 80, F},
      {"webp_lossless", false, F},
      {"return_grid", true, F},
      {"grid_only_if_multiple", true, F},
      {"return_mask", false, F},
      {"return_mask_composite", false, F},
      {"img2img_background_color", "#ffffff", F},
      {"extra_networks_default_multiplier", 1.0, F},
      {"sd_lora", "None", F},
      {"lora_preferred_name", "Alias from file", F},
      {"samples_save", true, F},
      {"save_images_add_number", true, F},
      {"outdir_samples", "", F},
      {"outdir_txt2img_samples", "outputs/txt2img-images", F},
      {"outdir_img2img_samples", "outputs/img2img-images", F},
      {"api_forbid_local_requests", true, F},
      {"api_useragent", "", F},
      {"interrupt_after_current", true, F},
      {"enable_quantization", false, F},
      {"token_merging_ratio", 0.0, X},
  };
  return catalog;
}

std::vector<std::string> option_choices(const std::string& key) {
  if (key == "sd_vae_decode_method" || key == "sd_vae_encode_method") return {"Full", "TAESD"};
  // A1111 also has "Full" (a VAE decode per preview) and "Approx NN" (a small trained network):
  // not implemented, so refused.
  if (key == "show_progress_type") return {"Approx cheap", "TAESD"};
  return {};
}

const OptionSpec* find_option(const std::string& key) {
  for (const OptionSpec& s : option_catalog())
    if (key == s.key) return &s;
  return nullptr;
}

json check_option_value(const OptionSpec& spec, const json& value, const json& loc,
                        FieldErrors& errors) {
  const json& def = spec.default_value;
  json coerced;
  const size_t before = errors.size();
  if (value.is_null()) {
    coerced = nullptr;
  } else if (def.is_boolean()) {
    if (auto b = coerce_bool(value, loc, errors)) coerced = *b;
  } else if (def.is_number_integer()) {
    if (auto i = coerce_int(value, loc, errors)) coerced = *i;
  } else if (def.is_number_float()) {
    if (auto f = coerce_float(value, loc, errors)) coerced = *f;
  } else {
    if (auto s = coerce_str(value, loc, errors)) coerced = *s;
  }
  if (errors.size() != before) return nullptr;
  const std::vector<std::string> choices = option_choices(spec.key);
  if (!choices.empty() && coerced.is_string() &&
      std::find(choices.begin(), choices.end(), coerced.get<std::string>()) == choices.end()) {
    errors.add(loc, "sdc implements " + python_str(json(choices)) + " for " + spec.key,
               "value_error.not_supported", {{"supported", choices}});
    return nullptr;
  }
  if (spec.role == OptionRole::Fixed && !coerced.is_null()) {
    const bool same = def.is_number() ? std::fabs(coerced.get<double>() - def.get<double>()) < 1e-9
                                      : coerced == def;
    if (!same) {
      errors.add(loc, "sdc implements only " + python_str(def) + " for " + spec.key,
                 "value_error.not_supported", {{"supported", def}});
      return nullptr;
    }
  }
  return coerced;
}

}  // namespace sdc::server::a1111
