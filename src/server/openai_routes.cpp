// OpenAI-style image generation (POST /v1/images/generations) and model list (GET /v1/models),
// which many tools speak. Replies and errors use OpenAI's shapes; every image still goes through
// the one engine queue (429 when full).
#include <httplib.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "engine/engine.h"
#include "server/base64.h"
#include "server/job_wait.h"
#include "server/json_response.h"
#include "server/routes.h"
#include "server/server_options.h"

namespace sdc::server {
namespace {
using nlohmann::json;

struct OpenAiError : std::runtime_error {
  OpenAiError(int status, std::string message, std::string param = "")
      : std::runtime_error(message), status(status), param(std::move(param)) {}
  int status;
  std::string param;
};

void send_openai_error(httplib::Response& res, int status, const std::string& message,
                       const std::string& param) {
  const char* type = status == 429   ? "rate_limit_error"
                     : status >= 500 ? "server_error"
                     : status == 404 ? "not_found_error"
                                     : "invalid_request_error";
  send_json(res, status,
            {{"error",
              {{"message", message},
               {"type", type},
               {"param", param.empty() ? json(nullptr) : json(param)},
               {"code", nullptr}}}});
}

// The shared mapping (status, Retry-After) first, then the body re-shaped the OpenAI way.
void reply_error(httplib::Response& res, std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const OpenAiError& o) {
    send_openai_error(res, o.status, o.what(), o.param);
    return;
  } catch (...) {
  }
  send_exception(res, e);
  const json body = json::parse(res.body, nullptr, false);
  std::string message = "request failed", param;
  if (body.is_object()) {
    if (body.contains("detail") && body["detail"].is_array() && !body["detail"].empty()) {
      const json& d = body["detail"][0];
      message = d.value("msg", message);
      if (d.contains("loc") && d["loc"].size() > 1 && d["loc"][1].is_string())
        param = d["loc"][1].get<std::string>();
      if (!param.empty()) message = param + ": " + message;
    } else if (body.contains("detail") && body["detail"].is_string() &&
               !body["detail"].get<std::string>().empty()) {
      message = body["detail"].get<std::string>();
    } else if (body.contains("errors") && body["errors"].is_string()) {
      message = body["errors"].get<std::string>();
    }
  }
  send_openai_error(res, res.status, message, param);
}

std::pair<int, int> parse_size(const std::string& size, const RequestLimits& limits) {
  const size_t x = size.find('x');
  int w = 0, h = 0;
  try {
    size_t used_w = 0, used_h = 0;
    if (x == std::string::npos) throw std::invalid_argument("no x");
    w = std::stoi(size.substr(0, x), &used_w);
    h = std::stoi(size.substr(x + 1), &used_h);
    if (used_w != x || used_h != size.size() - x - 1) throw std::invalid_argument("trailing");
  } catch (const std::exception&) {
    throw OpenAiError(400, "size must be WIDTHxHEIGHT, e.g. 512x512; got '" + size + "'", "size");
  }
  if (w < 64 || h < 64 || w > limits.max_side || h > limits.max_side || w % 8 || h % 8)
    throw OpenAiError(400,
                      "size: width and height must be multiples of 8 between 64 and " +
                          std::to_string(limits.max_side) + "; got " + size,
                      "size");
  return {w, h};
}

engine::JobRequest parse_images_request(const std::string& text, const RequestLimits& limits) {
  const json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw OpenAiError(400, "the body must be a JSON object");
  engine::JobRequest r;
  pipeline::GenerationRequest& g = r.generation;
  if (!j.contains("prompt") || !j["prompt"].is_string())
    throw OpenAiError(400, "prompt: a string is required", "prompt");
  g.prompt = j["prompt"].get<std::string>();
  if (g.prompt.size() > limits.max_prompt_chars)
    throw OpenAiError(400,
                      "prompt: at most " + std::to_string(limits.max_prompt_chars) + " characters",
                      "prompt");
  int n = 1;
  if (j.contains("n") && !j["n"].is_null()) {
    if (!j["n"].is_number_integer()) throw OpenAiError(400, "n: an integer is required", "n");
    const int64_t v = j["n"].get<int64_t>();
    if (v < 1 || v > limits.max_images)
      throw OpenAiError(400, "n: must be between 1 and " + std::to_string(limits.max_images), "n");
    n = int(v);
  }
  g.batch_size = 1;  // one image per run: memory stays that of one image
  g.batch_count = n;
  std::string size = "512x512";  // SD 1.5's native size (OpenAI's own default does not fit it)
  if (j.contains("size") && !j["size"].is_null()) {
    if (!j["size"].is_string()) throw OpenAiError(400, "size: a string is required", "size");
    size = j["size"].get<std::string>();
  }
  std::tie(g.width, g.height) = parse_size(size, limits);
  if (j.contains("model") && !j["model"].is_null()) {
    if (!j["model"].is_string()) throw OpenAiError(400, "model: a string is required", "model");
    r.model = j["model"].get<std::string>();
  }
  return r;
}

}  // namespace

void register_openai_routes(httplib::Server& http, engine::Engine& engine,
                            const ServerOptions& options) {
  http.Post("/v1/images/generations", [&engine, &options](const httplib::Request& req,
                                                          httplib::Response& res) {
    try {
      engine::JobRequest request = parse_images_request(req.body, options.limits);
      const json body = json::parse(req.body);
      const std::string format =
          body.contains("response_format") && body["response_format"].is_string()
              ? body["response_format"].get<std::string>()
              : "b64_json";
      if (format != "b64_json" && format != "url")
        throw OpenAiError(400, "response_format must be b64_json or url", "response_format");
      request.save_outputs = !engine.options().outputs_dir.empty();
      auto job = engine.submit(std::move(request));
      const engine::JobSnapshot s = wait_for_job(*job, req);
      if (s.status == engine::JobStatus::Cancelled)
        throw OpenAiError(409, "the generation was cancelled: " + s.error);
      if (s.status != engine::JobStatus::Succeeded)
        throw OpenAiError(s.error_kind == "bad_request" ? 400 : 500, s.error);
      json data = json::array();
      const std::string host = req.get_header_value("Host");
      for (size_t i = 0; i < s.result->images.size(); ++i) {
        const auto& im = s.result->images[i];
        if (format == "b64_json")
          data.push_back({{"b64_json", base64_encode(im.png)}, {"revised_prompt", nullptr}});
        else  // kept for the result TTL, like OpenAI's expiring URLs
          data.push_back(
              {{"url", "http://" + host + "/v1/jobs/" + s.id + "/images/" + std::to_string(i)}});
      }
      send_json(res, 200,
                {{"created",
                  std::chrono::duration_cast<std::chrono::seconds>(s.finished.time_since_epoch())
                      .count()},
                 {"data", std::move(data)}});
    } catch (...) {
      reply_error(res, std::current_exception());
    }
  });

  http.Get("/v1/models", [&engine](const httplib::Request&, httplib::Response& res) {
    json data = json::array();
    for (const auto& m : engine.registry().models())
      data.push_back(
          {{"id", m.name}, {"object", "model"}, {"created", m.modified_unix}, {"owned_by", "sdc"}});
    send_json(res, 200, {{"object", "list"}, {"data", std::move(data)}});
  });
}

}  // namespace sdc::server
