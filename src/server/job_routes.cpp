// Native async job routes: submit (202 + id, or ?wait=true for a blocking reply), status,
// images, latest preview, Server-Sent Events and cancel.
#include <httplib.h>

#include <chrono>
#include <memory>

#include "engine/engine.h"
#include "server/job_json.h"
#include "server/job_request_json.h"
#include "server/job_wait.h"
#include "server/json_response.h"
#include "server/routes.h"
#include "server/server_options.h"

namespace sdc::server {
namespace {

std::shared_ptr<engine::Job> job_or_404(engine::Engine& engine, const std::string& id) {
  auto job = engine.find_job(id);
  if (!job)
    throw HttpError(404, "no job '" + id + "' (unknown, or its results expired)", "NotFound");
  return job;
}

bool wants_wait(const httplib::Request& req) {
  const std::string w = req.get_param_value("wait");
  return w == "1" || w == "true" || w == "yes";
}

// A finished job's outcome as the blocking reply's status.
int final_status(const engine::JobSnapshot& s) {
  switch (s.status) {
    case engine::JobStatus::Succeeded:
      return 200;
    case engine::JobStatus::Cancelled:
      return 409;
    default:
      return s.error_kind == "bad_request" ? 400 : 500;
  }
}

// One SSE message: the event's sequence number as id (for Last-Event-ID), its name, its JSON.
std::string sse_message(const std::string& job_id, const engine::JobEvent& e) {
  return "id: " + std::to_string(e.seq) + "\nevent: " + engine::event_name(e.type) + "\ndata: " +
         event_to_json(job_id, e).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) +
         "\n\n";
}

}  // namespace

void register_job_routes(httplib::Server& http, engine::Engine& engine,
                         const ServerOptions& options) {
  http.Post("/v1/jobs", [&engine, &options](const httplib::Request& req, httplib::Response& res) {
    engine::JobRequest request = parse_job_request(req.body, options.limits);
    request.save_outputs = request.save_outputs || !engine.options().outputs_dir.empty();
    auto job = engine.submit(std::move(request));
    if (wants_wait(req)) {
      const engine::JobSnapshot s = wait_for_job(*job, req);
      send_json(res, final_status(s), job_to_json(s));
      return;
    }
    res.set_header("Location", "/v1/jobs/" + job->id());
    send_json(res, 202, job_to_json(job->snapshot()));
  });

  http.Get(R"(/v1/jobs/([0-9a-f]{1,64}))",
           [&engine](const httplib::Request& req, httplib::Response& res) {
             send_json(res, 200, job_to_json(job_or_404(engine, req.matches[1])->snapshot()));
           });

  http.Delete(R"(/v1/jobs/([0-9a-f]{1,64}))",
              [&engine](const httplib::Request& req, httplib::Response& res) {
                auto job = job_or_404(engine, req.matches[1]);
                job->cancel("cancelled by DELETE /v1/jobs/" + job->id());
                // A running job stops at the next sampler step; the reply does not wait for it.
                send_json(res, 200, job_to_json(job->snapshot()));
              });

  http.Get(R"(/v1/jobs/([0-9a-f]{1,64})/images/(\d{1,4}))",
           [&engine](const httplib::Request& req, httplib::Response& res) {
             const auto s = job_or_404(engine, req.matches[1])->snapshot();
             const size_t n = std::stoul(req.matches[2]);
             if (!s.result || n >= s.result->images.size())
               throw HttpError(404,
                               "job " + s.id + " has no image " + std::to_string(n) + " (status " +
                                   engine::status_name(s.status) + ")",
                               "NotFound");
             res.status = 200;
             res.set_content(s.result->images[n].png, "image/png");
           });

  http.Get(R"(/v1/jobs/([0-9a-f]{1,64})/preview)",
           [&engine](const httplib::Request& req, httplib::Response& res) {
             const auto s = job_or_404(engine, req.matches[1])->snapshot();
             if (s.progress.preview_png.empty())
               throw HttpError(404, "job " + s.id + " has no preview yet", "NotFound");
             res.status = 200;
             res.set_header("Cache-Control", "no-store");
             res.set_content(s.progress.preview_png, "image/png");
           });

  http.Get(R"(/v1/jobs/([0-9a-f]{1,64})/events)", [&engine, &options](const httplib::Request& req,
                                                                      httplib::Response& res) {
    auto job = job_or_404(engine, req.matches[1]);
    auto cursor = std::make_shared<uint64_t>(0);
    if (req.has_header("Last-Event-ID")) {
      try {
        *cursor = std::stoull(req.get_header_value("Last-Event-ID"));
      } catch (const std::exception&) {
        throw HttpError(400, "Last-Event-ID must be an event number", "BadRequest");
      }
    }
    res.status = 200;
    res.set_header("Cache-Control", "no-store");
    res.set_header("X-Accel-Buffering", "no");
    const auto keepalive = std::chrono::seconds(std::max(1, options.sse_keepalive_s));
    res.set_chunked_content_provider(
        "text/event-stream", [job, cursor, keepalive](size_t, httplib::DataSink& sink) {
          // A finished job has all its events already: no waiting for more.
          const auto events = job->events_after(
              *cursor, engine::is_final(job->status()) ? std::chrono::seconds(0) : keepalive);
          if (events.empty()) {
            if (engine::is_final(job->status())) {  // resumed after its last event
              sink.done();
              return true;
            }
            // Idle: a comment keeps proxies from closing the stream and finds gone
            // clients.
            return sink.write(": keep-alive\n\n", 14);
          }
          for (const auto& e : events) {
            const std::string msg = sse_message(job->id(), e);
            if (!sink.write(msg.data(), msg.size())) return false;
            *cursor = e.seq;
            if (e.type == engine::JobEventType::Finished) {
              sink.done();
              return true;
            }
          }
          return true;
        });
  });
}

}  // namespace sdc::server
