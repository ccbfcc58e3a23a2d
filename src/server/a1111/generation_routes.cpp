// POST /sdapi/v1/txt2img and /img2img (blocking until the images are made, as A1111), GET
// /progress, POST /interrupt and /skip. Generations go through the engine's one queue; a client
// that hangs up has its job cancelled (wait_for_job).
#include <httplib.h>

#include <chrono>
#include <cmath>
#include <ctime>

#include "server/a1111/api_error.h"
#include "server/a1111/generation_response.h"
#include "server/a1111/image_base64.h"
#include "server/a1111/pydantic_coerce.h"
#include "server/a1111/route_context.h"
#include "server/job_wait.h"

namespace sdc::server::a1111 {
namespace {

using nlohmann::json;

// The engine's job for a parsed request; the options that apply to every generation (clip skip,
// live previews) come from the settings unless the request overrides them.
engine::JobRequest job_request(const A1111Generation& g, const json& options) {
  engine::JobRequest jr;
  jr.generation = g.request;
  if (!g.override_settings.contains("CLIP_stop_at_last_layers")) {
    const json& c = options["CLIP_stop_at_last_layers"];
    if (c.is_number_integer()) jr.generation.clip_skip = c.get<int>();
  }
  // An option as this request sees it: its override_settings, else the saved settings.
  auto setting = [&](const char* key) -> const json& {
    return g.override_settings.contains(key) ? g.override_settings[key] : options[key];
  };
  // The autoencoder methods (A1111's sd_vae_decode_method / sd_vae_encode_method /
  // show_progress_type; TAESD needs sdc serve --taesd).
  auto option = [&](const char* key) {
    const json& v = setting(key);
    return v.is_string() ? v.get<std::string>() : std::string();
  };
  // img2img_fix_steps: img2img runs exactly `steps` steps of a longer schedule (A1111's option).
  const json& fix = setting("img2img_fix_steps");
  if (fix.is_boolean() && g.mode == GenerationMode::Img2Img)
    jr.generation.img2img_fix_steps = fix.get<bool>();
  if (option("sd_vae_decode_method") == "TAESD") jr.generation.decode_with = "taesd";
  if (option("sd_vae_encode_method") == "TAESD") jr.generation.encode_with = "taesd";
  jr.generation.preview_method = option("show_progress_type") == "TAESD" ? "taesd" : "cheap";
  jr.model = g.checkpoint.value_or("");
  for (const LoraTag& l : g.loras) jr.loras.push_back({l.name, float(l.weight)});
  jr.kind = g.mode == GenerationMode::Img2Img ? "img2img" : "txt2img";
  if (options.value("live_previews_enable", true)) {
    const json& every = options["show_progress_every_n_steps"];
    jr.preview_every = every.is_number_integer() ? std::max(0, every.get<int>()) : 0;
  }
  jr.save_outputs = g.save_images;
  return jr;
}

GenerationOutput output_of(const engine::JobResult& r) {
  GenerationOutput out;
  for (const engine::JobImage& img : r.images) {
    out.pngs.push_back(img.png);
    out.seeds.push_back(img.seed);
    out.infotexts.push_back(img.infotext);
  }
  out.model_name = r.model_name;
  out.model_hash = r.model_hash;
  out.job_timestamp = r.job_timestamp;
  out.clip_skip = r.generation.clip_skip;
  out.steps = r.generation.steps;
  out.cfg_scale = r.generation.cfg_scale;
  out.interrupted = r.interrupted;
  out.inpainting_conditioning = r.inpainting_conditioning;
  return out;
}

json generate(const RouteContext& ctx, const httplib::Request& req, GenerationMode mode) {
  A1111Generation g =
      parse_generation(req.body, req.get_header_value("Content-Type"), mode, ctx.limits);
  const json options = current_options(ctx.engine);
  std::shared_ptr<engine::Job> job = ctx.engine.submit(job_request(g, options));
  const engine::JobSnapshot done = wait_for_job(*job, req);
  GenerationOutput out;
  switch (done.status) {
    case engine::JobStatus::Succeeded:
      out = output_of(*done.result);
      break;
    case engine::JobStatus::Cancelled:
      // Interrupted before it ran (or its client left): A1111 answers 200 with what it has.
      out.interrupted = true;
      out.steps = g.request.steps;
      out.cfg_scale = g.request.cfg_scale;
      break;
    case engine::JobStatus::Failed:
      if (done.error_kind == "bad_request") throw ApiError(400, "Error", done.error);
      throw ApiError(500, "RuntimeError", "", done.error);
    default:
      throw ApiError(500, "RuntimeError", "", "the job ended in an unexpected state");
  }
  // Overrides that the client asked to keep become the settings (A1111's
  // override_settings_restore_afterwards=false).
  if (!g.restore_settings && !g.override_settings.empty()) {
    json keep = g.override_settings;
    if (keep.contains("sd_model_checkpoint")) {
      ctx.engine.select_model(keep["sd_model_checkpoint"].get<std::string>());
      keep.erase("sd_model_checkpoint");
    }
    keep.erase("sd_checkpoint_hash");
    if (!keep.empty()) ctx.engine.settings().update(keep);
  }
  return generation_response(g, out);
}

std::string timestamp_of(std::chrono::system_clock::time_point t) {
  const std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  localtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d%H%M%S", &tm);
  return buf;
}

// A1111's ProgressResponse for the job running now (idle: all zero, job_count 0).
json progress(const RouteContext& ctx, bool skip_current_image) {
  json state = {{"skipped", false}, {"interrupted", false}, {"stopping_generation", false},
                {"job", ""},        {"job_count", 0},       {"job_timestamp", "0"},
                {"job_no", 0},      {"sampling_step", 0},   {"sampling_steps", 0}};
  std::shared_ptr<engine::Job> job = ctx.engine.current_job();
  engine::JobSnapshot s;
  if (job) s = job->snapshot();
  if (!job || engine::is_final(s.status))
    return {{"progress", 0},
            {"eta_relative", 0},
            {"state", state},
            {"current_image", nullptr},
            {"textinfo", nullptr}};
  const engine::JobProgress& p = s.progress;
  const pipeline::StopRequest stop = job->stop_token().requested();
  state["skipped"] = stop == pipeline::StopRequest::Skip;
  state["interrupted"] = stop == pipeline::StopRequest::Interrupt;
  state["job"] = "scripts_" + s.kind;
  state["job_count"] = std::max(1, p.batch_count);
  state["job_no"] = p.batch;
  state["sampling_step"] = p.step;
  state["sampling_steps"] = p.total_steps;
  if (s.status == engine::JobStatus::Running) state["job_timestamp"] = timestamp_of(s.started);
  // A1111: 0.01 + the job's fraction while running, capped at 1.
  const double fraction =
      s.status == engine::JobStatus::Running ? std::min(1.0, 0.01 + p.fraction) : 0.0;
  double eta = p.eta_s;
  if (eta < 0) eta = fraction > 0 ? p.elapsed_s / fraction - p.elapsed_s : 0;
  json image = nullptr;
  if (!skip_current_image && !p.preview_png.empty())
    image =
        encode_base64(reinterpret_cast<const uint8_t*>(p.preview_png.data()), p.preview_png.size());
  return {{"progress", fraction},
          {"eta_relative", eta},
          {"state", state},
          {"current_image", image},
          {"textinfo", p.textinfo.empty() ? json(nullptr) : json(p.textinfo)}};
}

bool query_flag(const httplib::Request& req, const char* name) {
  if (!req.has_param(name)) return false;
  FieldErrors errors;
  const auto v = coerce_bool(req.get_param_value(name), json::array({"query", name}), errors);
  errors.throw_if_any();
  return v.value_or(false);
}

}  // namespace

void register_generation_routes(httplib::Server& http, const Context& ctx) {
  http.Post("/sdapi/v1/txt2img", [ctx](const httplib::Request& req, httplib::Response& res) {
    handle(res, [&] { return generate(*ctx, req, GenerationMode::Txt2Img); });
  });
  http.Post("/sdapi/v1/img2img", [ctx](const httplib::Request& req, httplib::Response& res) {
    handle(res, [&] { return generate(*ctx, req, GenerationMode::Img2Img); });
  });
  http.Get("/sdapi/v1/progress", [ctx](const httplib::Request& req, httplib::Response& res) {
    handle(res, [&] { return progress(*ctx, query_flag(req, "skip_current_image")); });
  });
  http.Post("/sdapi/v1/interrupt", [ctx](const httplib::Request&, httplib::Response& res) {
    handle(res, [&] {
      // Only the running generation: a queued one has not started, as in A1111 where a request
      // waiting for the queue lock is not touched by /interrupt.
      if (auto job = ctx->engine.current_job(); job && job->status() == engine::JobStatus::Running)
        job->interrupt();
      return json::object();
    });
  });
  http.Post("/sdapi/v1/skip", [ctx](const httplib::Request&, httplib::Response& res) {
    handle(res, [&] {
      if (auto job = ctx->engine.current_job(); job && job->status() == engine::JobStatus::Running)
        job->skip();
      return json(nullptr);
    });
  });
}

}  // namespace sdc::server::a1111
