// Internal to the A1111 adapter's route files: what every handler needs (the engine, the server
// options, the request limits in the adapter's terms) and one way of turning what a handler
// throws into A1111's replies.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/engine.h"
#include "server/a1111/generation_body.h"
#include "server/server_options.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace sdc::server::a1111 {

struct RouteContext {
  engine::Engine& engine;
  const ServerOptions& options;
  RequestLimits limits;
};

// The adapter's limits from the server's (one limit means one thing on every route family).
RequestLimits limits_from(const ServerOptions& options);

// Runs `handler`, which fills `res` or returns the JSON to send with 200. The adapter's own
// errors (ValidationError, ApiError) keep their A1111 bodies; anything else (engine errors such
// as a full queue, sdc::Error) goes through the server's shared exception mapping.
void handle(httplib::Response& res, const std::function<nlohmann::json()>& handler);

// The current options: the catalog's defaults, overlaid by the settings file, with the live
// values (the current model's title and hash) filled in.
nlohmann::json current_options(engine::Engine& engine);

// Each handler holds the context (shared) for as long as the server keeps its handlers.
using Context = std::shared_ptr<const RouteContext>;
void register_generation_routes(httplib::Server& http, const Context& ctx);
void register_options_routes(httplib::Server& http, const Context& ctx);
void register_listing_routes(httplib::Server& http, const Context& ctx);

}  // namespace sdc::server::a1111
