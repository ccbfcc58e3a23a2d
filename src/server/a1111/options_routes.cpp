// GET and POST /sdapi/v1/options. GET answers every catalog option (options_catalog.h) with the
// current model's title as sd_model_checkpoint. POST accepts any subset of that object —
// including the whole object back, as Open WebUI posts it — checks every value first, then
// switches the model (loading it before replying, as A1111) and stores the rest in the settings
// file; nothing is applied when any value is refused.
#include <httplib.h>

#include "server/a1111/api_error.h"
#include "server/a1111/options_catalog.h"
#include "server/a1111/route_context.h"

namespace sdc::server::a1111 {
namespace {

using nlohmann::json;

json set_options(const RouteContext& ctx, const httplib::Request& req) {
  const json body = parse_json_object_body(req.body, req.get_header_value("Content-Type"));
  const json current = current_options(ctx.engine);
  FieldErrors errors;
  json patch = json::object();
  std::optional<std::string> model;
  for (const auto& [key, value] : body.items()) {
    const OptionSpec* spec = find_option(key);
    if (!spec)  // A1111's opts.set raises KeyError for a key it does not know: a 500
      throw ApiError(500, "KeyError", "", "'" + key + "' is not an option sdc knows");
    const json loc = json::array({"body", key});
    const json v = check_option_value(*spec, value, loc, errors);
    if (v.is_null()) continue;
    if (key == "sd_checkpoint_hash") continue;  // read-only: follows the model
    if (key == "sd_model_checkpoint") {
      if (v != current["sd_model_checkpoint"] && check_model_name(v, loc, errors)) model = v;
      continue;
    }
    if (key == "CLIP_stop_at_last_layers" && (v.get<int64_t>() < 1 || v.get<int64_t>() > 12)) {
      errors.add(loc, "ensure this value is from 1 to 12", "value_error.number.not_in_range",
                 {{"min", 1}, {"max", 12}});
      continue;
    }
    if (key == "sd_vae" && v != "Automatic" && v != "None") {
      errors.add(loc, "sdc has no separate VAEs to choose: use Automatic or None",
                 "value_error.not_supported");
      continue;
    }
    if (v != current[key]) patch[key] = v;
  }
  errors.throw_if_any();
  if (model) {
    try {
      ctx.engine.select_model(*model);
    } catch (const engine::NotFound& e) {
      // A1111: RuntimeError "model '…' not found" (a 500).
      throw ApiError(500, "RuntimeError", "", e.what());
    }
  }
  if (!patch.empty()) ctx.engine.settings().update(patch);
  return nullptr;
}

}  // namespace

void register_options_routes(httplib::Server& http, const Context& ctx) {
  http.Get("/sdapi/v1/options", [ctx](const httplib::Request&, httplib::Response& res) {
    handle(res, [&] { return current_options(ctx->engine); });
  });
  http.Post("/sdapi/v1/options", [ctx](const httplib::Request& req, httplib::Response& res) {
    handle(res, [&] { return set_options(*ctx, req); });
  });
}

}  // namespace sdc::server::a1111
