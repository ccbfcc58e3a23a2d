// `sdc serve`: the engine behind an HTTP API — A1111 /sdapi/v1, native async jobs with SSE,
// OpenAI images, health/readiness/metrics. SIGINT/SIGTERM stop it cleanly: no new requests,
// queued and running jobs cancelled (nothing half-written: outputs are written atomically),
// blocked clients answered, the port released.
#include <pthread.h>
#include <signal.h>

#include <filesystem>
#include <iostream>
#include <thread>

#include "cli/commands.h"
#include "cli/model_options.h"
#include "cli/transfer_flags.h"
#include "common/error.h"
#include "common/huge_pages.h"
#include "engine/engine.h"
#include "server/http_server.h"

namespace sdc::cli {
namespace {

struct ServeArgs {
  engine::EngineOptions engine;
  server::ServerOptions server;
  std::string api_auth, cors;
  std::string model;
  double max_body_mb = 64;
  int result_ttl_s = 3600;
};

void run_serve(ServeArgs& a) {
  a.server.api_auth = server::parse_api_auth(a.api_auth);
  a.server.cors_allow_origins = server::split_list(a.cors);
  if (!(a.max_body_mb > 0 && a.max_body_mb <= 4096))
    throw UsageError("", "--max-body-mb", "a size in (0, 4096] MiB", std::to_string(a.max_body_mb));
  a.server.max_body_bytes = size_t(a.max_body_mb * 1024 * 1024);
  if (a.result_ttl_s < 1)
    throw UsageError("", "--result-ttl", "at least 1 second", std::to_string(a.result_ttl_s));
  a.engine.result_ttl = std::chrono::seconds(a.result_ttl_s);
  engine::RegistryOptions& reg = a.engine.registry;
  if (!a.model.empty()) {
    if (!std::filesystem::exists(a.model))
      throw UsageError(a.model, "-m", "an existing model file or folder", "no such file");
    // -m: a file inside --models-dir is selected by name; any other is served as an extra model.
    std::error_code ec;
    const auto dir = reg.models_dir.empty() ? std::filesystem::path()
                                            : std::filesystem::canonical(reg.models_dir, ec);
    const auto file = std::filesystem::weakly_canonical(a.model, ec);
    const auto rel = dir.empty() ? std::filesystem::path() : file.lexically_relative(dir);
    if (!dir.empty() && !rel.empty() && *rel.begin() != "..") {
      a.engine.default_model = rel.generic_string();
    } else {
      reg.single_model = a.model;
      a.engine.default_model = std::filesystem::path(a.model).filename().string();
      if (a.engine.default_model.empty())
        a.engine.default_model = std::filesystem::path(a.model).parent_path().filename().string();
    }
  }
  if (a.engine.settings_file.empty() && !reg.models_dir.empty())
    a.engine.settings_file = (std::filesystem::path(reg.models_dir) / "sdc-settings.json").string();

  // Signals go to one watcher thread only: block them before any thread is started.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGUSR1);  // sent by this process to end the watcher
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  // Decided (and a bad SDC_HUGE_PAGES refused) before any model loads; logged once listening.
  const HugePagePolicy& huge_pages = anonymous_huge_pages();
  engine::Engine engine(a.engine);
  server::HttpServer http(engine, a.server);
  http.bind();
  if (!server::is_loopback_host(a.server.host) && a.server.api_auth.empty())
    std::cerr << "warning: listening on " << a.server.host
              << " without --api-auth: anyone who can reach this address can use the API\n";
  const auto models = engine.registry().models();
  std::cerr << "models: " << models.size() << " in "
            << (reg.models_dir.empty() ? "-m" : reg.models_dir)
            << ", LoRAs: " << engine.registry().loras().size();
  if (auto m = engine.current_model_if_any()) std::cerr << ", current: " << m->name;
  std::cerr << "\nhuge pages for activations and packed weights: " << huge_pages.reason << "\n";
  std::cout << "sdc serve: listening on http://" << a.server.host << ":" << http.port()
            << std::endl;

  std::thread watcher([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    if (sig == SIGUSR1) return;  // the server stopped by itself: nothing to do
    std::cerr << "sdc serve: " << (sig == SIGINT ? "SIGINT" : "SIGTERM")
              << ": stopping (cancelling jobs, closing connections)\n";
    engine.shutdown(true);  // blocked handlers and SSE streams see their jobs end
    http.stop();
  });
  // From here a stop signal is only ever taken by the watcher (every thread blocks them).
  http.run();
  engine.shutdown(true);
  pthread_kill(watcher.native_handle(), SIGUSR1);  // wakes it if the stop did not come from it
  watcher.join();
  std::cerr << "sdc serve: stopped\n";
}

}  // namespace

void add_serve_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("serve", "Serve the engine over HTTP (A1111 API, jobs, OpenAI)");
  auto a = std::make_shared<ServeArgs>();
  engine::RegistryOptions& reg = a->engine.registry;
  cmd->add_option("--models-dir", reg.models_dir,
                  "Folder scanned for .safetensors, .ckpt, .gguf and diffusers folders");
  cmd->add_option("-m,--model", a->model,
                  "Model selected at start (file, or name in --models-dir)");
  cmd->add_option("--model-config", reg.model_config,
                  "Diffusers-style config folder for checkpoints without their own");
  cmd->add_option("--lora-dir", reg.lora_dir, "LoRA folder (default: MODELS_DIR/lora)");
  cmd->add_option("--controlnet-dir", reg.controlnet_dir,
                  "ControlNet folder (default: MODELS_DIR/controlnet)");
  cmd->add_option("--taesd", a->engine.taesd,
                  "TAESD file or folder for every model: live previews at full size, "
                  "decode_with/encode_with \"taesd\"");
  cmd->add_option("--embeddings", a->engine.embeddings_dir,
                  "Textual-inversion embeddings folder for every model (A1111's embeddings/)");
  cmd->add_option("--host", a->server.host, "Address to listen on");
  cmd->add_option("--port", a->server.port, "Port (0: any free port)");
  cmd->add_option("--api-auth", a->api_auth, "user:password[,user:password…] (HTTP basic auth)");
  cmd->add_option("--cors-allow-origins", a->cors,
                  "Origins allowed by CORS, comma-separated (*: any)");
  cmd->add_option("--max-queue", a->engine.max_queue, "Jobs that may wait (more: 429)");
  cmd->add_option("--max-loaded", a->engine.max_loaded, "Models (+LoRA combinations) kept loaded");
  cmd->add_option("--outputs-dir", a->engine.outputs_dir, "Also write every image here");
  cmd->add_option("--settings", a->engine.settings_file,
                  "Settings file (default: MODELS_DIR/sdc-settings.json)");
  cmd->add_option("--threads", a->engine.threads, "CPU threads per generation (0: all cores)");
  cmd->add_option("--precision", a->engine.precision,
                  "f32 | bf16 | auto | int8 (UNet W8A8, other components as auto)");
  cmd->add_option("--vae-precision", a->engine.vae_precision,
                  "auto (as --precision) | int8 (VAE and TAESD decoders W8A8, opt-in)");
  add_winograd_flag(*cmd, a->engine.winograd);
  cmd->add_option("--max-body-mb", a->max_body_mb, "Largest request body in MiB (more: 413)");
  cmd->add_option("--result-ttl", a->result_ttl_s, "Seconds a finished job's results are kept");
  add_transfer_flags(*cmd, a->server.transfer);
  cmd->callback([a] { run_serve(*a); });
}

}  // namespace sdc::cli
