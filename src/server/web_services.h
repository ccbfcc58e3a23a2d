// WebServices: what `sdc serve` adds for the web page and conversion over HTTP — the server-file
// browser (/v1/files), the upload store (/v1/uploads), convert jobs (POST /v1/jobs with
// "type": "convert", run in the engine's one queue), the Models page's POST /v1/models/load,
// POST /v1/models/unload and GET /v1/models/loaded (+ the current model), the ControlNet hint
// preview POST /v1/preprocess/canny, and the page itself at
// "/". It owns the browser, the store and the convert context; jobs hold it through a shared_ptr so
// a convert that is still running keeps what it uses alive.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "engine/engine.h"
#include "server/convert/convert_job.h"
#include "server/server_options.h"
#include "server/transfer/transfer_options.h"

namespace httplib {
class Server;
}

namespace sdc::server {

class WebServices : public std::enable_shared_from_this<WebServices> {
 public:
  // sdc::Error for folders that do not exist (--imports-dir) or cannot be created (uploads).
  WebServices(engine::Engine& engine, const ServerOptions& options);

  // The routes of the file comment (convert jobs are submitted through POST /v1/jobs, see
  // job_request()).
  void register_routes(httplib::Server& http);

  // For POST /v1/jobs: a convert job when `body` is a JSON object with "type": "convert",
  // nothing otherwise (a generation). Throws what prepare_convert throws.
  std::optional<engine::JobRequest> job_request(const std::string& body);

  const convert_jobs::ConvertContext& convert_context() const { return ctx_; }

 private:
  nlohmann::json run_convert_job(engine::Job& job, const convert_jobs::PreparedConvert& p);

  engine::Engine& engine_;
  transfer::TransferOptions options_;
  RequestLimits limits_;
  std::unique_ptr<transfer::FileBrowser> files_;
  std::unique_ptr<transfer::UploadStore> uploads_;
  convert_jobs::ConvertContext ctx_;
};

}  // namespace sdc::server
