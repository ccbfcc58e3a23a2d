// HttpMiddleware: what every route shares, installed once on the httplib server — HTTP basic
// auth as A1111's --api-auth answers it, CORS headers and preflight answers for the allowed
// origins, JSON bodies for httplib's own errors (404, 413 for a body over the cap), the
// exception → status mapping, and an X-Process-Time header. Route families (native, OpenAI,
// A1111) only register handlers; they mark routes that need no auth with add_public_path.
#pragma once

#include <set>
#include <string>

#include "server/server_options.h"

namespace httplib {
class Server;
struct Request;
}  // namespace httplib

namespace sdc::server {

class HttpMiddleware {
 public:
  explicit HttpMiddleware(const ServerOptions& options);

  // A path (exact match) served without credentials, e.g. "/health", "/sdapi/v1/loras".
  void add_public_path(const std::string& path);
  // Sets the pre/post-routing, error and exception handlers and the body size cap.
  void install(httplib::Server& server);

  enum class AuthResult { Ok, NotAuthenticated, InvalidCredentials, Incorrect };
  // A1111's outcomes: no header or another scheme → NotAuthenticated ("Not authenticated");
  // undecodable base64 or no ':' → InvalidCredentials; a wrong pair → Incorrect. Always Ok when
  // no --api-auth is set (any Authorization header, even an empty one, is then ignored).
  AuthResult check_auth(const httplib::Request& req) const;
  bool auth_enabled() const { return !options_.api_auth.empty(); }
  bool origin_allowed(const std::string& origin) const;

 private:
  ServerOptions options_;
  std::set<std::string> public_paths_;
};

}  // namespace sdc::server
