// A real `sdc serve` stack for HTTP tests: a models folder of links to the tiny fixture model
// (and its kohya LoRA), an engine and an HttpServer on 127.0.0.1 with an ephemeral port, served
// from a background thread and stopped (jobs cancelled, port released) by the destructor.
#pragma once

#include <httplib.h>

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "common/fixtures.h"
#include "engine/engine.h"
#include "server/http_server.h"

namespace sdc::test {

// models/tiny.safetensors → tiny-sd15/model.safetensors, models/lora/kohya.safetensors.
void make_models_dir(const std::string& dir);
engine::EngineOptions tiny_engine_options(const TempDir& dir);

class TestServer {
 public:
  // `tweak` adjusts the engine options (queue size, …) before the engine starts.
  explicit TestServer(server::ServerOptions server_options = {},
                      const std::function<void(engine::EngineOptions&)>& tweak = {});
  ~TestServer();
  int port() const { return http_->port(); }
  httplib::Client client() const;
  engine::Engine& engine() { return *engine_; }
  const TempDir& dir() const { return dir_; }

 private:
  TempDir dir_;
  std::unique_ptr<engine::Engine> engine_;
  std::unique_ptr<server::HttpServer> http_;
  std::thread thread_;
};

// A small, fast native job body (64×64, `steps` steps) as JSON text.
std::string tiny_job(int steps = 2, int seed = 7, const std::string& extra = "");

}  // namespace sdc::test
