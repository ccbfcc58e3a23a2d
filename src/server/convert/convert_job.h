// Convert jobs as the server runs them: POST /v1/jobs {"type": "convert", …} parsed and checked
// when submitted (prepare_convert: every source resolved — an upload leased so it cannot vanish,
// a server path resolved inside its root, a URL's scheme checked — the name and output checked),
// then run in the engine's queue (run_convert): URLs downloaded, `sdc convert`'s own code run,
// all inside a private temporary folder per job (models_dir/.sdc-convert-XXXXXX, removed
// whatever happens), and the result moved to models_dir/NAME.gguf only when complete (never over
// an existing file). Errors name the file as the user knows it (the upload's name, the path in
// the models folder, the redacted URL), never the server's own temporary paths.
//
// Request (sources, SRC, are {"upload": ID} | {"path": REL, "root": "models"|"imports"} |
// {"url": "https://…", "token": "…"}):
//   {"type": "convert", "source": SRC, "loras": [SRC + {"scale": 0.8}, …], "controlnet": SRC,
//    "vae": SRC, "precision": "bf16" | {"unet": "bf16", "vae": "f32", …}, "sizes": [[512, 512]],
//    "batch": 1, "name": "my-model", "defaults": "auto"|"lcm"|"none",
//    "ignore_unmatched_lora_keys": false}
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "convert/convert_model.h"
#include "server/transfer/downloader.h"
#include "server/transfer/file_browser.h"
#include "server/transfer/upload_store.h"

namespace sdc::server::convert_jobs {

struct ConvertContext {
  transfer::FileBrowser* files = nullptr;    // path sources (null: refused)
  transfer::UploadStore* uploads = nullptr;  // upload sources (null: refused)
  transfer::DownloadPolicy downloads;        // url sources
  std::string models_dir;                    // where results go (and their temporary folders)
  std::string model_config;  // --model-config for models without their own hyper-parameters
  std::string tool;          // "sdc 0.1.0"
  int threads = 0;
};

// One input, resolved at submit time.
struct Source {
  enum class Kind { Upload, Path, Url } kind = Kind::Path;
  std::string field;       // "source", "loras[1]", "vae", … (for messages)
  std::string display;     // how the user knows it: "upload NAME", "models/REL", a redacted URL
  std::string path;        // Upload / Path: the file or folder on disk
  std::string url, token;  // Url
  float scale = 1.0f;      // LoRAs
  std::shared_ptr<transfer::UploadLease> lease;  // Upload: held until the job ends
};

struct PreparedConvert {
  Source model;
  std::vector<Source> loras;
  std::optional<Source> controlnet, vae;
  sdc::convert::ConvertSpec spec;  // types, sizes, batch, name, defaults, ignore_unmatched
  std::string output_name;         // NAME.gguf inside models_dir
};

// Parses and checks a request body (see the file comment). sdc::Error (400) naming the field;
// transfer::PathRefused (400); transfer::UploadNotFound (404); transfer::UploadConflict (409:
// an upload not complete yet); an output that exists is a 409-style UploadConflict as well.
PreparedConvert prepare_convert(const nlohmann::json& body, const ConvertContext& ctx);

struct ConvertJobProgress {
  std::string stage;          // "download", "read", "hash", "write", "publish"
  std::string label;          // "download lcm-lora.safetensors", "merge LoRA + cast + write"
  double stage_fraction = 0;  // 0..1 within the stage
  double fraction = 0;        // 0..1 over the whole job
  std::string text;           // "merge LoRA + cast + write 120/976"
};

struct ConvertJobHooks {
  std::function<void(const ConvertJobProgress&)> progress;
  std::function<bool()> cancelled;
  std::function<void(const std::string&)> log;
};

struct ConvertJobResult {
  std::string file;  // NAME.gguf, relative to models_dir
  std::string path;  // absolute
  uint64_t bytes = 0;
  sdc::convert::ConvertResult converted;
  std::vector<std::string> log;  // LoRA reports, recommended defaults, download notes
};

// Runs a prepared convert. sdc::Error (the message naming files as the user knows them),
// sdc::convert::ConvertCancelled or transfer::DownloadCancelled when cancelled; nothing is
// left behind in either case.
ConvertJobResult run_convert(const PreparedConvert& job, const ConvertContext& ctx,
                             const ConvertJobHooks& hooks = {});

// True for the exceptions run_convert throws when cancelled.
bool is_cancellation(const std::exception& e);

}  // namespace sdc::server::convert_jobs
