// HttpServer: `sdc serve`'s HTTP front — an httplib server with the shared middleware and every
// route family (health/metrics, native jobs, OpenAI images, the A1111 adapter) on one engine.
// bind() then run() (blocking) on one thread; stop() from any other (the signal watcher) makes
// run() return once in-flight requests have finished. The engine's jobs are cancelled first by
// the caller (Engine::shutdown) so that blocked handlers return promptly.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "server/http_middleware.h"
#include "server/server_options.h"

namespace httplib {
class Server;
}

namespace sdc::engine {
class Engine;
}

namespace sdc::server {

class HttpServer {
 public:
  HttpServer(engine::Engine& engine, ServerOptions options);
  ~HttpServer();

  // Binds host:port (port 0: any free one). Throws sdc::Error naming the address when it is in
  // use or cannot be bound.
  void bind();
  int port() const { return port_; }
  void run();   // serves until stop(); returns with the port released
  void stop();  // thread-safe, idempotent; also before or while run() starts; returns after run()

  httplib::Server& http() { return *http_; }
  HttpMiddleware& middleware() { return middleware_; }

 private:
  engine::Engine& engine_;
  ServerOptions options_;
  std::unique_ptr<httplib::Server> http_;
  HttpMiddleware middleware_;
  int port_ = -1;
  std::atomic<bool> running_{false}, stop_requested_{false};
};

}  // namespace sdc::server
