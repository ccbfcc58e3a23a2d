// Auth, CORS and error bodies for every route.
#include "server/http_middleware.h"

#include <httplib.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <cctype>
#include <chrono>

#include "server/base64.h"
#include "server/json_response.h"

namespace sdc::server {
namespace {

// Constant-time comparison of credentials (as A1111's compare_digest), lengths aside.
bool same_secret(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

thread_local std::chrono::steady_clock::time_point request_start;

}  // namespace

HttpMiddleware::HttpMiddleware(const ServerOptions& options) : options_(options) {}

void HttpMiddleware::add_public_path(const std::string& path) {
  public_paths_.insert(path);
}

bool HttpMiddleware::origin_allowed(const std::string& origin) const {
  for (const auto& o : options_.cors_allow_origins)
    if (o == "*" || o == origin) return true;
  return false;
}

HttpMiddleware::AuthResult HttpMiddleware::check_auth(const httplib::Request& req) const {
  if (!auth_enabled()) return AuthResult::Ok;
  // "Basic <base64>"; the value may be empty ("Basic", as SillyTavern sends without auth).
  const std::string header = req.get_header_value("Authorization");
  const size_t space = header.find(' ');
  std::string scheme = header.substr(0, space);
  std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  if (header.empty() || scheme != "basic") return AuthResult::NotAuthenticated;
  std::string value = space == std::string::npos ? "" : header.substr(space + 1);
  while (!value.empty() && value.front() == ' ') value.erase(value.begin());
  const auto decoded = base64_decode(value, 4096);
  if (!decoded || value.empty()) return AuthResult::InvalidCredentials;
  const size_t colon = decoded->find(':');
  if (colon == std::string::npos) return AuthResult::InvalidCredentials;
  const std::string user = decoded->substr(0, colon), pass = decoded->substr(colon + 1);
  bool ok = false;
  for (const auto& [u, p] : options_.api_auth) {
    // Both compared on every entry: no early exit on the user name or on the first match.
    const bool user_ok = same_secret(user, u), pass_ok = same_secret(pass, p);
    ok |= user_ok && pass_ok;
  }
  return ok ? AuthResult::Ok : AuthResult::Incorrect;
}

void HttpMiddleware::install(httplib::Server& server) {
  server.set_payload_max_length(options_.max_body_bytes);

  server.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    request_start = std::chrono::steady_clock::now();
    // CORS preflight: answered before auth (browsers send no credentials with it).
    const std::string origin = req.get_header_value("Origin");
    if (req.method == "OPTIONS" && !origin.empty() &&
        req.has_header("Access-Control-Request-Method") && !options_.cors_allow_origins.empty()) {
      if (!origin_allowed(origin)) {
        res.status = 400;
        res.set_content("Disallowed CORS origin", "text/plain");
        return httplib::Server::HandlerResponse::Handled;
      }
      res.status = 200;
      res.set_header("Access-Control-Allow-Methods",
                     "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT");
      const std::string asked = req.get_header_value("Access-Control-Request-Headers");
      if (!asked.empty()) res.set_header("Access-Control-Allow-Headers", asked);
      res.set_header("Access-Control-Max-Age", "600");
      res.set_content("OK", "text/plain");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (public_paths_.count(req.path)) return httplib::Server::HandlerResponse::Unhandled;
    switch (check_auth(req)) {
      case AuthResult::Ok:
        return httplib::Server::HandlerResponse::Unhandled;
      case AuthResult::NotAuthenticated:
        send_error(res, 401, "HTTPException", "Not authenticated");
        break;
      case AuthResult::InvalidCredentials:
        send_error(res, 401, "HTTPException", "Invalid authentication credentials");
        break;
      case AuthResult::Incorrect:
        send_error(res, 401, "HTTPException", "Incorrect username or password");
        break;
    }
    return httplib::Server::HandlerResponse::Handled;
  });

  server.set_post_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - request_start).count();
    res.set_header("X-Process-Time", std::to_string(s));
    const std::string origin = req.get_header_value("Origin");
    if (!origin.empty() && origin_allowed(origin)) {
      res.set_header("Access-Control-Allow-Origin", origin);
      res.set_header("Access-Control-Allow-Credentials", "true");
      res.set_header("Vary", "Origin");
    }
  });

  server.set_error_handler([this](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty() || res.content_length_ > 0) return;
    switch (res.status) {
      case 404:
        send_json(res, 404, {{"detail", "Not Found"}});
        break;
      case 405:
        send_json(res, 405, {{"detail", "Method Not Allowed"}});
        break;
      case 413:
        send_error(
            res, 413, "PayloadTooLarge",
            "request body larger than " + std::to_string(options_.max_body_bytes) + " bytes");
        break;
      default:
        send_json(res, res.status, {{"detail", "HTTP error " + std::to_string(res.status)}});
    }
  });

  server.set_exception_handler([](const httplib::Request&, httplib::Response& res,
                                  std::exception_ptr e) { send_exception(res, e); });
}

}  // namespace sdc::server
