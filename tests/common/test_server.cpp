// TestServer: the in-process server used by the HTTP tests.
#include "common/test_server.h"

#include <filesystem>

namespace sdc::test {
namespace fs = std::filesystem;

void make_models_dir(const std::string& dir) {
  fs::create_directories(fs::path(dir) / "lora");
  fs::create_symlink(tiny("model.safetensors"), fs::path(dir) / "tiny.safetensors");
  fs::create_symlink(tiny("lora-kohya.safetensors"), fs::path(dir) / "lora" / "kohya.safetensors");
}

engine::EngineOptions tiny_engine_options(const TempDir& dir) {
  engine::EngineOptions o;
  make_models_dir(dir.file("models"));
  o.registry.models_dir = dir.file("models");
  o.registry.model_config = tiny("diffusers");
  o.outputs_dir = dir.file("outputs");
  o.settings_file = dir.file("settings.json");
  o.threads = 1;
  o.precision = "f32";
  return o;
}

TestServer::TestServer(server::ServerOptions server_options,
                       const std::function<void(engine::EngineOptions&)>& tweak) {
  engine::EngineOptions o = tiny_engine_options(dir_);
  if (tweak) tweak(o);
  server_options.host = "127.0.0.1";
  server_options.port = 0;
  engine_ = std::make_unique<engine::Engine>(o);
  http_ = std::make_unique<server::HttpServer>(*engine_, server_options);
  http_->bind();
  thread_ = std::thread([this] { http_->run(); });
}

TestServer::~TestServer() {
  engine_->shutdown(true);
  http_->stop();
  thread_.join();
}

httplib::Client TestServer::client() const {
  httplib::Client c("127.0.0.1", port());
  c.set_read_timeout(120);
  c.set_connection_timeout(10);
  return c;
}

std::string tiny_job(int steps, int seed, const std::string& extra) {
  return R"({"prompt":"a red fox","width":64,"height":64,"steps":)" + std::to_string(steps) +
         R"(,"seed":)" + std::to_string(seed) + (extra.empty() ? "" : "," + extra) + "}";
}

}  // namespace sdc::test
