// The 200 answer of txt2img/img2img in A1111's shape: {images: [base64 PNG], parameters: {the
// request's fields, defaults filled in}, info: "<JSON string>"}. `info` is Processed.js(): the
// prompts and seeds of every image, the settings, the model's name and short hash, one infotext
// per image (the same text as each PNG's "parameters" chunk), the job's timestamp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/a1111/generation_body.h"

namespace sdc::server::a1111 {

// What a finished generation produced, as the adapter needs it (filled from the engine's job).
struct GenerationOutput {
  std::vector<std::string> pngs;  // PNG bytes, each with its "parameters" chunk
  std::vector<int64_t> seeds;     // per image
  std::vector<std::string> infotexts;
  std::string model_name;     // the infotext "Model:" (file stem)
  std::string model_hash;     // first 10 hex digits of its sha256 (empty when unknown)
  std::string job_timestamp;  // YYYYMMDDHHMMSS
  int clip_skip = 1;
  int steps = 0;                         // as run (a model's recommended defaults may apply)
  double cfg_scale = 7.0;                // as run
  bool interrupted = false;              // stopped early: the images are what was reached
  bool inpainting_conditioning = false;  // info's is_using_inpainting_conditioning
};

// Processed.js() of A1111, as a JSON object (the route sends it dumped to a string).
nlohmann::json info_json(const A1111Generation& request, const GenerationOutput& out);

// {images, parameters, info}. `images` is empty when the request said send_images=false.
nlohmann::json generation_response(const A1111Generation& request, const GenerationOutput& out);

}  // namespace sdc::server::a1111
