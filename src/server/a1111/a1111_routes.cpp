// register_a1111_routes: the /sdapi/v1 adapter's entry point, and the helpers its route files
// share (limits, the error wrapper, the current options).
#include "server/a1111/a1111_routes.h"

#include <httplib.h>

#include <memory>

#include "server/a1111/api_error.h"
#include "server/a1111/options_catalog.h"
#include "server/a1111/route_context.h"
#include "server/http_middleware.h"
#include "server/json_response.h"

namespace sdc::server {

void register_a1111_routes(httplib::Server& http, engine::Engine& engine,
                           const ServerOptions& options, HttpMiddleware& middleware) {
  const auto ctx = std::make_shared<const a1111::RouteContext>(
      a1111::RouteContext{engine, options, a1111::limits_from(options)});
  a1111::register_generation_routes(http, ctx);
  a1111::register_options_routes(http, ctx);
  a1111::register_listing_routes(http, ctx);
  // A1111's Lora extension registers these two with @app.get/post, outside --api-auth.
  middleware.add_public_path("/sdapi/v1/loras");
  middleware.add_public_path("/sdapi/v1/refresh-loras");
}

}  // namespace sdc::server

namespace sdc::server::a1111 {

RequestLimits limits_from(const ServerOptions& options) {
  const server::RequestLimits& s = options.limits;
  RequestLimits l;
  l.max_steps = s.max_steps;
  l.max_batch_size = s.max_batch_size;
  l.max_n_iter = s.max_batch_count;
  l.max_images = s.max_images;
  l.max_side = s.max_side;
  l.max_prompt_chars = s.max_prompt_chars;
  l.image.max_side = s.max_image_side;
  l.image.max_pixels = int64_t(s.max_image_side) * s.max_image_side;
  return l;
}

void handle(httplib::Response& res, const std::function<nlohmann::json()>& handler) {
  try {
    nlohmann::json body = handler();
    send_json(res, 200, body);
  } catch (const a1111::ValidationError& e) {
    send_json(res, 422, e.body());
  } catch (const ApiError& e) {
    send_json(res, e.status(), e.body());
  } catch (...) {
    send_exception(res, std::current_exception());
  }
}

nlohmann::json current_options(engine::Engine& engine) {
  nlohmann::json out = nlohmann::json::object();
  const nlohmann::json stored = engine.settings().all();
  for (const OptionSpec& spec : option_catalog()) {
    auto it = stored.find(spec.key);
    out[spec.key] = (it != stored.end() && !it->is_null()) ? *it : spec.default_value;
  }
  if (auto model = engine.current_model_if_any()) {
    out["sd_model_checkpoint"] = model->title();
    out["sd_checkpoint_hash"] =
        model->sha256.empty() ? nlohmann::json(nullptr) : nlohmann::json(model->sha256);
  } else {
    out["sd_model_checkpoint"] = nullptr;
    out["sd_checkpoint_hash"] = nullptr;
  }
  return out;
}

}  // namespace sdc::server::a1111
