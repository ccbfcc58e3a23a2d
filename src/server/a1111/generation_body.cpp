// Reading a txt2img/img2img body: one table of A1111's fields drives type coercion and the
// "parameters" echo; then sdc's caps, the features it lacks, the sampler, LoRA tags, overrides
// and images.
#include "server/a1111/generation_body.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "common/error.h"
#include "pipeline/generation_params.h"
#include "server/a1111/api_error.h"
#include "server/a1111/image_base64.h"
#include "server/a1111/options_catalog.h"
#include "server/a1111/pydantic_coerce.h"

namespace sdc::server::a1111 {
namespace {

using nlohmann::json;

enum class T { Int, Float, Bool, Str, StrList, Dict, List };

constexpr int kMaxJsonDepth = 64;

struct Field {
  const char* name;
  T type;
  json default_value;
};

// Fields common to both models, in A1111's model order (StableDiffusionProcessing's signature).
const std::vector<Field>& common_fields() {
  static const std::vector<Field> f = {
      {"prompt", T::Str, ""},
      {"negative_prompt", T::Str, ""},
      {"styles", T::StrList, nullptr},
      {"seed", T::Int, -1},
      {"subseed", T::Int, -1},
      {"subseed_strength", T::Float, 0.0},
      {"seed_resize_from_h", T::Int, -1},
      {"seed_resize_from_w", T::Int, -1},
      {"sampler_name", T::Str, nullptr},
      {"scheduler", T::Str, nullptr},
      {"batch_size", T::Int, 1},
      {"n_iter", T::Int, 1},
      {"steps", T::Int, 50},
      {"cfg_scale", T::Float, 7.0},
      {"width", T::Int, 512},
      {"height", T::Int, 512},
      {"restore_faces", T::Bool, nullptr},
      {"tiling", T::Bool, nullptr},
      {"do_not_save_samples", T::Bool, false},
      {"do_not_save_grid", T::Bool, false},
      {"eta", T::Float, nullptr},
      {"denoising_strength", T::Float, nullptr},
      {"s_min_uncond", T::Float, nullptr},
      {"s_churn", T::Float, nullptr},
      {"s_tmax", T::Float, nullptr},
      {"s_tmin", T::Float, nullptr},
      {"s_noise", T::Float, nullptr},
      {"override_settings", T::Dict, nullptr},
      {"override_settings_restore_afterwards", T::Bool, true},
      {"refiner_checkpoint", T::Str, nullptr},
      {"refiner_switch_at", T::Float, nullptr},
      {"disable_extra_networks", T::Bool, false},
      {"firstpass_image", T::Str, nullptr},
      {"comments", T::Dict, nullptr},
  };
  return f;
}

const std::vector<Field>& txt2img_fields() {
  static const std::vector<Field> f = {
      {"enable_hr", T::Bool, false},
      {"firstphase_width", T::Int, 0},
      {"firstphase_height", T::Int, 0},
      {"hr_scale", T::Float, 2.0},
      {"hr_upscaler", T::Str, nullptr},
      {"hr_second_pass_steps", T::Int, 0},
      {"hr_resize_x", T::Int, 0},
      {"hr_resize_y", T::Int, 0},
      {"hr_checkpoint_name", T::Str, nullptr},
      {"hr_sampler_name", T::Str, nullptr},
      {"hr_scheduler", T::Str, nullptr},
      {"hr_prompt", T::Str, ""},
      {"hr_negative_prompt", T::Str, ""},
  };
  return f;
}

const std::vector<Field>& img2img_fields() {
  static const std::vector<Field> f = {
      {"init_images", T::StrList, nullptr},
      {"resize_mode", T::Int, 0},
      {"image_cfg_scale", T::Float, nullptr},
      {"mask", T::Str, nullptr},
      {"mask_blur_x", T::Int, 4},
      {"mask_blur_y", T::Int, 4},
      {"mask_blur", T::Int, nullptr},
      {"mask_round", T::Bool, true},
      {"inpainting_fill", T::Int, 0},
      {"inpaint_full_res", T::Bool, true},
      {"inpaint_full_res_padding", T::Int, 0},
      {"inpainting_mask_invert", T::Int, 0},
      {"initial_noise_multiplier", T::Float, nullptr},
      {"latent_mask", T::Str, nullptr},
      {"include_init_images", T::Bool, false},
  };
  return f;
}

// The API-only fields A1111 appends to both models.
const std::vector<Field>& api_fields() {
  static const std::vector<Field> f = {
      {"force_task_id", T::Str, nullptr},
      {"sampler_index", T::Str, "Euler"},
      {"script_name", T::Str, nullptr},
      {"script_args", T::List, json::array()},
      {"send_images", T::Bool, true},
      {"save_images", T::Bool, false},
      {"alwayson_scripts", T::Dict, json::object()},
      {"infotext", T::Str, nullptr},
  };
  return f;
}

json coerce_field(const Field& f, BodyReader& r) {
  std::optional<json> v;
  switch (f.type) {
    case T::Int:
      if (auto x = r.get_int(f.name)) v = *x;
      break;
    case T::Float:
      if (auto x = r.get_float(f.name)) v = *x;
      break;
    case T::Bool:
      if (auto x = r.get_bool(f.name)) v = *x;
      break;
    case T::Str:
      if (auto x = r.get_str(f.name)) v = *x;
      break;
    case T::StrList:
      if (auto x = r.get_str_list(f.name)) v = *x;
      break;
    case T::Dict:
      if (auto x = r.get_dict(f.name)) v = *x;
      break;
    case T::List:
      if (auto x = r.get_list(f.name)) v = *x;
      break;
  }
  return v ? *v : f.default_value;
}

void not_supported(FieldErrors& errors, const json& loc, const std::string& what) {
  errors.add(loc, "sdc does not support " + what + " yet", "value_error.not_supported");
}

bool json_types_match(std::string_view ct) {
  // The media type before any parameters, case-insensitive.
  std::string t;
  for (char c : ct) {
    if (c == ';') break;
    if (!std::isspace((unsigned char)c)) t += char(std::tolower((unsigned char)c));
  }
  return t.empty() || t == "application/json" ||
         (t.starts_with("application/") && t.ends_with("+json"));
}

// "value_error.jsondecode" with Python's wording for the most common case.
[[noreturn]] void throw_json_error(const nlohmann::json::parse_error& e, std::string_view body) {
  const size_t pos = e.byte > 0 ? e.byte - 1 : 0;
  size_t line = 1, col = 1;
  for (size_t i = 0; i < pos && i < body.size(); ++i) {
    if (body[i] == '\n')
      ++line, col = 1;
    else
      ++col;
  }
  std::string reason = e.what();
  const size_t colon = reason.find("syntax error");
  if (colon != std::string::npos) reason = reason.substr(colon);
  FieldErrors errors;
  errors.add(json::array({"body", pos}),
             "Invalid JSON: " + reason + ": line " + std::to_string(line) + " column " +
                 std::to_string(col) + " (char " + std::to_string(pos) + ")",
             "value_error.jsondecode",
             {{"msg", reason}, {"pos", pos}, {"lineno", line}, {"colno", col}});
  errors.throw_if_any();
  throw std::logic_error("unreachable");
}

pipeline::GenerationParams params_from_infotext(const std::string& text, FieldErrors& errors) {
  try {
    return pipeline::parse_a1111_parameters(text);
  } catch (const Error& e) {
    errors.add(json::array({"body", "infotext"}), e.what(), "value_error.infotext");
    return {};
  }
}

// Fields the request did not set, taken from an infotext (A1111's `infotext` field).
void apply_infotext(json& body, const std::string& text, FieldErrors& errors) {
  const pipeline::GenerationParams p = params_from_infotext(text, errors);
  const auto fill = [&body](const char* key, json value) {
    if (!body.contains(key) || body[key].is_null()) body[key] = std::move(value);
  };
  fill("prompt", p.prompt);
  fill("negative_prompt", p.negative_prompt);
  fill("steps", p.steps);
  fill("sampler_name", p.sampler);
  if (!p.schedule_type.empty()) fill("scheduler", p.schedule_type);
  fill("cfg_scale", p.cfg_scale);
  if (p.seed >= 0) fill("seed", p.seed);
  fill("width", p.width);
  fill("height", p.height);
  if (p.denoising_strength) fill("denoising_strength", *p.denoising_strength);
  if (p.clip_skip > 1) {
    if (!body.contains("override_settings") || !body["override_settings"].is_object())
      body["override_settings"] = json::object();
    if (!body["override_settings"].contains("CLIP_stop_at_last_layers"))
      body["override_settings"]["CLIP_stop_at_last_layers"] = p.clip_skip;
  }
}

// txt2img's hires fix: the second pass at hr_scale (or hr_resize_x/y) with denoising_strength,
// hr_second_pass_steps and the upscaler "Latent" (default) or "Lanczos"; a second-pass checkpoint,
// sampler, scheduler or prompt of its own is refused.
void read_hires_fix(const json& p, BodyReader& r, pipeline::GenerationRequest& q,
                    FieldErrors& errors, const RequestLimits& limits) {
  q.enable_hr = true;
  const double scale = p["hr_scale"];
  if (r.check_finite("hr_scale", scale) && r.check_ge("hr_scale", scale, 1))
    r.check_le("hr_scale", scale, 8);
  q.hr_scale = scale;
  const int64_t rx = p["hr_resize_x"], ry = p["hr_resize_y"];
  for (const auto& [key, v] : {std::pair{"hr_resize_x", rx}, std::pair{"hr_resize_y", ry}})
    if (v != 0 && r.check_ge(key, double(v), limits.min_side))
      r.check_le(key, double(v), limits.max_side);
  if (rx > 0 || ry > 0) {
    // A1111: one side given keeps the aspect ratio of the first pass.
    const int64_t w = p["width"], h = p["height"];
    q.hr_width = int(rx > 0 ? rx : (w > 0 ? ry * w / std::max<int64_t>(h, 1) : 0));
    q.hr_height = int(ry > 0 ? ry : (h > 0 ? rx * h / std::max<int64_t>(w, 1) : 0));
  }
  const int64_t steps = p["hr_second_pass_steps"];
  if (r.check_ge("hr_second_pass_steps", double(steps), 0))
    r.check_le("hr_second_pass_steps", double(steps), limits.max_steps);
  q.hr_steps = int(std::clamp<int64_t>(steps, 0, 1 << 20));
  if (!p["denoising_strength"].is_number()) {
    errors.add(r.loc("denoising_strength"), "the hires fix needs a denoising strength",
               "value_error.missing");
  } else {
    const double d = p["denoising_strength"];
    // 0 is A1111's zero-step second pass: the upscaled first pass decoded as it is.
    if (r.check_ge("denoising_strength", d, 0)) r.check_le("denoising_strength", d, 1);
    q.hr_denoise = d;
  }
  const std::string upscaler = p["hr_upscaler"].is_string() ? p["hr_upscaler"] : "Latent";
  if (upscaler == "Latent")
    q.hr_upscaler = "latent";
  else if (upscaler == "Lanczos")
    q.hr_upscaler = "lanczos";
  else
    not_supported(errors, r.loc("hr_upscaler"),
                  "the upscaler '" + upscaler + "' (sdc has Latent and Lanczos)");
  for (const char* key : {"hr_checkpoint_name", "hr_sampler_name", "hr_scheduler"})
    if (p[key].is_string() && p[key] != "" && p[key] != "Use same checkpoint" &&
        p[key] != "Use same sampler" && p[key] != "Use same scheduler")
      not_supported(errors, r.loc(key), std::string("a second-pass ") + (key + 3));
  for (const auto& [key, same] :
       {std::pair{"hr_prompt", "prompt"}, std::pair{"hr_negative_prompt", "negative_prompt"}})
    if (p[key].is_string() && p[key] != "" && p[key] != p[same])
      not_supported(errors, r.loc(key), std::string("a second-pass prompt (") + key + ")");
}

void apply_overrides(const json& overrides, A1111Generation& g, FieldErrors& errors) {
  for (const auto& [key, value] : overrides.items()) {
    const json loc = json::array({"body", "override_settings", key});
    const OptionSpec* spec = find_option(key);
    if (!spec) {
      errors.add(loc, "unknown option", "value_error.unknown_option");
      continue;
    }
    const json v = check_option_value(*spec, value, loc, errors);
    if (v.is_null()) continue;
    g.override_settings[key] = v;
    if (key == "sd_model_checkpoint") {
      if (check_model_name(v.get<std::string>(), loc, errors)) g.checkpoint = v.get<std::string>();
    } else if (key == "CLIP_stop_at_last_layers") {
      const int64_t c = v.get<int64_t>();
      if (c < 1 || c > 12)
        errors.add(loc, "ensure this value is from 1 to 12", "value_error.number.not_in_range",
                   {{"min", 1}, {"max", 12}});
      else
        g.request.clip_skip = int(c);
    } else if (key == "sd_vae") {
      const std::string vae = v.get<std::string>();
      if (vae != "Automatic" && vae != "None")
        errors.add(loc, "sdc has no separate VAEs to choose: use Automatic or None",
                   "value_error.not_supported");
      else
        g.vae = vae;
    } else if (key == "sd_checkpoint_hash") {
      // Read-only in A1111 (set from the loaded model); ignored like there.
    }
  }
}

}  // namespace

bool check_model_name(const std::string& name, const json& loc, FieldErrors& errors) {
  bool bad = name.empty() || name[0] == '/' || name.find('\\') != std::string::npos ||
             (name.size() > 1 && name[1] == ':');
  for (unsigned char c : name) bad = bad || c < 0x20;
  // ".." as a path component ("a/../b", "..", "../x"); "model..v2" is a plain name.
  size_t start = 0;
  while (!bad && start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string::npos) end = name.size();
    if (name.compare(start, end - start, "..") == 0 && end - start == 2) bad = true;
    start = end + 1;
  }
  if (bad)
    errors.add(loc, "a model name inside the models folder (no absolute path, '..' or '\\')",
               "value_error.model_name");
  return !bad;
}

json parse_json_object_body(std::string_view body, std::string_view content_type) {
  FieldErrors errors;
  if (!json_types_match(content_type)) {
    // FastAPI reads other media types as raw bytes, which are not a dict.
    errors.add(json::array({"body"}), "value is not a valid dict", "type_error.dict");
    errors.throw_if_any();
  }
  if (body.empty()) {
    errors.add(json::array({"body"}), "field required", "value_error.missing");
    errors.throw_if_any();
  }
  json parsed;
  // Nesting is capped: a body of a million '[' would otherwise exhaust the stack of whatever
  // walks it recursively later (Python's json stops at its recursion limit too).
  const auto depth_guard = [](int depth, json::parse_event_t, json&) {
    if (depth > kMaxJsonDepth) throw std::length_error("nested too deeply");
    return true;
  };
  try {
    parsed = json::parse(body.begin(), body.end(), depth_guard);
  } catch (const json::parse_error& e) {
    throw_json_error(e, body);
  } catch (const std::exception& e) {
    // Numbers beyond double range, nesting beyond kMaxJsonDepth.
    errors.add(json::array({"body", 0}), std::string("Invalid JSON: ") + e.what(),
               "value_error.jsondecode", {{"msg", e.what()}});
    errors.throw_if_any();
  }
  if (!parsed.is_object()) {
    errors.add(json::array({"body"}), "value is not a valid dict", "type_error.dict");
    errors.throw_if_any();
  }
  return parsed;
}

A1111Generation parse_generation(std::string_view body_text, std::string_view content_type,
                                 GenerationMode mode, const RequestLimits& limits) {
  json body = parse_json_object_body(body_text, content_type);
  FieldErrors errors;
  BodyReader r0(body, errors);
  if (auto info = r0.get_str("infotext")) apply_infotext(body, *info, errors);
  BodyReader r(body, errors);

  A1111Generation g;
  g.mode = mode;
  json& p = g.parameters;
  p = json::object();
  const bool img2img = mode == GenerationMode::Img2Img;
  for (const auto* table :
       {&common_fields(), img2img ? &img2img_fields() : &txt2img_fields(), &api_fields()})
    for (const Field& f : *table) p[f.name] = coerce_field(f, r);
  if (img2img && !r.has("denoising_strength")) p["denoising_strength"] = 0.75;
  if (img2img && r.has("mask_blur") && p["mask_blur"].is_number())  // a property setting both
    p["mask_blur_x"] = p["mask_blur_y"] = p["mask_blur"];
  errors.throw_if_any();  // type errors first, as pydantic reports them before any use

  pipeline::GenerationRequest& q = g.request;
  // Prompts and their tags.
  const std::string prompt = p["prompt"], negative = p["negative_prompt"];
  r.check_max_length("prompt", prompt, limits.max_prompt_chars);
  r.check_max_length("negative_prompt", negative, limits.max_prompt_chars);
  if (p["disable_extra_networks"].get<bool>()) {
    // A1111 still removes the tags, it just does not load the networks.
    try {
      q.prompt = extract_extra_networks(prompt).prompt;
    } catch (const Error&) {
      q.prompt = prompt;
    }
  } else {
    try {
      PromptNetworks n = extract_extra_networks(prompt);
      q.prompt = std::move(n.prompt);
      g.loras = std::move(n.loras);
    } catch (const Error& e) {
      errors.add(r.loc("prompt"), e.what(), "value_error.extra_network");
    }
  }
  q.negative_prompt = negative;
  if (p["styles"].is_array()) g.styles = p["styles"].get<std::vector<std::string>>();

  // Sizes, steps, batches, guidance, seed.
  const int64_t width = p["width"], height = p["height"], steps = p["steps"];
  const int64_t batch_size = p["batch_size"], n_iter = p["n_iter"], seed = p["seed"];
  for (const auto& [key, v] : {std::pair{"width", width}, std::pair{"height", height}})
    if (r.check_ge(key, double(v), limits.min_side) && r.check_le(key, double(v), limits.max_side))
      r.check_multiple_of(key, v, 8);
  if (r.check_ge("steps", double(steps), 1)) r.check_le("steps", double(steps), limits.max_steps);
  if (r.check_ge("batch_size", double(batch_size), 1))
    r.check_le("batch_size", double(batch_size), limits.max_batch_size);
  if (r.check_ge("n_iter", double(n_iter), 1))
    r.check_le("n_iter", double(n_iter), limits.max_n_iter);
  // The product only once both are within their own caps: a coerced 2^63 - 1 would overflow it.
  if (batch_size >= 1 && n_iter >= 1 && batch_size <= limits.max_batch_size &&
      n_iter <= limits.max_n_iter && batch_size * n_iter > limits.max_images)
    errors.add(r.loc("n_iter"),
               "ensure batch_size × n_iter is at most " + std::to_string(limits.max_images),
               "value_error.number.not_le", {{"limit_value", limits.max_images}});
  const double cfg = p["cfg_scale"];
  if (r.check_finite("cfg_scale", cfg) && r.check_ge("cfg_scale", cfg, 0))
    r.check_le("cfg_scale", cfg, 100);
  if (r.check_ge("seed", double(seed), -1))
    r.check_le("seed", double(seed), double(int64_t(0xffffffffffffLL)));
  q.width = int(std::clamp<int64_t>(width, 0, 1 << 20));
  q.height = int(std::clamp<int64_t>(height, 0, 1 << 20));
  q.steps = int(std::clamp<int64_t>(steps, 0, 1 << 20));
  q.batch_size = int(std::clamp<int64_t>(batch_size, 0, 1 << 20));
  q.batch_count = int(std::clamp<int64_t>(n_iter, 0, 1 << 20));
  q.cfg_scale = float(cfg);
  q.seed = seed;
  q.steps_set = r.has("steps");
  q.cfg_set = r.has("cfg_scale");

  // Variation seeds (A1111's slerp towards the subseed's noise; -1: a random subseed) and the
  // seed resize, which A1111 applies only when both sides are positive.
  const double subseed_strength = p["subseed_strength"];
  if (r.check_finite("subseed_strength", subseed_strength) &&
      r.check_ge("subseed_strength", subseed_strength, 0))
    r.check_le("subseed_strength", subseed_strength, 1);
  q.subseed_strength = subseed_strength;
  const int64_t subseed = p["subseed"];
  if (r.check_ge("subseed", double(subseed), -1))
    r.check_le("subseed", double(subseed), double(int64_t(0xffffffffffffLL)));
  q.subseed = subseed;
  const int64_t resize_w = p["seed_resize_from_w"], resize_h = p["seed_resize_from_h"];
  if (resize_w > 0 && resize_h > 0) {
    for (const auto& [key, v] :
         {std::pair{"seed_resize_from_w", resize_w}, std::pair{"seed_resize_from_h", resize_h}})
      if (r.check_ge(key, double(v), limits.min_side)) r.check_le(key, double(v), limits.max_side);
    q.seed_resize_from_w = int(std::clamp<int64_t>(resize_w, 0, 1 << 20));
    q.seed_resize_from_h = int(std::clamp<int64_t>(resize_h, 0, 1 << 20));
  }
  // What sdc does not do (yet): refused rather than ignored.
  if (p["restore_faces"] == true) not_supported(errors, r.loc("restore_faces"), "face restoration");
  if (p["tiling"] == true) not_supported(errors, r.loc("tiling"), "tiling");
  if (!img2img && p["enable_hr"] == true) read_hires_fix(p, r, q, errors, limits);
  if (p["refiner_checkpoint"].is_string() && p["refiner_checkpoint"] != "" &&
      p["refiner_checkpoint"] != "None")
    not_supported(errors, r.loc("refiner_checkpoint"), "a refiner");
  if (p["firstpass_image"].is_string() && p["firstpass_image"] != "")
    not_supported(errors, r.loc("firstpass_image"), "a first-pass image");
  if (p["s_min_uncond"].is_number() && p["s_min_uncond"].get<double>() != 0.0)
    not_supported(errors, r.loc("s_min_uncond"), "skipping the negative prompt (s_min_uncond)");

  // Sampler and schedule: 400 for names sdc lacks, after the body is known to be valid.
  std::string sampler_name = p["sampler_name"].is_string() ? p["sampler_name"] : "";
  if (sampler_name.empty() && r.has("sampler_index")) sampler_name = p["sampler_index"];
  q.sampler_set = !sampler_name.empty();
  const std::string scheduler = p["scheduler"].is_string() ? p["scheduler"] : "";

  // override_settings.
  g.restore_settings = p["override_settings_restore_afterwards"];
  if (p["override_settings"].is_object()) apply_overrides(p["override_settings"], g, errors);
  g.send_images = p["send_images"];
  g.save_images = p["save_images"];
  if (p["force_task_id"].is_string()) g.task_id = p["force_task_id"];

  // img2img.
  if (img2img) {
    const double strength = p["denoising_strength"];
    if (r.check_finite("denoising_strength", strength) &&
        r.check_gt("denoising_strength", strength, 0))
      r.check_le("denoising_strength", strength, 1);
    q.strength = strength;
    const int64_t mode_index = p["resize_mode"];
    static const char* modes[] = {"resize", "crop", "fill"};
    if (mode_index == 3)
      not_supported(errors, r.loc("resize_mode"), "resize mode 3 (latent upscale)");
    else if (r.check_ge("resize_mode", double(mode_index), 0) &&
             r.check_le("resize_mode", double(mode_index), 3))
      q.resize_mode = modes[mode_index];
    if (p["mask"].is_string() && p["mask"] != "") {
      // A1111's inpainting: every mask option reaches the pipeline (the image after the init).
      static const char* kContent[] = {"fill", "original", "latent-noise", "latent-nothing"};
      const int64_t fill = p["inpainting_fill"];
      if (r.check_ge("inpainting_fill", double(fill), 0) &&
          r.check_le("inpainting_fill", double(fill), 3))
        q.masked_content = kContent[fill];
      const int64_t blur_x = p["mask_blur_x"], blur_y = p["mask_blur_y"];
      for (const auto& [key, v] :
           {std::pair{"mask_blur_x", blur_x}, std::pair{"mask_blur_y", blur_y}})
        if (r.check_ge(key, double(v), 0)) r.check_le(key, double(v), 64);
      q.mask_blur = float(std::clamp<int64_t>(blur_x, 0, 64));
      if (blur_y != blur_x) q.mask_blur_y = float(std::clamp<int64_t>(blur_y, 0, 64));
      const int64_t padding = p["inpaint_full_res_padding"];
      if (r.check_ge("inpaint_full_res_padding", double(padding), 0))
        r.check_le("inpaint_full_res_padding", double(padding), limits.max_side);
      q.inpaint_padding = int(std::clamp<int64_t>(padding, 0, 1 << 20));
      q.inpaint_full_res = p["inpaint_full_res"].get<bool>();
      q.mask_invert = p["inpainting_mask_invert"].get<int64_t>() != 0;
      q.mask_round = p["mask_round"].get<bool>();
    }
    if (p["latent_mask"].is_string() && p["latent_mask"] != "")
      not_supported(errors, r.loc("latent_mask"), "inpainting (latent_mask)");
    if (p["initial_noise_multiplier"].is_number() &&
        p["initial_noise_multiplier"].get<double>() != 1.0)
      not_supported(errors, r.loc("initial_noise_multiplier"), "an initial noise multiplier");
    if (p["init_images"].is_array() && p["init_images"].size() > 1)
      errors.add(r.loc("init_images"), "sdc takes one init image per request",
                 "value_error.list.max_items", {{"limit_value", 1}});
  }
  errors.throw_if_any();

  // Scripts: sdc has none, so any name is one it does not have (A1111's 422 HTTPException).
  if (p["script_name"].is_string() && p["script_name"] != "" && p["script_name"] != "None")
    throw http_exception(422, "Script '" + p["script_name"].get<std::string>() + "' not found");
  for (const auto& [name, args] : p["alwayson_scripts"].items())
    throw http_exception(422, "always on script " + name + " not found");

  g.sampler = resolve_sampler(sampler_name, scheduler);
  q.sampler = g.sampler.sampler;
  q.scheduler = g.sampler.schedule;
  q.scheduler_set = q.sampler_set || !scheduler.empty();
  // eta and the s_* noise settings: A1111's per-request overrides of its options (null: the
  // option's default), used by the samplers that take them and ignored by the others, as A1111.
  if (p["eta"].is_number()) q.eta = p["eta"].get<double>();
  if (p["s_churn"].is_number()) q.s_churn = p["s_churn"].get<double>();
  if (p["s_tmin"].is_number()) q.s_tmin = p["s_tmin"].get<double>();
  if (p["s_tmax"].is_number()) q.s_tmax = p["s_tmax"].get<double>();
  if (p["s_noise"].is_number()) q.s_noise = p["s_noise"].get<double>();
  errors.throw_if_any();

  if (img2img) {
    if (!p["init_images"].is_array() || p["init_images"].empty())
      throw http_exception(404, "Init image not found");
    g.request.init_image_data = decode_request_image(p["init_images"][0].get<std::string>(),
                                                     "init_images[0]", limits.image);
    if (p["mask"].is_string() && p["mask"] != "")
      g.request.mask_data =
          decode_request_image(p["mask"].get<std::string>(), "mask", limits.image);
    if (!p["include_init_images"].get<bool>()) p["init_images"] = p["mask"] = nullptr;
  }
  return g;
}

}  // namespace sdc::server::a1111
