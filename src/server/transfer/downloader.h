// download(): fetches one model file from a URL into a folder the server owns, for "convert from a
// link". Built on libcurl, with the defences a URL from a request needs:
//   - https only unless the operator passes --allow-http; no other scheme, ever;
//   - every connection's resolved address judged (address_policy.h) right before connect, so a
//     host name that resolves to 127.0.0.1, the LAN or 169.254.169.254 — directly, after a
//     redirect, or by DNS rebinding — is refused unless --allow-private-downloads;
//   - redirects followed one hop at a time, each hop's scheme and address re-checked, the token
//     sent only to the URL's own host (a signed CDN link must not receive it);
//   - a size cap (from Content-Length up front, and counted while receiving), a connect timeout, a
//     total deadline and a stall timeout;
//   - a dropped or stalled connection resumed with a Range request (If-Range keeps a changed file
//     from being spliced), a bounded number of times;
//   - an HTML page where a model was expected refused in words (a login page, a model's web page);
//   - the token never logged, never in a message (URLs are shown redacted), never on a command
//     line (it travels in memory to libcurl's header list only);
//   - the body written to a hidden temporary file in the target folder and renamed to its final,
//     sanitised name (Content-Disposition, else the URL's last segment) only when complete.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "common/error.h"

namespace sdc::server::transfer {

struct DownloadPolicy {
  bool allow_http = false;     // --allow-http
  bool allow_private = false;  // --allow-private-downloads
  uint64_t max_bytes = uint64_t(16) << 30;
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(20)};
  std::chrono::milliseconds total_timeout{std::chrono::hours(6)};  // all attempts together
  std::chrono::seconds stall_timeout{60};  // no byte for this long: drop and resume
  int max_redirects = 10;
  int max_resumes = 5;
  std::chrono::milliseconds retry_delay{1000};  // before resume n: n × retry_delay
  // The judge of addresses when !allow_private; null means non_public_reason(). Tests substitute
  // one that exempts their own loopback server so that a redirect elsewhere is still judged.
  std::function<std::optional<std::string>(const sockaddr*, socklen_t)> address_judge;
};

struct DownloadRequest {
  std::string url;
  std::string token;     // optional: "Authorization: Bearer TOKEN" to the URL's own host
  std::string dest_dir;  // an existing folder; the file is created inside it
  std::string fallback_name = "download";  // when neither header nor URL names the file
};

struct DownloadProgress {
  uint64_t received = 0;
  std::optional<uint64_t> total;  // when the server said
  int resumes = 0;
};

struct DownloadHooks {
  std::function<void(const DownloadProgress&)> progress;  // called as bytes arrive
  std::function<bool()> cancelled;                        // polled often; true stops the transfer
  std::function<void(const std::string&)> log;            // redacted notes (redirects, resumes)
};

struct DownloadResult {
  std::string path;       // dest_dir/file_name
  std::string file_name;  // sanitised
  std::string final_url;  // redacted
  std::string content_type;
  uint64_t size = 0;
  int resumes = 0;
};

// The transfer was stopped because hooks.cancelled() returned true; nothing is left on disk.
class DownloadCancelled : public Error {
 public:
  explicit DownloadCancelled(const std::string& url);
};

// Downloads `req.url` (see the file comment). sdc::Error naming the redacted URL, what was
// expected and what was found for every refusal and failure; nothing is left in dest_dir then.
DownloadResult download(const DownloadRequest& req, const DownloadPolicy& policy,
                        const DownloadHooks& hooks = {});

}  // namespace sdc::server::transfer
