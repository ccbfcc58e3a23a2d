// Job snapshots and events as JSON.
#include "server/job_json.h"

#include <chrono>
#include <ctime>

#include "server/base64.h"

namespace sdc::server {
namespace {
using nlohmann::json;

json time_or_null(std::chrono::system_clock::time_point t) {
  if (t.time_since_epoch().count() == 0) return nullptr;
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

}  // namespace

json progress_to_json(const engine::JobProgress& p) {
  return {{"stage", pipeline::stage_name(p.stage)},
          {"batch", p.batch},
          {"batch_count", p.batch_count},
          {"step", p.step},
          {"total_steps", p.total_steps},
          {"fraction", p.fraction},
          {"elapsed_s", p.elapsed_s},
          {"eta_s", p.eta_s < 0 ? json(nullptr) : json(p.eta_s)},
          {"textinfo", p.textinfo},
          {"preview_id", p.preview_id}};
}

json job_to_json(const engine::JobSnapshot& s) {
  json j{{"id", s.id},
         {"status", engine::status_name(s.status)},
         {"kind", s.kind},
         {"queue_position",
          s.status == engine::JobStatus::Queued ? json(s.queue_position) : json(nullptr)},
         {"progress", progress_to_json(s.progress)},
         {"created", time_or_null(s.created)},
         {"started", time_or_null(s.started)},
         {"finished", time_or_null(s.finished)},
         {"links", {{"self", "/v1/jobs/" + s.id}, {"events", "/v1/jobs/" + s.id + "/events"}}}};
  if (!s.progress.preview_png.empty()) j["links"]["preview"] = "/v1/jobs/" + s.id + "/preview";
  j["error"] = s.error.empty() ? json(nullptr) : json(s.error);
  if (s.result) {
    json images = json::array();
    for (size_t i = 0; i < s.result->images.size(); ++i) {
      const auto& im = s.result->images[i];
      json o{{"index", i},
             {"seed", im.seed},
             {"url", "/v1/jobs/" + s.id + "/images/" + std::to_string(i)},
             {"width", im.width},
             {"height", im.height},
             {"infotext", im.infotext}};
      if (!im.output_path.empty()) o["output_path"] = im.output_path;
      images.push_back(std::move(o));
    }
    j["result"] = {{"images", std::move(images)},
                   {"interrupted", s.result->interrupted},
                   {"model", s.result->model_title},
                   {"seed", s.result->generation.seed}};
  } else {
    j["result"] = nullptr;
  }
  return j;
}

json event_to_json(const std::string& job_id, const engine::JobEvent& e) {
  json j{{"id", job_id}, {"seq", e.seq}, {"status", engine::status_name(e.status)}};
  switch (e.type) {
    case engine::JobEventType::Queued:
      j["queue_position"] = e.queue_position;
      break;
    case engine::JobEventType::Started:
      break;
    case engine::JobEventType::Progress:
      j["progress"] = progress_to_json(e.progress);
      if (!e.progress.preview_png.empty())
        j["preview"] = "data:image/png;base64," + base64_encode(e.progress.preview_png);
      break;
    case engine::JobEventType::Finished:
      j["error"] = e.error.empty() ? json(nullptr) : json(e.error);
      j["links"] = {{"self", "/v1/jobs/" + job_id}};
      break;
  }
  return j;
}

}  // namespace sdc::server
