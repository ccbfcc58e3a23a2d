// The read-only and housekeeping A1111 routes: models, samplers, schedulers, VAEs, LoRAs,
// embeddings, upscalers, latent upscale modes, scripts, command-line flags, memory, prompt
// styles, PNG info, refresh/unload/reload. Lists of things sdc does not have are empty, in
// A1111's shape, so that clients that load every list (SillyTavern, webuiapi) keep working.
#include <httplib.h>
#include <sys/sysinfo.h>

#include <filesystem>
#include <sstream>

#include "engine/engine_errors.h"
#include "model/textual_inversion.h"
#include "server/a1111/api_error.h"
#include "server/a1111/image_base64.h"
#include "server/a1111/png_info.h"
#include "server/a1111/pydantic_coerce.h"
#include "server/a1111/route_context.h"
#include "server/a1111/sampler_names.h"
#include "server/server_options.h"

namespace sdc::server::a1111 {
namespace {

using nlohmann::json;

json or_null(const std::string& s) {
  return s.empty() ? json(nullptr) : json(s);
}

json sd_models(engine::Engine& engine) {
  json out = json::array();
  for (const engine::ModelInfo& m : engine.registry().models())
    out.push_back({{"title", m.title()},
                   {"model_name", m.model_name},
                   {"hash", or_null(m.short_hash())},
                   {"sha256", or_null(m.sha256)},
                   {"filename", m.path},
                   {"config", or_null(m.model_config)}});
  return out;
}

json loras(engine::Engine& engine) {
  json out = json::array();
  for (const engine::LoraInfo& l : engine.registry().loras())
    out.push_back(
        {{"name", l.name}, {"alias", l.alias}, {"path", l.path}, {"metadata", json::object()}});
  return out;
}

json cmd_flags(const RouteContext& ctx) {
  const engine::RegistryOptions& r = ctx.engine.registry().options();
  std::string origins;
  for (const std::string& o : ctx.options.cors_allow_origins)
    origins += (origins.empty() ? "" : ",") + o;
  return {{"api", true},
          {"nowebui", true},
          {"listen", !is_loopback_host(ctx.options.host)},
          {"server_name", ctx.options.host},
          {"port", ctx.options.port},
          // Never echoed: A1111 returns the credentials here, sdc says only whether they are set.
          {"api_auth", ctx.options.api_auth.empty() ? json(nullptr) : json("<set>")},
          {"cors_allow_origins", or_null(origins)},
          {"cors_allow_origins_regex", nullptr},
          {"ckpt", or_null(r.single_model)},
          {"ckpt_dir", or_null(r.models_dir)},
          {"lora_dir", or_null(r.lora_dir)},
          {"controlnet_dir", or_null(r.controlnet_dir)},
          {"use_cpu", json::array({"all"})},
          {"skip_torch_cuda_test", true},
          {"api_log", false},
          {"api_server_stop", false}};
}

json memory() {
  json ram;
  struct sysinfo si {};
  if (sysinfo(&si) == 0) {
    const double unit = double(si.mem_unit);
    const double total = double(si.totalram) * unit, free = double(si.freeram) * unit;
    ram = {{"free", free}, {"used", total - free}, {"total", total}};
  } else {
    ram = {{"error", "sysinfo failed"}};
  }
  return {{"ram", ram}, {"cuda", {{"error", "sdc runs on the CPU: no CUDA device"}}}};
}

json png_info(const httplib::Request& req) {
  const json body = parse_json_object_body(req.body, req.get_header_value("Content-Type"));
  FieldErrors errors;
  BodyReader r(body, errors);
  const std::string image = r.get_str("image").value_or("");
  errors.throw_if_any();
  if (image.find_first_not_of(" \t\r\n") == std::string::npos)
    return {{"info", ""}, {"items", json::object()}, {"parameters", json::object()}};
  return png_info_response(request_image_bytes(image, "image"));
}

void get(httplib::Server& http, const char* path, std::function<json()> f) {
  http.Get(path, [f](const httplib::Request&, httplib::Response& res) { handle(res, f); });
}
void post(httplib::Server& http, const char* path, std::function<json()> f) {
  http.Post(path, [f](const httplib::Request&, httplib::Response& res) { handle(res, f); });
}

// A1111's shape: {loaded: {name: {step, sd_checkpoint, sd_checkpoint_name, shape, vectors}},
// skipped: {name: …}} for the folder of `sdc serve --embeddings`, read now (A1111 rescans too),
// against the text-encoder width of the current model when it is loaded (else SD1.x's 768);
// files of another width are listed as skipped.
json embeddings(engine::Engine& e) {
  json loaded = json::object(), skipped = json::object();
  const std::string& dir = e.options().embeddings_dir;
  if (!dir.empty()) {
    int width = 768;
    if (const auto current = e.current_model_if_any())
      for (const engine::LoadedModelInfo& m : e.loaded_models())
        if (m.model == current->name) width = m.text_width;
    std::ostringstream log;
    const model::EmbeddingLibrary lib = model::load_embeddings(dir, width, log);
    for (const model::Embedding& m : lib.embeddings)
      loaded[m.name] = {{"step", nullptr},
                        {"sd_checkpoint", nullptr},
                        {"sd_checkpoint_name", nullptr},
                        {"shape", m.width},
                        {"vectors", m.vectors}};
    for (const std::string& s : lib.skipped) {
      // "file: why" -> the file's stem as the name, as A1111 keys skipped embeddings.
      const std::string file = s.substr(0, s.find(':'));
      skipped[std::filesystem::path(file).stem().string()] = {{"step", nullptr},
                                                              {"sd_checkpoint", nullptr},
                                                              {"sd_checkpoint_name", nullptr},
                                                              {"shape", nullptr},
                                                              {"vectors", nullptr}};
    }
  }
  return json{{"loaded", loaded}, {"skipped", skipped}};
}

}  // namespace

void register_listing_routes(httplib::Server& http, const Context& ctx) {
  engine::Engine& e = ctx->engine;
  get(http, "/sdapi/v1/sd-models", [&e] { return sd_models(e); });
  get(http, "/sdapi/v1/samplers", [] { return samplers_json(); });
  get(http, "/sdapi/v1/schedulers", [] { return schedulers_json(); });
  get(http, "/sdapi/v1/loras", [&e] { return loras(e); });
  get(http, "/sdapi/v1/cmd-flags", [ctx] { return cmd_flags(*ctx); });
  get(http, "/sdapi/v1/memory", [] { return memory(); });
  get(http, "/sdapi/v1/embeddings", [&e] { return embeddings(e); });
  get(http, "/sdapi/v1/scripts", [] {
    return json{{"txt2img", json::array()}, {"img2img", json::array()}};
  });
  // The hires-fix upscalers sdc has (hr_upscaler): PIL's Lanczos on pixels, and "Latent"
  // (bilinear on the latents).
  get(http, "/sdapi/v1/upscalers", [] {
    return json::array({{{"name", "Lanczos"},
                         {"model_name", nullptr},
                         {"model_path", nullptr},
                         {"model_url", nullptr},
                         {"scale", 4}}});
  });
  get(http, "/sdapi/v1/latent-upscale-modes", [] { return json::array({{{"name", "Latent"}}}); });
  // Lists of what sdc does not have: empty, in A1111's shape.
  for (const char* path : {"/sdapi/v1/sd-vae", "/sdapi/v1/prompt-styles", "/sdapi/v1/hypernetworks",
                           "/sdapi/v1/face-restorers", "/sdapi/v1/realesrgan-models",
                           "/sdapi/v1/script-info", "/sdapi/v1/extensions"})
    get(http, path, [] { return json::array(); });

  http.Post("/sdapi/v1/png-info", [](const httplib::Request& req, httplib::Response& res) {
    handle(res, [&] { return png_info(req); });
  });
  post(http, "/sdapi/v1/refresh-checkpoints", [&e] {
    e.registry().refresh();
    return json(nullptr);
  });
  post(http, "/sdapi/v1/refresh-loras", [&e] {
    e.registry().refresh();
    return json(nullptr);
  });
  for (const char* path : {"/sdapi/v1/refresh-vae", "/sdapi/v1/refresh-embeddings"})
    post(http, path, [] { return json(nullptr); });
  post(http, "/sdapi/v1/unload-checkpoint", [&e] {
    e.unload_all();
    return json::object();
  });
  post(http, "/sdapi/v1/reload-checkpoint", [&e] {
    e.reload_current();
    return json::object();
  });
}

}  // namespace sdc::server::a1111
