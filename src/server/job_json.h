// JSON views of jobs for the native API: GET /v1/jobs/{id} bodies and SSE event payloads.
#pragma once

#include <nlohmann/json.hpp>

#include "engine/job.h"

namespace sdc::server {

// {id, status, kind, queue_position, progress{…}, result{images[{index, seed, url, infotext,
// width, height, output_path?}], interrupted, model}, error, created, started, finished}
nlohmann::json job_to_json(const engine::JobSnapshot& s);
// {seq, status, queue_position | progress{…, preview?: base64 PNG} | result/error}
nlohmann::json event_to_json(const std::string& job_id, const engine::JobEvent& e);
nlohmann::json progress_to_json(const engine::JobProgress& p);

}  // namespace sdc::server
