// The body of POST /sdapi/v1/txt2img and /img2img, read as A1111's pydantic v1 models read it
// (StableDiffusionTxt2ImgProcessingAPI / …Img2ImgProcessingAPI: every field optional, unknown
// keys ignored, null = not given, values coerced, see pydantic_coerce.h) and turned into an sdc
// generation: prompt without its <lora:…> tags and the LoRAs they name, sampler and schedule
// resolved (sampler_names.h), override_settings applied, the init image decoded.
//
// Refused, each with A1111's status and shape:
//   422 {"detail": [...]}: wrong types, malformed JSON, a body that is not an object, values
//     outside sdc's caps (steps, batch_size, n_iter, size multiple of 8 within limits, prompt
//     length), features sdc does not have yet (hires fix, restore_faces, tiling, variation seeds,
//     masks/inpainting, refiner, a different eta/s_noise/s_churn than sdc's samplers use), bad
//     <lora:…> tags, path-like model names, unknown or unsupported override_settings;
//   422 {"error": "HTTPException", …}: script_name / alwayson_scripts naming scripts (sdc has
//     none), as A1111 answers for scripts it does not have;
//   400 unknown sampler or scheduler; 404 "Init image not found"; 500 "Invalid encoded image".
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/image.h"
#include "pipeline/generation_request.h"
#include "server/a1111/api_error.h"
#include "server/a1111/extra_networks.h"
#include "server/a1111/sampler_names.h"

namespace sdc::server::a1111 {

enum class GenerationMode { Txt2Img, Img2Img };

// What a request may ask for. Beyond these, 422 (pydantic's not_le / not_multiple wording).
struct RequestLimits {
  int max_steps = 150;  // A1111's UI slider ends at 150
  int max_batch_size = 8;
  int max_n_iter = 16;
  int max_images = 32;                                   // batch_size × n_iter
  int min_side = 64, max_side = 2048;                    // pixels, multiples of 8
  size_t max_prompt_chars = 20000;                       // per prompt, in bytes of UTF-8
  io::ImageLimits image{8, 4096, int64_t(4096) * 4096};  // decoded request images
};

struct A1111Generation {
  GenerationMode mode = GenerationMode::Txt2Img;
  // prompt without extra-network tags; sampler/scheduler as sdc ids; batch_count = n_iter;
  // sampler_set/steps_set/cfg_set say whether the client sent them; img2img: the decoded init
  // image in init_image_data.
  pipeline::GenerationRequest request;
  SamplerChoice sampler;
  std::vector<LoraTag> loras;
  // override_settings that sdc acts on; nullopt = not overridden.
  std::optional<std::string> checkpoint;  // sd_model_checkpoint (any registry alias)
  std::optional<std::string> vae;         // sd_vae: "Automatic", "None" or a VAE name
  nlohmann::json override_settings = nlohmann::json::object();  // every accepted override
  bool restore_settings = true;  // override_settings_restore_afterwards
  bool send_images = true, save_images = false;
  std::vector<std::string> styles;
  std::string task_id;  // force_task_id
  // A1111's "parameters" in the response: every model field, defaults filled in, as coerced.
  nlohmann::json parameters;
};

// `content_type` is the request's Content-Type header ("" when absent): as FastAPI, the body is
// read as JSON when it is absent or application/json / *+json, and refused otherwise.
// Throws ValidationError or ApiError (api_error.h).
A1111Generation parse_generation(std::string_view body, std::string_view content_type,
                                 GenerationMode mode, const RequestLimits& limits = {});

// The body as a JSON object (FastAPI's reading of a JSON body): 422 value_error.jsondecode for
// malformed JSON, type_error.dict for anything but an object, value_error.missing when empty.
nlohmann::json parse_json_object_body(std::string_view body, std::string_view content_type);

// Refuses a model name that could reach outside the models folder (absolute, "..", backslash,
// NUL, control characters) with a 422 at `loc`. Returns whether it was acceptable.
bool check_model_name(const std::string& name, const nlohmann::json& loc, FieldErrors& errors);

}  // namespace sdc::server::a1111
