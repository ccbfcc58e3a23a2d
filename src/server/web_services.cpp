// WebServices: wiring the transfer pieces and convert jobs to the engine and to httplib.
#include "server/web_services.h"

#include <httplib.h>

#include <chrono>
#include <filesystem>

#include "imaging/canny.h"
#include "server/image_input.h"
#include "server/json_response.h"
#include "server/transfer/transfer_routes.h"
#include "server/web_page.h"

#ifndef SDC_VERSION
#define SDC_VERSION "unknown"
#endif

namespace sdc::server {

namespace fs = std::filesystem;

WebServices::WebServices(engine::Engine& engine, const ServerOptions& options)
    : engine_(engine), options_(options.transfer), limits_(options.limits) {
  const std::string models_dir = engine.options().registry.models_dir;
  std::vector<transfer::FileRoot> roots;
  if (!models_dir.empty()) roots.push_back({"models", models_dir});
  if (!options_.imports_dir.empty()) roots.push_back({"imports", options_.imports_dir});
  if (!roots.empty()) files_ = std::make_unique<transfer::FileBrowser>(roots);
  std::string uploads_dir = options_.uploads_dir;
  if (uploads_dir.empty() && !models_dir.empty())
    uploads_dir = (fs::path(models_dir) / ".sdc-uploads").string();
  if (!uploads_dir.empty()) {
    transfer::UploadOptions uo;
    uo.dir = uploads_dir;
    uo.max_bytes = options_.max_upload_bytes;
    uploads_ = std::make_unique<transfer::UploadStore>(uo);
  }
  ctx_.files = files_.get();
  ctx_.uploads = uploads_.get();
  ctx_.downloads.allow_http = options_.allow_http;
  ctx_.downloads.allow_private = options_.allow_private_downloads;
  ctx_.downloads.max_bytes = options_.max_download_bytes;
  ctx_.downloads.total_timeout = std::chrono::seconds(options_.download_timeout_s);
  ctx_.downloads.connect_timeout = std::chrono::seconds(options_.download_connect_timeout_s);
  ctx_.models_dir = models_dir;
  ctx_.model_config = engine.options().registry.model_config;
  ctx_.tool = std::string("sdc ") + SDC_VERSION;
  ctx_.threads = engine.options().threads;
}

void WebServices::register_routes(httplib::Server& http) {
  transfer::add_transfer_routes(http, {files_.get(), uploads_.get()});
  register_web_page(http);
  // The Models page's load / unload (A1111 clients use /sdapi/v1/options and unload-checkpoint).
  engine::Engine& engine = engine_;
  http.Post("/v1/models/load", [&engine](const httplib::Request& req, httplib::Response& res) {
    const nlohmann::json j = nlohmann::json::parse(req.body, nullptr, false);
    if (!j.is_object() || !j.contains("model") || !j["model"].is_string())
      throw HttpError(400, "body: expected {\"model\": NAME}", "BadRequest");
    const engine::ModelInfo m = engine.select_model(j["model"].get<std::string>());
    send_json(res, 200, {{"model", m.name}, {"title", m.title()}});
  });
  http.Post("/v1/models/unload", [&engine](const httplib::Request&, httplib::Response& res) {
    engine.unload_all();
    send_json(res, 200, {{"loaded", nlohmann::json::array()}});
  });
  // The page's live preview of a ControlNet hint: the same canny the pipeline runs.
  const RequestLimits limits = limits_;
  http.Post("/v1/preprocess/canny", [limits](const httplib::Request& req, httplib::Response& res) {
    const nlohmann::json j = nlohmann::json::parse(req.body, nullptr, false);
    if (!j.is_object() || !j.contains("image") || !j["image"].is_string())
      throw HttpError(400, "body: expected {\"image\": base64 or data URL, \"low\", \"high\"}",
                      "BadRequest");
    auto threshold = [&](const char* key, double fallback) {
      if (!j.contains(key)) return float(fallback);
      if (!j[key].is_number() || j[key].get<double>() < 0 || j[key].get<double>() > 1000)
        throw HttpError(400, std::string(key) + ": expected a number in [0, 1000]", "BadRequest");
      return j[key].get<float>();
    };
    const float low = threshold("low", 100), high = threshold("high", 200);
    const io::Image image = decode_request_image(j["image"].get<std::string>(), "image", limits);
    const std::vector<uint8_t> png = io::encode_png(imaging::canny(image, low, high));
    res.status = 200;
    res.set_content(std::string(png.begin(), png.end()), "image/png");
  });
  http.Get("/v1/models/loaded", [&engine](const httplib::Request&, httplib::Response& res) {
    nlohmann::json list = nlohmann::json::array();
    for (const engine::LoadedModelInfo& m : engine.loaded_models())
      list.push_back({{"model", m.model}, {"title", m.title}, {"plans", m.plans}});
    const auto current = engine.current_model_if_any();
    send_json(res, 200,
              {{"current", current ? nlohmann::json(current->name) : nlohmann::json(nullptr)},
               {"loaded", list}});
  });
}

std::optional<engine::JobRequest> WebServices::job_request(const std::string& body) {
  const nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_object() || !j.contains("type") || j["type"] != "convert") return std::nullopt;
  if (ctx_.models_dir.empty())
    throw HttpError(400, "convert jobs need --models-dir (where the result is written)",
                    "BadRequest");
  std::shared_ptr<convert_jobs::PreparedConvert> prepared;
  try {
    prepared =
        std::make_shared<convert_jobs::PreparedConvert>(convert_jobs::prepare_convert(j, ctx_));
  } catch (const transfer::UploadNotFound& e) {
    throw HttpError(404, e.what(), "NotFound");
  } catch (const transfer::UploadConflict& e) {
    throw HttpError(409, e.what(), "Conflict");
  } catch (const transfer::PathRefused& e) {
    throw HttpError(400, e.what(), "PathRefused");
  }
  engine::JobRequest request;
  request.kind = "convert";
  auto self = shared_from_this();
  request.task = [self, prepared](engine::Job& job) {
    return self->run_convert_job(job, *prepared);
  };
  return request;
}

nlohmann::json WebServices::run_convert_job(engine::Job& job,
                                            const convert_jobs::PreparedConvert& p) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point start = Clock::now();
  engine::JobProgress progress;
  std::string last_stage;
  int last_permille = -1;
  convert_jobs::ConvertJobHooks hooks;
  hooks.cancelled = [&job] {
    // Skip means nothing to a convert; interrupt and cancel both stop it (no partial result).
    return job.stop_token().requested() >= pipeline::StopRequest::Interrupt;
  };
  hooks.progress = [&](const convert_jobs::ConvertJobProgress& cp) {
    // Events are kept for the job's life: one per 0.5 % of the job and per stage, not per chunk.
    const int permille = int(cp.fraction * 200);
    if (cp.stage == last_stage && permille == last_permille && cp.stage_fraction < 1.0) return;
    last_stage = cp.stage;
    last_permille = permille;
    progress.task_stage = cp.stage;
    progress.fraction = cp.fraction;
    progress.step = int(cp.stage_fraction * 1000);
    progress.total_steps = 1000;
    progress.elapsed_s = std::chrono::duration<double>(Clock::now() - start).count();
    progress.eta_s = cp.fraction > 0.02 ? progress.elapsed_s * (1 - cp.fraction) / cp.fraction : -1;
    progress.textinfo = cp.text;
    job.update_progress(progress);
  };
  std::vector<std::string> log_lines;
  hooks.log = [&](const std::string& line) { log_lines.push_back(line); };
  convert_jobs::ConvertJobResult r;
  try {
    r = convert_jobs::run_convert(p, ctx_, hooks);
  } catch (const std::exception& e) {
    if (convert_jobs::is_cancellation(e)) throw pipeline::GenerationCancelled();
    throw;
  }
  // Registered at once: the next generation (or GET /sdapi/v1/sd-models) sees it.
  engine_.registry().refresh();
  std::string model_name;
  for (const engine::ModelInfo& m : engine_.registry().models())
    if (fs::path(m.path).filename() == r.file) model_name = m.name;
  const model::CompiledInfo& info = r.converted.info;
  nlohmann::json precision = nlohmann::json::object();
  for (const auto& [component, type] : info.precision)
    precision[component] = model::precision_label(type);
  nlohmann::json loras = nlohmann::json::array();
  for (const auto& l : info.loras) loras.push_back({{"name", l.name}, {"scale", l.scale}});
  nlohmann::json defaults = nlohmann::json::object();
  if (!info.defaults.empty())
    defaults = {{"sampler", info.defaults.sampler},
                {"steps", info.defaults.steps},
                {"cfg_scale", info.defaults.cfg_scale},
                {"reason", info.defaults.reason}};
  return {{"model", model_name.empty() ? r.file : model_name},
          {"file", r.file},
          {"bytes", r.bytes},
          {"tensors", r.converted.written.tensors},
          {"merged", r.converted.written.merged},
          {"precision", precision},
          {"loras", loras},
          {"defaults", defaults},
          {"log", log_lines}};
}

}  // namespace sdc::server
