// parse_job_request: strict field-by-field reading of the native job body.
#include "server/job_request_json.h"

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "server/image_input.h"
#include "server/json_response.h"

namespace sdc::server {
namespace {
using nlohmann::json;

[[noreturn]] void fail(const std::string& field, const std::string& msg, const std::string& type) {
  std::vector<json> loc{"body"};
  if (!field.empty()) loc.push_back(field);
  throw ValidationError(std::move(loc), msg, type);
}

int64_t get_int(const json& j, const std::string& key, int64_t lo, int64_t hi) {
  const json& v = j.at(key);
  if (v.is_number_integer()) {
    // Unsigned values above int64's range come back as unsigned: range-check them first.
    if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()))
      fail(key, "ensure this value is less than or equal to " + std::to_string(hi),
           "value_error.number.not_le");
  } else if (!(v.is_number_float() && std::isfinite(v.get<double>()) &&
               v.get<double>() == std::floor(v.get<double>()) &&
               std::fabs(v.get<double>()) < 9e15)) {
    fail(key, "value is not a valid integer", "type_error.integer");
  }
  const int64_t n = v.is_number_integer() ? v.get<int64_t>() : int64_t(v.get<double>());
  if (n < lo)
    fail(key, "ensure this value is greater than or equal to " + std::to_string(lo),
         "value_error.number.not_ge");
  if (n > hi)
    fail(key, "ensure this value is less than or equal to " + std::to_string(hi),
         "value_error.number.not_le");
  return n;
}

double get_number(const json& j, const std::string& key, double lo, double hi) {
  const json& v = j.at(key);
  if (!v.is_number() || !std::isfinite(v.get<double>()))
    fail(key, "value is not a valid float", "type_error.float");
  const double x = v.get<double>();
  if (x < lo || x > hi)
    fail(key, "ensure this value is within [" + json(lo).dump() + ", " + json(hi).dump() + "]",
         "value_error.number.out_of_range");
  return x;
}

bool get_bool(const json& j, const std::string& key) {
  const json& v = j.at(key);
  if (!v.is_boolean()) fail(key, "value could not be parsed to a boolean", "type_error.bool");
  return v.get<bool>();
}

std::string get_string(const json& j, const std::string& key, size_t max_bytes) {
  const json& v = j.at(key);
  if (!v.is_string()) fail(key, "str type expected", "type_error.str");
  std::string s = v.get<std::string>();
  if (s.size() > max_bytes)
    fail(key, "ensure this value has at most " + std::to_string(max_bytes) + " characters",
         "value_error.any_str.max_length");
  return s;
}

}  // namespace

engine::JobRequest parse_job_request(std::string_view body, const RequestLimits& limits) {
  json j = json::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_discarded())
    fail("", "Expecting value: the body is not valid JSON", "value_error.jsondecode");
  if (!j.is_object()) fail("", "value is not a valid dict", "type_error.dict");

  static const std::set<std::string> known{
      "prompt", "negative_prompt", "width", "height", "steps", "cfg_scale", "sampler", "scheduler",
      "seed", "clip_skip", "batch_size", "batch_count", "model", "loras", "preview_every", "save",
      // img2img and ControlNet (parsed below; the list had not been extended with them)
      "init_image", "strength", "resize_mode", "controlnet", "control_image", "control_scale",
      "control_start", "control_end", "control_preprocess",
      // the autoencoder choices (TAESD when the server has one: sdc serve --taesd)
      "decode_with", "encode_with", "preview_method", "vae_tiling", "vae_tile_size",
      // inpainting (with init_image; A1111's options, the CLI's names)
      "mask", "mask_invert", "mask_blur", "masked_content", "inpaint_full_res", "inpaint_padding"};
  for (const auto& [k, v] : j.items())
    if (!known.count(k)) fail(k, "extra fields not permitted", "value_error.extra");
  if (!j.contains("prompt")) fail("prompt", "field required", "value_error.missing");

  engine::JobRequest r;
  r.save_outputs = true;  // written to --outputs-dir (when the server has one) unless "save": false
  pipeline::GenerationRequest& g = r.generation;
  g.sampler = "euler_a";
  g.prompt = get_string(j, "prompt", limits.max_prompt_chars);
  if (j.contains("negative_prompt"))
    g.negative_prompt = get_string(j, "negative_prompt", limits.max_prompt_chars);
  if (j.contains("width")) g.width = int(get_int(j, "width", 64, limits.max_side));
  if (j.contains("height")) g.height = int(get_int(j, "height", 64, limits.max_side));
  if (g.width % 8)
    fail("width", "ensure this value is a multiple of 8", "value_error.number.not_multiple");
  if (g.height % 8)
    fail("height", "ensure this value is a multiple of 8", "value_error.number.not_multiple");
  if (j.contains("steps")) {
    g.steps = int(get_int(j, "steps", 1, limits.max_steps));
    g.steps_set = true;
  }
  if (j.contains("cfg_scale")) {
    g.cfg_scale = float(get_number(j, "cfg_scale", 0.0, 100.0));
    g.cfg_set = true;
  }
  if (j.contains("sampler")) {
    g.sampler = get_string(j, "sampler", 64);
    g.sampler_set = true;
  }
  if (j.contains("scheduler")) {
    g.scheduler = get_string(j, "scheduler", 64);
    g.scheduler_set = true;
  }
  if (j.contains("seed")) g.seed = get_int(j, "seed", -1, 0xffffffffLL);
  if (j.contains("clip_skip")) g.clip_skip = int(get_int(j, "clip_skip", 1, 12));
  if (j.contains("batch_size"))
    g.batch_size = int(get_int(j, "batch_size", 1, limits.max_batch_size));
  if (j.contains("batch_count"))
    g.batch_count = int(get_int(j, "batch_count", 1, limits.max_batch_count));
  if (int64_t(g.batch_size) * g.batch_count > limits.max_images)
    fail("batch_count",
         "ensure batch_size × batch_count is at most " + std::to_string(limits.max_images),
         "value_error.number.not_le");
  if (j.contains("model")) r.model = get_string(j, "model", 1024);
  if (j.contains("preview_every"))
    r.preview_every = int(get_int(j, "preview_every", 0, limits.max_steps));
  if (j.contains("decode_with")) g.decode_with = get_string(j, "decode_with", 16);
  if (j.contains("encode_with")) g.encode_with = get_string(j, "encode_with", 16);
  if (j.contains("preview_method")) g.preview_method = get_string(j, "preview_method", 16);
  if (j.contains("vae_tiling")) g.vae_tiling = get_bool(j, "vae_tiling");
  if (j.contains("vae_tile_size")) g.vae_tile_size = int(get_int(j, "vae_tile_size", 128, 2048));
  if (j.contains("save")) r.save_outputs = get_bool(j, "save");
  if (j.contains("init_image")) {
    g.init_image_data =
        decode_request_image(get_string(j, "init_image", SIZE_MAX), "init_image", limits);
    r.kind = "img2img";
  }
  if (j.contains("mask")) {
    if (!g.init_image_data) fail("mask", "a mask needs an init_image", "value_error.missing");
    g.mask_data = decode_request_image(get_string(j, "mask", SIZE_MAX), "mask", limits);
  }
  if (j.contains("mask_invert")) g.mask_invert = get_bool(j, "mask_invert");
  if (j.contains("inpaint_full_res")) g.inpaint_full_res = get_bool(j, "inpaint_full_res");
  if (j.contains("mask_blur")) g.mask_blur = float(get_number(j, "mask_blur", 0.0, 64.0));
  if (j.contains("masked_content")) g.masked_content = get_string(j, "masked_content", 32);
  if (j.contains("inpaint_padding"))
    g.inpaint_padding = int(get_int(j, "inpaint_padding", 0, limits.max_side));
  if (j.contains("strength")) g.strength = get_number(j, "strength", 0.0, 1.0);
  if (j.contains("resize_mode")) g.resize_mode = get_string(j, "resize_mode", 16);
  if (j.contains("controlnet")) r.controlnet = get_string(j, "controlnet", 1024);
  if (j.contains("control_image"))
    g.control_image_data =
        decode_request_image(get_string(j, "control_image", SIZE_MAX), "control_image", limits);
  if (r.controlnet.empty() != !g.control_image_data)
    fail(r.controlnet.empty() ? "controlnet" : "control_image",
         "controlnet and control_image go together", "value_error.missing");
  if (j.contains("control_scale"))
    g.control_scale = float(get_number(j, "control_scale", 0.0, 4.0));
  if (j.contains("control_start"))
    g.control_start = float(get_number(j, "control_start", 0.0, 1.0));
  if (j.contains("control_end")) g.control_end = float(get_number(j, "control_end", 0.0, 1.0));
  if (j.contains("control_preprocess"))
    g.control_preprocess = get_string(j, "control_preprocess", 16);
  if (j.contains("loras")) {
    const json& ls = j["loras"];
    if (!ls.is_array()) fail("loras", "value is not a valid list", "type_error.list");
    if (ls.size() > 16)
      fail("loras", "ensure this value has at most 16 items", "value_error.list.max_items");
    for (const json& l : ls) {
      if (!l.is_object() || !l.contains("name"))
        fail("loras", "each item must be an object with \"name\" and optional \"weight\"",
             "type_error.dict");
      for (const auto& [k, v] : l.items())
        if (k != "name" && k != "weight")
          fail("loras", "extra fields not permitted: " + k, "value_error.extra");
      engine::LoraUse u;
      u.name = get_string(l, "name", 1024);
      if (l.contains("weight")) u.weight = float(get_number(l, "weight", -10.0, 10.0));
      r.loras.push_back(u);
    }
  }
  return r;
}

}  // namespace sdc::server
