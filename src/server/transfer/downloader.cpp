// download() on libcurl's easy interface, one request per redirect hop and per resume attempt.
#include "server/transfer/downloader.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "server/transfer/address_policy.h"
#include "server/transfer/file_names.h"

namespace sdc::server::transfer {

DownloadCancelled::DownloadCancelled(const std::string& url)
    : Error(url, "download", "", "cancelled") {}

namespace {

using Clock = std::chrono::steady_clock;

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

struct ParsedUrl {
  std::string scheme, host;
};

// Scheme and host through libcurl's own parser, so that what is checked is what curl will use.
ParsedUrl parse_url(const std::string& url, const std::string& shown) {
  std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> u(curl_url(), curl_url_cleanup);
  if (!u || curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK)
    throw Error(shown, "url", "an absolute http(s) URL", "a string curl cannot parse");
  ParsedUrl p;
  char* part = nullptr;
  if (curl_url_get(u.get(), CURLUPART_SCHEME, &part, 0) == CURLUE_OK) {
    p.scheme = lower(part);
    curl_free(part);
  }
  if (curl_url_get(u.get(), CURLUPART_HOST, &part, 0) == CURLUE_OK) {
    p.host = lower(part);
    curl_free(part);
  }
  return p;
}

// The scheme first (a file:// URL has no host, and "found file" is the clearer message).
void check_scheme(const ParsedUrl& p, const DownloadPolicy& policy, const std::string& shown) {
  if (p.scheme == "http" && !policy.allow_http)
    throw Error(shown, "scheme", "https (start the server with --allow-http to allow http)",
                "http");
  if (p.scheme != "https" && p.scheme != "http")
    throw Error(shown, "scheme", "https", p.scheme.empty() ? "none" : p.scheme);
  if (p.host.empty()) throw Error(shown, "url", "a host name", "none");
}

// A temporary file that removes itself unless released.
class TempFile {
 public:
  explicit TempFile(const std::string& dir) {
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec))
      throw Error(dir, "download folder", "an existing directory", "none");
    std::string tmpl = dir + "/.sdc-download-XXXXXX.part";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    fd_ = mkstemps(buf.data(), 5);
    if (fd_ < 0) throw Error(dir, "download folder", "a writable directory", std::strerror(errno));
    path_ = buf.data();
    fchmod(fd_, 0644);
  }
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  void truncate() {
    if (::ftruncate(fd_, 0) != 0 || ::lseek(fd_, 0, SEEK_SET) != 0)
      throw Error(path_, "truncate", "success", std::strerror(errno));
  }
  void write(const char* p, size_t n) {
    while (n > 0) {
      ssize_t w = ::write(fd_, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) throw Error(path_, "write", "all bytes written", std::strerror(errno));
      p += w;
      n -= size_t(w);
    }
  }
  void finish() {
    if (::fsync(fd_) != 0) throw Error(path_, "fsync", "success", std::strerror(errno));
    ::close(fd_);
    fd_ = -1;
  }
  void release() { path_.clear(); }

 private:
  int fd_ = -1;
  std::string path_;
};

// State of one HTTP request (one hop or one resume attempt).
struct Exchange {
  // inputs
  const DownloadPolicy* policy = nullptr;
  const DownloadHooks* hooks = nullptr;
  TempFile* file = nullptr;
  std::string shown_url;
  uint64_t offset = 0;  // bytes already on disk when this request started
  DownloadProgress* progress = nullptr;
  // results
  long status = 0;
  std::map<std::string, std::string> headers;  // lower-case names, last value wins
  bool body_started = false, is_body = false;  // is_body: a 2xx whose bytes go to the file
  bool restarted = false;                      // 200 to a Range request: file truncated
  uint64_t received = 0;                       // body bytes of this request
  std::optional<uint64_t> total;
  std::string head;        // the first bytes, to recognise an HTML page
  std::string error_body;  // the first bytes of a non-2xx body, for the message
  std::optional<Error> abort_error;
  std::optional<std::string> refused;  // "host → address (reason)"
  std::string connecting_host;
};

bool looks_like_html(const std::string& head) {
  size_t b = head.find_first_not_of(" \t\r\n\xEF\xBB\xBF");
  if (b == std::string::npos) return false;
  std::string start = lower(head.substr(b, 15));
  return start.rfind("<!doctype html", 0) == 0 || start.rfind("<html", 0) == 0 ||
         start.rfind("<head", 0) == 0 || start.rfind("<!--", 0) == 0;
}

void check_not_html(Exchange& x) {
  std::string type = x.headers.count("content-type") ? lower(x.headers["content-type"]) : "";
  bool html_type = type.rfind("text/html", 0) == 0 || type.rfind("application/xhtml", 0) == 0;
  if (html_type || looks_like_html(x.head))
    x.abort_error = Error(
        x.shown_url, "content", "a model file (.safetensors, .ckpt, .gguf …)",
        std::string("an HTML page") + (html_type ? " (Content-Type " + type + ")" : "") +
            ": the link leads to a web page, not to the file — use the site's download link, and "
            "a token if the site needs one");
}

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto& x = *static_cast<Exchange*>(user);
  std::string line(data, size * n);
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.pop_back();
  if (line.rfind("HTTP/", 0) == 0) {  // a new status line (after 100 Continue, say)
    x.headers.clear();
    size_t sp = line.find(' ');
    x.status = sp == std::string::npos ? 0 : std::atol(line.c_str() + sp + 1);
  } else if (size_t colon = line.find(':'); colon != std::string::npos) {
    std::string value = line.substr(colon + 1);
    size_t b = value.find_first_not_of(" \t");
    x.headers[lower(line.substr(0, colon))] = b == std::string::npos ? "" : value.substr(b);
  }
  return size * n;
}

std::optional<uint64_t> parse_u64(const std::string& s) {
  if (s.empty() || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  errno = 0;
  unsigned long long v = std::strtoull(s.c_str(), nullptr, 10);
  if (errno == ERANGE) return std::nullopt;
  return uint64_t(v);
}

// First body bytes of a 2xx: decides where they go and checks size and range.
void start_body(Exchange& x) {
  x.body_started = true;
  x.is_body = x.status >= 200 && x.status < 300;
  if (!x.is_body) return;
  const DownloadPolicy& policy = *x.policy;
  std::optional<uint64_t> length;
  if (x.headers.count("content-length")) length = parse_u64(x.headers["content-length"]);
  if (x.status == 206) {
    // "bytes START-END/TOTAL": START must be where our file ends.
    const std::string cr = x.headers.count("content-range") ? x.headers["content-range"] : "";
    uint64_t start = 0;
    std::optional<uint64_t> total;
    if (cr.rfind("bytes ", 0) == 0) {
      size_t dash = cr.find('-'), slash = cr.find('/');
      if (dash != std::string::npos && slash != std::string::npos && dash < slash) {
        start = parse_u64(cr.substr(6, dash - 6)).value_or(UINT64_MAX);
        total = parse_u64(cr.substr(slash + 1));
      }
    }
    if (start != x.offset) {
      x.abort_error = Error(x.shown_url, "Content-Range", "bytes " + std::to_string(x.offset) + "-",
                            cr.empty() ? "none" : cr);
      return;
    }
    x.total = total;
  } else {
    if (x.offset > 0) {  // the server ignored our Range (or the file changed): start over
      x.file->truncate();
      x.offset = 0;
      x.restarted = true;
    }
    x.total = length;
  }
  if (x.total && *x.total > policy.max_bytes)
    x.abort_error =
        Error(x.shown_url, "size",
              "at most " + std::to_string(policy.max_bytes) + " bytes (--max-download-size)",
              std::to_string(*x.total) + " bytes");
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto& x = *static_cast<Exchange*>(user);
  const size_t len = size * n;
  try {
    if (!x.body_started) start_body(x);
    if (x.abort_error) return 0;
    if (!x.is_body) {  // a redirect's or an error's body: keep a little for the message
      if (x.error_body.size() < 300) x.error_body.append(data, std::min<size_t>(len, 300));
      return len;
    }
    if (x.offset == 0 && x.head.size() < 512) {
      bool was_short = x.head.size() < 64;
      x.head.append(data, std::min(len, 512 - x.head.size()));
      if (was_short && x.head.size() >= 64) check_not_html(x);
      if (x.abort_error) return 0;
    }
    if (x.offset + x.received + len > x.policy->max_bytes) {
      x.abort_error =
          Error(x.shown_url, "size",
                "at most " + std::to_string(x.policy->max_bytes) + " bytes (--max-download-size)",
                "more was sent");
      return 0;
    }
    x.file->write(data, len);
    x.received += len;
    x.progress->received = x.offset + x.received;
    x.progress->total = x.total;
    if (x.hooks->progress) x.hooks->progress(*x.progress);
  } catch (const Error& e) {
    x.abort_error = e;
    return 0;
  }
  return len;
}

int on_xfer(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto& x = *static_cast<Exchange*>(user);
  return x.hooks->cancelled && x.hooks->cancelled() ? 1 : 0;
}

curl_socket_t on_open_socket(void* user, curlsocktype purpose, curl_sockaddr* a) {
  auto& x = *static_cast<Exchange*>(user);
  if (purpose == CURLSOCKTYPE_IPCXN && !x.policy->allow_private) {
    const auto* sa = reinterpret_cast<const sockaddr*>(&a->addr);
    std::optional<std::string> why = x.policy->address_judge
                                         ? x.policy->address_judge(sa, a->addrlen)
                                         : non_public_reason(sa, a->addrlen);
    if (why) {
      x.refused = x.connecting_host + " → " + address_text(sa, a->addrlen) + " (" + *why + ")";
      return CURL_SOCKET_BAD;
    }
  }
  return ::socket(a->family, a->socktype, a->protocol);
}

std::string one_line(std::string s) {
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  if (s.size() > 200) s = s.substr(0, 200) + "…";
  return s;
}

std::string status_text(long status) {
  switch (status) {
    case 401:
      return "401 Unauthorized: the site wants a token (or the token is wrong)";
    case 403:
      return "403 Forbidden: the site refused access (a token may be needed, or the file is gated)";
    case 404:
      return "404 Not Found: no file at this address";
    case 410:
      return "410 Gone: the file was removed";
    case 429:
      return "429 Too Many Requests: the site is rate-limiting; try again later";
    default:
      return std::to_string(status);
  }
}

std::string seconds_text(std::chrono::milliseconds ms) {
  char buf[32];
  if (ms.count() % 1000 == 0)
    std::snprintf(buf, sizeof(buf), "%lld s", static_cast<long long>(ms.count() / 1000));
  else
    std::snprintf(buf, sizeof(buf), "%.1f s", double(ms.count()) / 1000.0);
  return buf;
}

using CurlPtr = std::unique_ptr<CURL, decltype(&curl_easy_cleanup)>;
using SlistPtr = std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)>;

}  // namespace

DownloadResult download(const DownloadRequest& req, const DownloadPolicy& policy,
                        const DownloadHooks& hooks) {
  global_init();
  const std::string shown = redact_url(req.url);
  const ParsedUrl origin = parse_url(req.url, shown);
  check_scheme(origin, policy, shown);
  auto log = [&](const std::string& m) {
    if (hooks.log) hooks.log(m);
  };
  auto cancelled = [&] { return hooks.cancelled && hooks.cancelled(); };

  TempFile file(req.dest_dir);
  const Clock::time_point deadline = Clock::now() + policy.total_timeout;
  DownloadProgress progress;
  uint64_t offset = 0;
  std::string validator;  // ETag or Last-Modified of the first response, for If-Range
  std::string body_url, disposition, content_type;  // of the response the bytes came from
  char errbuf[CURL_ERROR_SIZE];

  for (;;) {  // one iteration per attempt (the first, then each resume)
    std::string url = req.url;
    Exchange x;
    bool done = false;
    for (int hop = 0;; ++hop) {
      if (cancelled()) throw DownloadCancelled(shown);
      const std::string hop_shown = redact_url(url);
      const ParsedUrl here = parse_url(url, hop_shown);
      check_scheme(here, policy, hop_shown);
      auto remaining =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (remaining.count() <= 0) break;  // reported below as a timeout

      x = Exchange{};
      x.policy = &policy;
      x.hooks = &hooks;
      x.file = &file;
      x.shown_url = hop_shown;
      x.offset = offset;
      x.progress = &progress;
      x.connecting_host = here.host;

      CurlPtr curl(curl_easy_init(), curl_easy_cleanup);
      if (!curl) throw Error(shown, "download", "a libcurl handle", "none (out of memory)");
      CURL* c = curl.get();
      errbuf[0] = '\0';
      curl_easy_setopt(c, CURLOPT_URL, url.c_str());
      curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, policy.allow_http ? "http,https" : "https");
      curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
      curl_easy_setopt(c, CURLOPT_PROXY, "");  // a proxy would hide the address we must judge
      curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
      curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
      curl_easy_setopt(c, CURLOPT_USERAGENT, "sdc");
      curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, long(policy.connect_timeout.count()));
      curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, long(remaining.count()));
      curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
      curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME,
                       long(std::max<int64_t>(1, policy.stall_timeout.count())));
      curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
      curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);
      curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
      curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
      curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
      curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_xfer);
      curl_easy_setopt(c, CURLOPT_XFERINFODATA, &x);
      curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
      curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &x);
      std::vector<std::string> lines;
      // The token goes only to the host the user gave it for (never to a CDN a redirect names).
      if (!req.token.empty() && here.host == origin.host)
        lines.push_back("Authorization: Bearer " + req.token);
      if (offset > 0) {
        lines.push_back("Range: bytes=" + std::to_string(offset) + "-");
        if (!validator.empty()) lines.push_back("If-Range: " + validator);
      }
      SlistPtr header_list(nullptr, curl_slist_free_all);
      for (const std::string& l : lines) {
        curl_slist* next = curl_slist_append(header_list.get(), l.c_str());
        if (!next) throw Error(shown, "download", "memory for request headers", "none");
        header_list.release();
        header_list.reset(next);
      }
      if (header_list) curl_easy_setopt(c, CURLOPT_HTTPHEADER, header_list.get());

      const CURLcode rc = curl_easy_perform(c);
      for (std::string& l : lines) std::fill(l.begin(), l.end(), '\0');  // no token left in memory

      if (x.refused)
        throw Error(hop_shown, "address",
                    "a public address (start the server with --allow-private-downloads to allow "
                    "local and private ones)",
                    *x.refused);
      if (x.abort_error) throw *x.abort_error;
      if (rc == CURLE_ABORTED_BY_CALLBACK && cancelled()) throw DownloadCancelled(shown);
      if (rc == CURLE_OK && x.is_body && offset == 0 && x.head.size() < 64) {
        check_not_html(x);  // a short body never reached the in-flight check
        if (x.abort_error) throw *x.abort_error;
      }
      if (rc == CURLE_OK && x.status >= 300 && x.status < 400 && x.status != 304) {
        char* location = nullptr;
        curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &location);
        if (!location)
          throw Error(hop_shown, "redirect", "a Location header",
                      "HTTP " + std::to_string(x.status) + " without one");
        if (hop + 1 > policy.max_redirects)
          throw Error(shown, "redirects", "at most " + std::to_string(policy.max_redirects),
                      "more");
        url = location;
        log("download: redirected to " + redact_url(url));
        continue;
      }
      if (rc == CURLE_OK && x.status == 416 && offset > 0 && progress.total &&
          offset == *progress.total) {
        done = true;  // everything had arrived before the connection dropped
        break;
      }
      if (rc == CURLE_OK && (x.status < 200 || x.status >= 300)) {
        std::string found = "HTTP " + status_text(x.status);
        if (!x.error_body.empty() && !looks_like_html(x.error_body))
          found += " — " + one_line(x.error_body);
        throw Error(hop_shown, "response", "200 OK and the file", found);
      }
      // A 2xx that ended (completely or not), or a transport failure.
      if (x.is_body) {
        body_url = url;
        if (x.headers.count("content-disposition")) disposition = x.headers["content-disposition"];
        if (x.headers.count("content-type")) content_type = x.headers["content-type"];
        if (x.restarted) {
          offset = 0;
          log("download: the server does not resume; starting over");
        }
        if (validator.empty()) {
          if (x.headers.count("etag") && x.headers["etag"].rfind("W/", 0) != 0)
            validator = x.headers["etag"];
          else if (x.headers.count("last-modified"))
            validator = x.headers["last-modified"];
        }
        if (!progress.total && x.total) progress.total = x.total;
        offset += x.received;
      }
      if (rc == CURLE_OK) {
        if (progress.total && offset != *progress.total) break;  // short body: resume
        done = true;
        break;
      }
      // Transport failures that a new connection cannot fix are reported now.
      const bool dropped = rc == CURLE_PARTIAL_FILE || rc == CURLE_RECV_ERROR ||
                           rc == CURLE_SEND_ERROR || rc == CURLE_GOT_NOTHING || rc == CURLE_HTTP2 ||
                           rc == CURLE_HTTP2_STREAM ||
                           (rc == CURLE_OPERATION_TIMEDOUT && x.body_started);
      if (rc == CURLE_OPERATION_TIMEDOUT && Clock::now() >= deadline) break;
      if (!dropped) {
        std::string what = errbuf[0] ? errbuf : curl_easy_strerror(rc);
        if (rc == CURLE_OPERATION_TIMEDOUT)
          throw Error(hop_shown, "connection", "a response within the timeouts", "none: " + what);
        throw Error(hop_shown, "connection", "a successful transfer", what);
      }
      log("download: connection lost at " + std::to_string(offset) + " bytes (" +
          (errbuf[0] ? std::string(errbuf) : std::string(curl_easy_strerror(rc))) + ")");
      break;
    }
    if (done) {
      file.finish();
      break;
    }
    if (Clock::now() >= deadline)
      throw Error(shown, "timeout", "the whole file within " + seconds_text(policy.total_timeout),
                  std::to_string(offset) + " bytes received");
    if (progress.resumes >= policy.max_resumes)
      throw Error(shown, "connection",
                  "the whole file within " + std::to_string(policy.max_resumes) + " resumes",
                  std::to_string(offset) + " bytes received before the connection kept dropping");
    ++progress.resumes;
    // Wait before resuming, but stay responsive to cancel.
    const Clock::time_point resume_at =
        std::min(deadline, Clock::now() + policy.retry_delay * progress.resumes);
    while (Clock::now() < resume_at) {
      if (cancelled()) throw DownloadCancelled(shown);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    log("download: resuming from byte " + std::to_string(offset) + " (attempt " +
        std::to_string(progress.resumes + 1) + ")");
  }

  // Name: Content-Disposition of the final response, else the final URL's last segment.
  std::string name = content_disposition_file_name(disposition).value_or(url_file_name(body_url));
  name = sanitize_file_name(name, req.fallback_name);
  DownloadResult result;
  result.size = offset;
  result.resumes = progress.resumes;
  result.final_url = redact_url(body_url);
  result.content_type = content_type;
  // Never replace a file already there: "name.ext", then "name-1.ext", "name-2.ext", …
  const std::filesystem::path stem = std::filesystem::path(name).stem();
  const std::string ext = std::filesystem::path(name).extension().string();
  for (int n = 0;; ++n) {
    result.file_name = n == 0 ? name : stem.string() + "-" + std::to_string(n) + ext;
    result.path = (std::filesystem::path(req.dest_dir) / result.file_name).string();
    if (::renameat2(AT_FDCWD, file.path().c_str(), AT_FDCWD, result.path.c_str(),
                    RENAME_NOREPLACE) == 0)
      break;
    if (errno != EEXIST || n > 1000)
      throw Error(result.path, "rename", "success", std::strerror(errno));
  }
  file.release();
  return result;
}

}  // namespace sdc::server::transfer
