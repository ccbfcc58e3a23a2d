// Liveness, readiness and metrics for orchestrators and load balancers.
#include <httplib.h>

#include "engine/engine.h"
#include "server/http_middleware.h"
#include "server/json_response.h"
#include "server/metrics_text.h"
#include "server/routes.h"

namespace sdc::server {

void register_health_routes(httplib::Server& http, engine::Engine& engine, const ServerOptions&,
                            HttpMiddleware& middleware) {
  middleware.add_public_path("/health");
  middleware.add_public_path("/ready");

  // Liveness: the process answers. Cheap on purpose (no locks held by a generation).
  http.Get("/health", [&engine](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, {{"status", engine.shutting_down() ? "stopping" : "ok"}});
  });

  // Readiness: a model can be served and the queue takes jobs (503 otherwise, so a load
  // balancer sends traffic elsewhere).
  http.Get("/ready", [&engine](const httplib::Request&, httplib::Response& res) {
    const auto model = engine.current_model_if_any();
    const bool ready = engine.ready();
    const int depth = engine.queue_depth();
    send_json(res, ready ? 200 : 503,
              {{"ready", ready},
               {"model", model ? nlohmann::json(model->title()) : nlohmann::json(nullptr)},
               {"queue_depth", depth},
               {"queue_capacity", engine.queue_capacity()},
               {"queue_full", depth >= engine.queue_capacity()}});
  });

  http.Get("/metrics", [&engine](const httplib::Request&, httplib::Response& res) {
    res.status = 200;
    res.set_content(prometheus_metrics(engine), "text/plain; version=0.0.4; charset=utf-8");
  });
}

}  // namespace sdc::server
