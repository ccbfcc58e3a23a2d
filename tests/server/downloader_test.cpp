// download() against a loopback httplib server: success with name and progress, the address
// policy (direct, after a redirect, the metadata address), schemes, size caps, timeouts, resume
// after a dropped connection, a changed file, HTML instead of a model, HTTP errors, the token
// kept to its own host and out of messages, cancel — and nothing left behind after a failure.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "common/fixtures.h"
#include "server/loopback_server.h"
#include "server/transfer/address_policy.h"
#include "server/transfer/downloader.h"

namespace sdc::server::transfer {
namespace {

using test::LoopbackServer;
using test::TempDir;

std::string payload(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = char((i * 131 + 7) & 0xff);
  s[0] = 'P';  // not '<': never mistaken for HTML
  return s;
}

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// Loopback allowed (it is the test server), every other non-public address still refused.
DownloadPolicy test_policy() {
  DownloadPolicy p;
  p.allow_http = true;
  p.connect_timeout = std::chrono::seconds(5);
  p.total_timeout = std::chrono::seconds(30);
  p.retry_delay = std::chrono::milliseconds(10);
  p.address_judge = [](const sockaddr* a, socklen_t len) -> std::optional<std::string> {
    if (address_text(a, len) == "127.0.0.1") return std::nullopt;
    return non_public_reason(a, len);
  };
  return p;
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(AddressPolicy, RefusesNonPublicRanges) {
  EXPECT_EQ(non_public_reason("127.0.0.1").value_or(""), "loopback");
  EXPECT_EQ(non_public_reason("127.9.9.9").value_or(""), "loopback");
  EXPECT_EQ(non_public_reason("::1").value_or(""), "loopback");
  EXPECT_EQ(non_public_reason("10.1.2.3").value_or(""), "private");
  EXPECT_EQ(non_public_reason("172.31.255.255").value_or(""), "private");
  EXPECT_EQ(non_public_reason("192.168.0.1").value_or(""), "private");
  EXPECT_EQ(non_public_reason("169.254.1.1").value_or(""), "link-local");
  EXPECT_EQ(non_public_reason("169.254.169.254").value_or(""), "the cloud metadata service");
  EXPECT_EQ(non_public_reason("fd00:ec2::254").value_or(""), "the cloud metadata service");
  EXPECT_EQ(non_public_reason("fe80::1").value_or(""), "link-local");
  EXPECT_EQ(non_public_reason("fc12::1").value_or(""), "private (unique local)");
  EXPECT_EQ(non_public_reason("::ffff:127.0.0.1").value_or(""), "loopback");
  EXPECT_EQ(non_public_reason("::ffff:10.0.0.1").value_or(""), "private");
  EXPECT_EQ(non_public_reason("64:ff9b::a9fe:a9fe").value_or(""), "the cloud metadata service");
  EXPECT_EQ(non_public_reason("0.0.0.0").value_or(""), "unspecified (\"this network\")");
  EXPECT_EQ(non_public_reason("::").value_or(""), "unspecified");
  EXPECT_EQ(non_public_reason("224.0.0.1").value_or(""), "multicast");
  EXPECT_EQ(non_public_reason("255.255.255.255").value_or(""), "reserved");
  EXPECT_EQ(non_public_reason("100.64.0.1").value_or(""), "private (carrier-grade NAT)");
  EXPECT_EQ(non_public_reason("not-an-ip").value_or(""), "not an IP address");
  EXPECT_FALSE(non_public_reason("8.8.8.8"));
  EXPECT_FALSE(non_public_reason("172.32.0.1"));
  EXPECT_FALSE(non_public_reason("2606:4700::1111"));
  EXPECT_FALSE(non_public_reason("::ffff:8.8.8.8"));
}

class DownloaderTest : public ::testing::Test {
 protected:
  // Declared before the server so that they outlive it: its handler threads may still be
  // sending `body` while the fixture is torn down (the server is destroyed, and joined, first).
  std::string body = payload(300000);
  TempDir dir;
  LoopbackServer server;
};

TEST_F(DownloaderTest, DownloadsWithNameFromContentDispositionAndReportsProgress) {
  server.http().Get("/files/abc", [&](const httplib::Request&, httplib::Response& res) {
    res.set_header(
        "Content-Disposition",
        "attachment; filename=\"fallback.bin\"; filename*=UTF-8''my%20model.safetensors");
    res.set_content(body, "application/octet-stream");
  });
  server.start();
  std::vector<uint64_t> seen;
  DownloadHooks hooks;
  hooks.progress = [&](const DownloadProgress& p) {
    seen.push_back(p.received);
    EXPECT_EQ(p.total.value_or(0), body.size());
  };
  DownloadResult r = download({server.url("/files/abc"), "", dir.path()}, test_policy(), hooks);
  EXPECT_EQ(r.file_name, "my model.safetensors");
  EXPECT_EQ(r.size, body.size());
  EXPECT_EQ(read_all(r.path), body);
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back(), body.size());
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_EQ(dir.list(), std::vector<std::string>{"my model.safetensors"});
}

TEST_F(DownloaderTest, NameFromUrlIsSanitisedAndNeverReplacesAFile) {
  server.http().Get(R"(/d/(.*))", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(body, "application/octet-stream");
  });
  server.http().Get("/evil", [&](const httplib::Request&, httplib::Response& res) {
    res.set_header("Content-Disposition", "attachment; filename=\"../../etc/passwd\"");
    res.set_content(body, "application/octet-stream");
  });
  server.start();
  DownloadResult a =
      download({server.url("/d/x%2Fy.ckpt?download=true"), "", dir.path()}, test_policy());
  EXPECT_EQ(a.file_name, "y.ckpt");  // "%2F" decodes to '/', a separator
  DownloadResult b = download({server.url("/d/y.ckpt"), "", dir.path()}, test_policy());
  EXPECT_EQ(b.file_name, "y-1.ckpt");
  DownloadResult c = download({server.url("/evil"), "", dir.path()}, test_policy());
  EXPECT_EQ(c.file_name, "passwd");
  EXPECT_EQ(std::filesystem::path(c.path).parent_path(), std::filesystem::path(dir.path()));
}

TEST_F(DownloaderTest, LoopbackRefusedByDefault) {
  server.http().Get("/m", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(body, "application/octet-stream");
  });
  server.start();
  DownloadPolicy p;
  p.allow_http = true;
  const std::string msg = error_of([&] { download({server.url("/m"), "", dir.path()}, p); });
  EXPECT_NE(msg.find("127.0.0.1 → 127.0.0.1 (loopback)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--allow-private-downloads"), std::string::npos) << msg;
  EXPECT_TRUE(dir.list().empty());
  // "localhost" is judged by what it resolves to.
  const std::string msg2 = error_of([&] {
    download({"http://localhost:" + std::to_string(server.port()) + "/m", "", dir.path()}, p);
  });
  EXPECT_NE(msg2.find("(loopback)"), std::string::npos) << msg2;
  // --allow-private-downloads lets it through.
  p.allow_private = true;
  EXPECT_EQ(download({server.url("/m"), "", dir.path()}, p).size, body.size());
}

TEST_F(DownloaderTest, RedirectToPrivateAddressIsRefusedAtThatHop) {
  server.http().Get("/to-metadata", [&](const httplib::Request&, httplib::Response& res) {
    res.set_redirect("http://169.254.169.254/latest/meta-data/iam?x=secret");
  });
  server.http().Get("/to-lan", [&](const httplib::Request&, httplib::Response& res) {
    res.set_redirect("http://10.0.0.7:" + std::to_string(server.port()) + "/m");
  });
  server.start();
  std::string msg = error_of([&] {
    download({server.url("/to-metadata"), "", dir.path()}, test_policy());
  });
  EXPECT_NE(msg.find("http://169.254.169.254/latest/meta-data/iam?…"), std::string::npos) << msg;
  EXPECT_NE(msg.find("the cloud metadata service"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("secret"), std::string::npos) << msg;
  msg = error_of([&] { download({server.url("/to-lan"), "", dir.path()}, test_policy()); });
  EXPECT_NE(msg.find("10.0.0.7 (private)"), std::string::npos) << msg;
  EXPECT_TRUE(dir.list().empty());
}

TEST_F(DownloaderTest, SchemesAreChecked) {
  server.http().Get("/to-file", [&](const httplib::Request&, httplib::Response& res) {
    res.set_redirect("file:///etc/passwd");
  });
  server.start();
  DownloadPolicy strict = test_policy();
  strict.allow_http = false;
  std::string msg = error_of([&] { download({server.url("/m"), "", dir.path()}, strict); });
  EXPECT_NE(msg.find("scheme: expected https (start the server with --allow-http"),
            std::string::npos)
      << msg;
  msg = error_of([&] { download({"ftp://example.com/x", "", dir.path()}, test_policy()); });
  EXPECT_NE(msg.find("scheme: expected https, found ftp"), std::string::npos) << msg;
  msg = error_of([&] { download({"file:///etc/passwd", "", dir.path()}, test_policy()); });
  EXPECT_NE(msg.find("found file"), std::string::npos) << msg;
  msg = error_of([&] { download({server.url("/to-file"), "", dir.path()}, test_policy()); });
  EXPECT_NE(msg.find("found file"), std::string::npos) << msg;
  msg = error_of([&] { download({"not a url", "", dir.path()}, test_policy()); });
  EXPECT_NE(msg.find("url"), std::string::npos) << msg;
  EXPECT_TRUE(dir.list().empty());
}

TEST_F(DownloaderTest, SizeCapFromHeaderAndWhileReceiving) {
  server.http().Get("/big", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(body, "application/octet-stream");
  });
  server.http().Get("/chunked", [&](const httplib::Request&, httplib::Response& res) {
    res.set_chunked_content_provider("application/octet-stream",
                                     [&](size_t offset, httplib::DataSink& sink) {
                                       if (offset >= body.size()) {
                                         sink.done();
                                         return true;
                                       }
                                       sink.write(body.data() + offset, 10000);
                                       return true;
                                     });
  });
  server.start();
  DownloadPolicy p = test_policy();
  p.max_bytes = 1000;
  std::string msg = error_of([&] { download({server.url("/big"), "", dir.path()}, p); });
  EXPECT_NE(msg.find("size: expected at most 1000 bytes (--max-download-size), found 300000 bytes"),
            std::string::npos)
      << msg;
  p.max_bytes = 25000;
  msg = error_of([&] { download({server.url("/chunked"), "", dir.path()}, p); });
  EXPECT_NE(msg.find("at most 25000 bytes"), std::string::npos) << msg;
  EXPECT_TRUE(dir.list().empty());
}

TEST_F(DownloaderTest, HtmlInsteadOfAModelIsRefusedInWords) {
  server.http().Get("/page", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content("<html><body>Log in to download</body></html>", "text/html; charset=utf-8");
  });
  server.http().Get("/sniffed", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content("\n  <!DOCTYPE html>\n<html>" + std::string(2000, ' ') + "</html>",
                    "application/octet-stream");
  });
  server.start();
  for (const char* path : {"/page", "/sniffed"}) {
    const std::string msg = error_of([&] {
      download({server.url(path), "", dir.path()}, test_policy());
    });
    EXPECT_NE(msg.find("found an HTML page"), std::string::npos) << msg;
    EXPECT_NE(msg.find("not to the file"), std::string::npos) << msg;
  }
  EXPECT_TRUE(dir.list().empty());
}

TEST_F(DownloaderTest, HttpErrorsAreNamed) {
  server.http().Get("/gated", [&](const httplib::Request&, httplib::Response& res) {
    res.status = 401;
    res.set_content("{\"error\":\"Access to model is restricted\"}", "application/json");
  });
  server.start();
  std::string msg = error_of([&] {
    download({server.url("/gated"), "", dir.path()}, test_policy());
  });
  EXPECT_NE(msg.find("401 Unauthorized: the site wants a token"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Access to model is restricted"), std::string::npos) << msg;
  msg = error_of([&] { download({server.url("/nothing"), "", dir.path()}, test_policy()); });
  EXPECT_NE(msg.find("404 Not Found"), std::string::npos) << msg;
  EXPECT_TRUE(dir.list().empty());
}

TEST_F(DownloaderTest, TokenGoesToItsOwnHostOnlyAndNeverIntoMessages) {
  std::mutex m;
  std::vector<std::string> auth_seen;
  server.http().Get("/start", [&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(m);
    auth_seen.push_back("start:" + req.get_header_value("Authorization"));
    // The same server under another name ("localhost"): a different host, like a CDN.
    res.set_redirect("http://localhost:" + std::to_string(server.port()) + "/cdn?sig=abc");
  });
  server.http().Get("/cdn", [&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(m);
    auth_seen.push_back("cdn:" + req.get_header_value("Authorization"));
    res.set_content(body, "application/octet-stream");
  });
  server.start();
  std::vector<std::string> logs;
  DownloadHooks hooks;
  hooks.log = [&](const std::string& l) { logs.push_back(l); };
  DownloadPolicy p = test_policy();
  p.address_judge = nullptr;
  p.allow_private = true;
  DownloadResult r =
      download({server.url("/start?token=hunter2"), "s3cr3t-token", dir.path()}, p, hooks);
  EXPECT_EQ(r.size, body.size());
  ASSERT_EQ(auth_seen.size(), 2u);
  EXPECT_EQ(auth_seen[0], "start:Bearer s3cr3t-token");
  EXPECT_EQ(auth_seen[1], "cdn:");
  for (const std::string& l : logs) {
    EXPECT_EQ(l.find("s3cr3t"), std::string::npos) << l;
    EXPECT_EQ(l.find("hunter2"), std::string::npos) << l;
    EXPECT_EQ(l.find("sig=abc"), std::string::npos) << l;
  }
  EXPECT_EQ(r.final_url.find("sig=abc"), std::string::npos);
  // An error message about a URL with a token in its query does not show the token either.
  const std::string msg = error_of([&] {
    download({server.url("/nothing?token=hunter2"), "s3cr3t-token", dir.path()}, p);
  });
  EXPECT_EQ(msg.find("hunter2"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("s3cr3t"), std::string::npos) << msg;
}

// The first response stops half-way and closes the connection; the retry asks for the rest.
TEST_F(DownloaderTest, ResumesAfterADroppedConnection) {
  std::atomic<int> requests{0};
  std::mutex m;
  std::vector<std::string> ranges;
  server.http().Get("/flaky", [&](const httplib::Request& req, httplib::Response& res) {
    const int n = ++requests;
    {
      std::lock_guard<std::mutex> lock(m);
      ranges.push_back(req.get_header_value("Range") + "|" + req.get_header_value("If-Range"));
    }
    res.set_header("ETag", "\"v1\"");
    res.set_header("Accept-Ranges", "bytes");
    res.set_content_provider(body.size(), "application/octet-stream",
                             [&, n](size_t offset, size_t length, httplib::DataSink& sink) {
                               if (n == 1 && offset >= 100000) return false;  // drop
                               size_t k = std::min<size_t>(length, 50000);
                               sink.write(body.data() + offset, k);
                               return true;
                             });
  });
  server.start();
  std::vector<std::string> logs;
  DownloadHooks hooks;
  hooks.log = [&](const std::string& l) { logs.push_back(l); };
  DownloadResult r = download({server.url("/flaky"), "", dir.path()}, test_policy(), hooks);
  EXPECT_EQ(r.resumes, 1);
  EXPECT_EQ(read_all(r.path), body);
  ASSERT_EQ(ranges.size(), 2u);
  EXPECT_EQ(ranges[0], "|");
  EXPECT_EQ(ranges[1], "bytes=100000-|\"v1\"");
  bool logged = false;
  for (const std::string& l : logs)
    logged |= l.find("resuming from byte 100000") != std::string::npos;
  EXPECT_TRUE(logged);
}

TEST_F(DownloaderTest, StartsOverWhenTheServerIgnoresTheRange) {
  std::atomic<int> requests{0};
  server.http().Get("/norange", [&](const httplib::Request&, httplib::Response& res) {
    const int n = ++requests;
    res.set_content_provider(body.size(), "application/octet-stream",
                             [&, n](size_t offset, size_t length, httplib::DataSink& sink) {
                               if (n == 1 && offset >= 100000) return false;
                               sink.write(body.data() + offset, std::min<size_t>(length, 50000));
                               return true;
                             });
  });
  // httplib answers Range requests itself; strip the header so that the server "ignores" it.
  server.http().set_pre_routing_handler([](const httplib::Request& req, httplib::Response&) {
    const_cast<httplib::Request&>(req).ranges.clear();
    return httplib::Server::HandlerResponse::Unhandled;
  });
  server.start();
  DownloadResult r = download({server.url("/norange"), "", dir.path()}, test_policy());
  EXPECT_EQ(read_all(r.path), body);
  EXPECT_EQ(requests.load(), 2);
}

TEST_F(DownloaderTest, GivesUpAfterTheResumeLimit) {
  server.http().Get("/always-drops", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content_provider(body.size(), "application/octet-stream",
                             [&](size_t offset, size_t, httplib::DataSink& sink) {
                               if (offset > 0) return false;
                               sink.write(body.data(), 1000);
                               return true;
                             });
  });
  server.start();
  DownloadPolicy p = test_policy();
  p.max_resumes = 2;
  const std::string msg = error_of([&] {
    download({server.url("/always-drops"), "", dir.path()}, p);
  });
  EXPECT_NE(msg.find("within 2 resumes"), std::string::npos) << msg;
  EXPECT_TRUE(dir.list().empty());
}

TEST_F(DownloaderTest, TotalTimeout) {
  // The provider keeps trickling on the server's thread after the client gave up, possibly while
  // the fixture is being torn down: it owns copies of its bytes rather than reading `body`.
  const std::string head = body.substr(0, 100), one = body.substr(100, 1);
  server.http().Get("/slow", [&, head, one](const httplib::Request&, httplib::Response& res) {
    res.set_chunked_content_provider("application/octet-stream",
                                     [this, head, one](size_t offset, httplib::DataSink& sink) {
                                       if (offset == 0) {
                                         sink.write(head.data(), head.size());
                                         return true;
                                       }
                                       // Trickle: one byte every 50 ms, forever (until stop).
                                       if (server.stopping()) return false;
                                       std::this_thread::sleep_for(std::chrono::milliseconds(50));
                                       sink.write(one.data(), 1);
                                       return true;
                                     });
  });
  server.start();
  DownloadPolicy p = test_policy();
  p.total_timeout = std::chrono::milliseconds(800);
  const std::string msg = error_of([&] { download({server.url("/slow"), "", dir.path()}, p); });
  EXPECT_NE(msg.find("timeout: expected the whole file within 0.8 s"), std::string::npos) << msg;
  EXPECT_TRUE(dir.list().empty());
}

TEST_F(DownloaderTest, StalledConnectionIsDroppedAndResumed) {
  std::atomic<int> requests{0};
  server.http().Get("/stall", [&](const httplib::Request&, httplib::Response& res) {
    const int n = ++requests;
    res.set_content_provider(body.size(), "application/octet-stream",
                             [&, n](size_t offset, size_t length, httplib::DataSink& sink) {
                               if (n == 1 && offset >= 100000) {  // hang without closing
                                 for (int i = 0; i < 100 && !server.stopping(); ++i)
                                   std::this_thread::sleep_for(std::chrono::milliseconds(50));
                                 return false;
                               }
                               sink.write(body.data() + offset, std::min<size_t>(length, 50000));
                               return true;
                             });
  });
  server.start();
  DownloadPolicy p = test_policy();
  p.stall_timeout = std::chrono::seconds(1);
  DownloadResult r = download({server.url("/stall"), "", dir.path()}, p);
  EXPECT_EQ(r.resumes, 1);
  EXPECT_EQ(read_all(r.path), body);
}

TEST_F(DownloaderTest, CancelStopsAndLeavesNothing) {
  std::atomic<bool> cancel{false};
  server.http().Get("/endless", [&](const httplib::Request&, httplib::Response& res) {
    res.set_chunked_content_provider("application/octet-stream",
                                     [&](size_t, httplib::DataSink& sink) {
                                       if (server.stopping()) return false;
                                       sink.write(body.data(), 10000);
                                       std::this_thread::sleep_for(std::chrono::milliseconds(5));
                                       return true;
                                     });
  });
  server.start();
  DownloadHooks hooks;
  hooks.progress = [&](const DownloadProgress& pr) {
    if (pr.received > 50000) cancel = true;
  };
  hooks.cancelled = [&] { return cancel.load(); };
  EXPECT_THROW(download({server.url("/endless"), "", dir.path()}, test_policy(), hooks),
               DownloadCancelled);
  EXPECT_TRUE(dir.list().empty());
}

TEST_F(DownloaderTest, ConnectionRefusedIsReported) {
  server.start();
  const int port = server.port();
  server.stop();
  const std::string msg = error_of([&] {
    download({"http://127.0.0.1:" + std::to_string(port) + "/m", "", dir.path()}, test_policy());
  });
  EXPECT_NE(msg.find("connection: expected a successful transfer"), std::string::npos) << msg;
  EXPECT_TRUE(dir.list().empty());
}

}  // namespace
}  // namespace sdc::server::transfer
