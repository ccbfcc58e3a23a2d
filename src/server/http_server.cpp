// HttpServer: wiring the middleware and the route families onto httplib, bind, run, stop.
#include "server/http_server.h"

#include <httplib.h>

#include <sys/socket.h>

#include <chrono>
#include <csignal>
#include <thread>

#include "common/error.h"
#include "engine/engine.h"
#include "server/a1111/a1111_routes.h"
#include "server/routes.h"

namespace sdc::server {
namespace {

// httplib 0.11 listens with a backlog of 5: a burst of clients (50 at once in the tests, a page
// of thumbnails in a browser) would overflow it and see connections reset. This subclass only
// exposes the listening socket so that its backlog can be raised after bind.
class BacklogServer : public httplib::Server {
 public:
  void raise_backlog() {
    const auto fd = svr_sock_.load();
    if (fd != INVALID_SOCKET) ::listen(fd, SOMAXCONN);
  }
};

}  // namespace

HttpServer::HttpServer(engine::Engine& engine, ServerOptions options)
    : engine_(engine),
      options_(std::move(options)),
      http_(std::make_unique<BacklogServer>()),
      middleware_(options_) {
  // Blocking handlers (A1111 txt2img, OpenAI, ?wait=true) each hold a thread while their job
  // waits in the queue, so the pool must outnumber the queue, with room left for /health,
  // /progress and SSE streams while it is full.
  const int threads =
      options_.http_threads > 0 ? options_.http_threads : engine_.queue_capacity() + 1 + 24;
  http_->new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
  http_->set_keep_alive_timeout(5);
  http_->set_keep_alive_max_count(1000);  // pollers (/progress, /health) keep their connection
  http_->set_read_timeout(30);
  http_->set_write_timeout(30);
  middleware_.install(*http_);
  register_health_routes(*http_, engine_, options_, middleware_);
  register_job_routes(*http_, engine_, options_);
  register_openai_routes(*http_, engine_, options_);
  register_a1111_routes(*http_, engine_, options_, middleware_);
}

HttpServer::~HttpServer() {
  stop();
}

void HttpServer::bind() {
  // A client that hangs up while its reply is written must not kill the server: writes to a
  // closed socket then fail with EPIPE instead of raising SIGPIPE (httplib leaves this to us).
  std::signal(SIGPIPE, SIG_IGN);
  const std::string where = options_.host + ":" + std::to_string(options_.port);
  if (options_.port == 0) {
    port_ = http_->bind_to_any_port(options_.host);
    if (port_ < 0) throw Error("", "--host", "an address this machine can listen on", where);
  } else {
    if (options_.port < 0 || options_.port > 65535)
      throw UsageError("", "--port", "0..65535", std::to_string(options_.port));
    if (!http_->bind_to_port(options_.host, options_.port))
      throw Error("", "--port", "a free port on " + options_.host,
                  where + " (in use, or the address is not this machine's)");
    port_ = options_.port;
  }
  static_cast<BacklogServer&>(*http_).raise_backlog();
}

void HttpServer::run() {
  http_->listen_after_bind();
}

void HttpServer::stop() {
  if (http_) http_->stop();
}

}  // namespace sdc::server
