// GenerationParams: what produced an image, written into its PNG as AUTOMATIC1111's
// "parameters" text so that A1111, civitai, image browsers and sdc itself can read it back.
//
// The layout is A1111's (modules/processing.py create_infotext):
//   PROMPT
//   Negative prompt: NEGATIVE            (line left out when the negative prompt is empty)
//   Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 512x512, Model hash: …, Model: …
// Fields are "Key: value" joined by ", " in A1111's order; a value containing ',', ':' or a
// newline is written as a JSON string (A1111's quote()); numbers print as Python prints them,
// whole numbers without ".0" (as A1111's sliders give them). Reading follows A1111's
// parse_generation_parameters: the last line holds the fields when it has at least three of them,
// "Negative prompt:" starts the negative prompt, and quoted values are JSON-decoded.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sdc::pipeline {

// A LoRA as A1111 lists it in "Lora hashes": its name and short hash.
struct LoraInfo {
  std::string name, hash;
  bool operator==(const LoraInfo&) const = default;
};

// One ControlNet unit as sd-webui-controlnet records it ("ControlNet 0": "Module: canny, …").
struct ControlNetInfo {
  std::string module = "none";  // the preprocessor: "canny", "none"
  std::string model;            // e.g. "control_v11p_sd15_canny [d14c016b]"
  double weight = 1.0;
  std::string resize_mode = "Crop and Resize";
  int processor_res = 0;                           // written when > 0
  std::optional<double> threshold_a, threshold_b;  // canny: low and high
  double guidance_start = 0.0, guidance_end = 1.0;
  bool pixel_perfect = false;
  std::string control_mode = "Balanced";
  std::vector<std::pair<std::string, std::string>> extra;  // other fields, in order
  bool operator==(const ControlNetInfo&) const = default;
};

struct GenerationParams {
  std::string prompt, negative_prompt;
  int steps = 20;
  std::string sampler = "Euler a";  // A1111's display name: "Euler a", "DPM++ 2M", "DDIM", "LCM"
  std::string schedule_type;        // "Karras", …; left out when empty
  double cfg_scale = 7.0;
  int64_t seed = -1;
  int width = 512, height = 512;
  std::string model_hash, model;                        // each left out when empty
  std::optional<int64_t> variation_seed;                // "Variation seed" (the subseed)
  std::optional<double> variation_strength;             // "Variation seed strength"
  std::optional<std::pair<int, int>> seed_resize_from;  // "Seed resize from": WxH
  std::optional<double> denoising_strength;             // img2img only
  std::optional<double> conditional_mask_weight;        // an inpainting UNet's, A1111: 1.0
  int clip_skip = 1;                                    // written when > 1, as A1111 does
  int64_t ensd = 0;  // "ENSD" (eta noise seed delta); written when not 0, before "RNG" as A1111
  std::string rng;   // "CPU", "NV"; left out when empty
  std::vector<LoraInfo> loras;                             // "Lora hashes"
  std::vector<ControlNetInfo> controlnets;                 // "ControlNet 0", "ControlNet 1", …
  std::vector<std::pair<std::string, std::string>> extra;  // any other field (value unquoted)
  std::string version;                                     // "Version"; left out when empty

  bool operator==(const GenerationParams&) const = default;
};

// A number as A1111's infotext prints it: Python's repr, whole numbers without ".0".
std::string format_a1111_number(double v);

// The "parameters" text.
std::string format_a1111_parameters(const GenerationParams& params);

// Reads a "parameters" text. Fields the text does not name keep the defaults above; fields sdc
// does not know land in `extra` in order; fields with an empty value are skipped (A1111 too).
// Throws sdc::Error (key = the field) for a known field whose value is malformed, e.g. "Steps:
// many".
GenerationParams parse_a1111_parameters(const std::string& text);

// A1111's quote() / unquote(): JSON string syntax when the value holds ',', ':' or a newline.
std::string quote_a1111_value(const std::string& value);
std::string unquote_a1111_value(const std::string& value);

}  // namespace sdc::pipeline
