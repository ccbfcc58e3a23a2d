// The AUTOMATIC1111 /sdapi/v1 adapter's entry point: registers every A1111 route on the server
// (see ../shared/A1111-API.md), on top of the engine. The HTTP server calls it once at start,
// after the shared middleware is installed; A1111's public routes (/sdapi/v1/loras,
// /sdapi/v1/refresh-loras) are marked with middleware.add_public_path.
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

void register_a1111_routes(httplib::Server& http, engine::Engine& engine,
                           const ServerOptions& options, HttpMiddleware& middleware);

}  // namespace sdc::server
