// ServerOptions: how `sdc serve` listens and what it lets a request ask for. Shared by every route
// family (native jobs, OpenAI images, the A1111 adapter) so that one limit means one thing.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace sdc::server {

// Caps on what one request may ask for; a value beyond them is a 422 naming the field.
struct RequestLimits {
  int max_steps = 150;              // A1111's UI slider maximum
  int max_batch_size = 8;           // images per UNet run
  int max_batch_count = 16;         // runs per request (A1111 n_iter)
  int max_images = 32;              // batch_size × batch_count
  int max_side = 2048;              // width and height (multiples of 8)
  size_t max_prompt_chars = 20000;  // prompt and negative prompt, each (UTF-8 bytes)
  int max_image_side = 4096;        // decoded init/control images, checked before allocating
};

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 7860;  // 0: any free port (tests)
  // --api-auth user:pass[,user:pass]: HTTP basic auth on every route but the public ones.
  std::vector<std::pair<std::string, std::string>> api_auth;
  // --cors-allow-origins a,b ("*" allows any origin): CORS headers and preflight answers.
  std::vector<std::string> cors_allow_origins;
  size_t max_body_bytes = size_t(64) << 20;  // larger bodies: 413
  int http_threads = 0;  // 0: enough for max_queue blocked callers plus polling clients
  RequestLimits limits;
  int sse_keepalive_s = 15;  // a comment line on idle SSE streams (and disconnect detection)
};

// Parses "user:pass[,user:pass…]" (a password may not contain ',' — A1111's format). Throws
// sdc::UsageError naming --api-auth for an empty user or a pair without ':'.
std::vector<std::pair<std::string, std::string>> parse_api_auth(const std::string& text);
// Splits "a,b,c" (spaces around names trimmed, empty names dropped).
std::vector<std::string> split_list(const std::string& text);

// True for 127.0.0.0/8, ::1 and "localhost": binding elsewhere without --api-auth is warned about.
bool is_loopback_host(const std::string& host);

}  // namespace sdc::server
