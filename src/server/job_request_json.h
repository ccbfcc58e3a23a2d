// The native job API's request body (POST /v1/jobs) → engine::JobRequest. Strict, because this
// API is ours: unknown keys, wrong types, non-integral numbers and values beyond the server's
// RequestLimits are each a ValidationError (422) naming the field. Images arrive as base64 or
// data URLs and are decoded here with the size limits checked before any pixel is allocated;
// file paths are never accepted from a request.
//
// Body (every key optional except "prompt"):
//   {"prompt": str, "negative_prompt": str, "width": int, "height": int, "steps": int,
//    "cfg_scale": num, "sampler": str, "scheduler": str, "seed": int (-1 random),
//    "clip_skip": int, "batch_size": int, "batch_count": int, "model": str,
//    "loras": [{"name": str, "weight": num}], "preview_every": int,
//    "save": bool (default true: also write the images to --outputs-dir, when set),
//    img2img: "init_image": base64 | data URL, "strength": num, "resize_mode": str,
//    ControlNet: "controlnet": name, "control_image": base64 | data URL, "control_scale",
//    "control_start", "control_end": num, "control_preprocess": "none" | "canny",
//    autoencoders: "decode_with", "encode_with": "vae" | "taesd", "preview_method": "auto" |
//    "cheap" | "taesd" (taesd needs sdc serve --taesd or a model converted with one)}
#pragma once

#include <string_view>

#include "engine/job.h"
#include "server/server_options.h"

namespace sdc::server {

engine::JobRequest parse_job_request(std::string_view body, const RequestLimits& limits);

}  // namespace sdc::server
