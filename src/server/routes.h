// The route families `sdc serve` registers on its httplib server. Each family lives in its own
// *_routes.cpp and sees only the engine and the server options (never plans or files).
#pragma once

namespace httplib {
class Server;
}

namespace sdc::engine {
class Engine;
}

namespace sdc::server {

struct ServerOptions;
class HttpMiddleware;

// GET /health, GET /ready, GET /metrics (Prometheus text format). /health and /ready are public.
void register_health_routes(httplib::Server& http, engine::Engine& engine,
                            const ServerOptions& options, HttpMiddleware& middleware);
// Native async jobs: POST /v1/jobs, GET /v1/jobs/{id}, …/events (SSE), …/images/{n},
// …/preview, DELETE /v1/jobs/{id}.
void register_job_routes(httplib::Server& http, engine::Engine& engine,
                         const ServerOptions& options);
// OpenAI-style POST /v1/images/generations and GET /v1/models.
void register_openai_routes(httplib::Server& http, engine::Engine& engine,
                            const ServerOptions& options);

}  // namespace sdc::server
