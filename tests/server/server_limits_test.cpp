// What a request cannot do: pass without credentials, exceed the body cap, get past CORS, flood
// the queue (50 concurrent requests: each 200 or 429, none lost), or keep a job alive after
// hanging up. Also /health, /ready, /metrics and the OpenAI routes' shapes.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "common/test_server.h"
#include "io/image.h"
#include "server/base64.h"

namespace sdc {
namespace {
using nlohmann::json;

server::ServerOptions with_auth() {
  server::ServerOptions o;
  o.api_auth = {{"alice", "s3cret"}, {"bob", "pa:ss"}};
  return o;
}

std::string basic(const std::string& user_pass) {
  return "Basic " + server::base64_encode(user_pass);
}

TEST(ServerAuth, A1111Messages) {
  test::TestServer server(with_auth());
  auto c = server.client();
  auto detail = [&](const httplib::Headers& h) {
    auto r = c.Get("/v1/models", h);
    EXPECT_TRUE(r);
    if (!r) return std::string();
    EXPECT_EQ(r->status, 401) << r->body;
    EXPECT_FALSE(r->has_header("WWW-Authenticate"));  // A1111's handler drops it
    return json::parse(r->body)["detail"].get<std::string>();
  };
  EXPECT_EQ(detail({}), "Not authenticated");
  EXPECT_EQ(detail({{"Authorization", "Bearer abc"}}), "Not authenticated");
  EXPECT_EQ(detail({{"Authorization", "Basic "}}), "Invalid authentication credentials");
  EXPECT_EQ(detail({{"Authorization", "Basic !!!"}}), "Invalid authentication credentials");
  EXPECT_EQ(detail({{"Authorization", basic("alice")}}), "Invalid authentication credentials");
  EXPECT_EQ(detail({{"Authorization", basic("alice:wrong")}}), "Incorrect username or password");
  EXPECT_EQ(detail({{"Authorization", basic("mallory:s3cret")}}), "Incorrect username or password");
  for (const std::string ok : {"alice:s3cret", "bob:pa:ss"}) {
    auto r = c.Get("/v1/models", {{"Authorization", basic(ok)}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << ok;
  }
  // Probes for orchestrators stay public.
  auto health = c.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  // A job cannot be submitted without credentials.
  auto job = c.Post("/v1/jobs", test::tiny_job(), "application/json");
  ASSERT_TRUE(job);
  EXPECT_EQ(job->status, 401);
  EXPECT_EQ(server.engine().metrics().jobs_submitted.load(), 0u);
}

TEST(ServerAuth, EmptyAuthorizationIgnoredWhenAuthIsOff) {
  test::TestServer server;
  auto c = server.client();
  // SillyTavern and Open WebUI send these when no auth is configured.
  for (const std::string& h : {std::string("Basic "), std::string(), basic("")}) {
    auto r = c.Get("/v1/models", {{"Authorization", h}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << "'" << h << "'";
  }
}

TEST(ServerLimits, OversizedBodyIs413AndRunsNothing) {
  server::ServerOptions o;
  o.max_body_bytes = 1024;
  test::TestServer server(o);
  auto c = server.client();
  const std::string body =
      test::tiny_job(2, 1, R"("negative_prompt":")" + std::string(2000, 'x') + "\"");
  auto r = c.Post("/v1/jobs", body, "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(json::parse(r->body)["error"], "PayloadTooLarge") << r->body;
  EXPECT_EQ(server.engine().metrics().jobs_submitted.load(), 0u);
  auto health = c.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

TEST(ServerCors, PreflightAndHeadersForAllowedOriginsOnly) {
  server::ServerOptions o;
  o.cors_allow_origins = {"http://kobold.example"};
  test::TestServer server(o);
  auto c = server.client();
  auto pre = c.Options("/v1/jobs", {{"Origin", "http://kobold.example"},
                                    {"Access-Control-Request-Method", "POST"},
                                    {"Access-Control-Request-Headers", "content-type"}});
  ASSERT_TRUE(pre);
  EXPECT_EQ(pre->status, 200);
  EXPECT_EQ(pre->get_header_value("Access-Control-Allow-Origin"), "http://kobold.example");
  EXPECT_EQ(pre->get_header_value("Access-Control-Allow-Headers"), "content-type");
  EXPECT_NE(pre->get_header_value("Access-Control-Allow-Methods").find("POST"), std::string::npos);
  auto other = c.Options(
      "/v1/jobs", {{"Origin", "http://evil.example"}, {"Access-Control-Request-Method", "POST"}});
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 400);
  EXPECT_FALSE(other->has_header("Access-Control-Allow-Origin"));
  auto get = c.Get("/health", {{"Origin", "http://kobold.example"}});
  ASSERT_TRUE(get);
  EXPECT_EQ(get->get_header_value("Access-Control-Allow-Origin"), "http://kobold.example");
  EXPECT_EQ(get->get_header_value("Access-Control-Allow-Credentials"), "true");
  auto get_other = c.Get("/health", {{"Origin", "http://evil.example"}});
  ASSERT_TRUE(get_other);
  EXPECT_FALSE(get_other->has_header("Access-Control-Allow-Origin"));
  EXPECT_TRUE(get->has_header("X-Process-Time"));
}

TEST(ServerLimits, FiftyConcurrentRequestsAreEachAnsweredOrRefused) {
  test::TestServer server({}, [](engine::EngineOptions& o) { o.max_queue = 4; });
  // One job runs first, so the queue's four places are what the flood competes for; without it,
  // all 50 could arrive before the worker takes the first job and only four would fit.
  auto c0 = server.client();
  auto first = c0.Post("/v1/jobs", test::tiny_job(20, 99), "application/json");
  ASSERT_TRUE(first);
  ASSERT_EQ(first->status, 202) << first->body;
  std::shared_ptr<engine::Job> running;
  for (int i = 0; i < 600 && !(running = server.engine().current_job()); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(running);
  std::atomic<int> ok{0}, refused{0}, other{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 50; ++i)
    clients.emplace_back([&, i] {
      auto c = server.client();
      auto r = c.Post("/v1/jobs?wait=1", test::tiny_job(1, i), "application/json");
      if (r && r->status == 200 && json::parse(r->body)["status"] == "succeeded")
        ++ok;
      else if (r && r->status == 429 && std::stoi(r->get_header_value("Retry-After")) >= 1)
        ++refused;
      else {
        ++other;
        ADD_FAILURE() << "request " << i << ": "
                      << (r ? std::to_string(r->status) + " " + r->body
                            : "no reply: " + httplib::to_string(r.error()));
      }
    });
  for (auto& t : clients) t.join();
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(ok + refused, 50);
  EXPECT_GE(ok.load(), 4);  // at least the queue's worth, behind the running one
  const auto first_done = running->wait_for(std::chrono::seconds(60));
  ASSERT_TRUE(first_done);
  EXPECT_EQ(first_done->status, engine::JobStatus::Succeeded);
  const auto& m = server.engine().metrics();
  EXPECT_EQ(m.jobs_submitted.load(), uint64_t(ok.load() + 1));
  EXPECT_EQ(m.jobs_rejected.load(), uint64_t(refused.load()));
  EXPECT_EQ(m.jobs_succeeded.load(), uint64_t(ok.load() + 1));
  auto c = server.client();
  auto health = c.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto metrics = c.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(
      metrics->body.find("sdc_jobs_total{outcome=\"succeeded\"} " + std::to_string(ok.load() + 1)),
      std::string::npos)
      << metrics->body;
  EXPECT_NE(metrics->body.find("sdc_queue_depth 0"), std::string::npos);
}

// A raw connection that sends a blocking request and hangs up while its job runs.
TEST(ServerLimits, ClientThatHangsUpGetsItsJobCancelled) {
  test::TestServer server;
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(uint16_t(server.port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const std::string body = test::tiny_job(150, 1, R"("batch_count":16)");
  const std::string request =
      "POST /v1/jobs?wait=1 HTTP/1.1\r\nHost: x\r\nContent-Type: "
      "application/json\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body;
  ASSERT_EQ(send(fd, request.data(), request.size(), 0), ssize_t(request.size()));
  std::shared_ptr<engine::Job> job;
  for (int i = 0; i < 600 && !(job && job->snapshot().progress.step >= 1); ++i) {
    job = server.engine().current_job();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(job);
  close(fd);
  const auto done = job->wait_for(std::chrono::seconds(60));
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, engine::JobStatus::Cancelled);
  EXPECT_EQ(done->error, "the client disconnected");
}

TEST(ServerHealth, HealthReadyMetrics) {
  test::TestServer server;
  auto c = server.client();
  auto h = c.Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  EXPECT_EQ(json::parse(h->body)["status"], "ok");
  auto ready = c.Get("/ready");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200) << ready->body;
  const json rj = json::parse(ready->body);
  EXPECT_EQ(rj["ready"], true);
  EXPECT_EQ(rj["queue_capacity"], 16);
  auto m = c.Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status, 200);
  for (const char* name :
       {"sdc_queue_depth 0", "# TYPE sdc_step_seconds histogram",
        "sdc_step_seconds_bucket{le=\"+Inf\"}", "sdc_model_loads_total{result=\"ok\"}",
        "sdc_jobs_total{outcome=\"failed\"}", "sdc_image_seconds_count"})
    EXPECT_NE(m->body.find(name), std::string::npos) << name;
  auto unknown = c.Get("/no/such/route");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);
  EXPECT_EQ(json::parse(unknown->body)["detail"], "Not Found");
}

TEST(ServerHealth, NotReadyWithoutAModel) {
  test::TempDir empty;
  engine::EngineOptions o;
  o.registry.models_dir = empty.path();
  engine::Engine engine(o);
  server::ServerOptions so;
  so.port = 0;
  server::HttpServer http(engine, so);
  http.bind();
  std::thread t([&] { http.run(); });
  httplib::Client c("127.0.0.1", http.port());
  auto ready = c.Get("/ready");
  auto job = c.Post("/v1/jobs", test::tiny_job(), "application/json");
  engine.shutdown(true);
  http.stop();
  t.join();
  ASSERT_TRUE(ready && job);
  EXPECT_EQ(ready->status, 503);
  EXPECT_EQ(job->status, 404) << job->body;
}

TEST(ServerOpenAi, ImagesGenerationsAndModels) {
  test::TestServer server;
  auto c = server.client();
  auto r = c.Post("/v1/images/generations",
                  R"({"prompt":"a lighthouse","n":2,"size":"64x64","response_format":"b64_json",)"
                  R"("quality":"standard","user":"u1"})",
                  "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json j = json::parse(r->body);
  EXPECT_TRUE(j["created"].is_number_integer());
  ASSERT_EQ(j["data"].size(), 2u);
  for (const auto& d : j["data"]) {
    const auto png = server::base64_decode(d["b64_json"].get<std::string>());
    ASSERT_TRUE(png);
    const io::Image img =
        io::decode_image(reinterpret_cast<const uint8_t*>(png->data()), png->size(), "b64");
    EXPECT_EQ(img.width, 64);
  }
  EXPECT_NE(j["data"][0]["b64_json"], j["data"][1]["b64_json"]);  // seeds S and S+1

  auto url = c.Post("/v1/images/generations",
                    R"({"prompt":"a lighthouse","size":"64x64","response_format":"url"})",
                    "application/json");
  ASSERT_TRUE(url);
  ASSERT_EQ(url->status, 200) << url->body;
  const std::string link = json::parse(url->body)["data"][0]["url"];
  const std::string prefix = "http://127.0.0.1:" + std::to_string(server.port());
  ASSERT_EQ(link.rfind(prefix, 0), 0u) << link;
  auto img = c.Get(link.substr(prefix.size()));
  ASSERT_TRUE(img);
  EXPECT_EQ(img->status, 200);

  for (const std::string bad :
       {R"({"prompt":"x","size":"1024"})", R"({"prompt":"x","size":"65x64"})", R"({"n":1})",
        R"({"prompt":"x","n":0})", "nope", R"({"prompt":"x","response_format":"webp"})"}) {
    auto e = c.Post("/v1/images/generations", bad, "application/json");
    ASSERT_TRUE(e);
    EXPECT_EQ(e->status, 400) << bad << " → " << e->body;
    const json ej = json::parse(e->body);
    EXPECT_EQ(ej["error"]["type"], "invalid_request_error") << e->body;
    EXPECT_TRUE(ej["error"]["message"].is_string());
  }
  auto no_model =
      c.Post("/v1/images/generations", R"({"prompt":"x","model":"dall-e-3"})", "application/json");
  ASSERT_TRUE(no_model);
  EXPECT_EQ(no_model->status, 404) << no_model->body;

  auto models = c.Get("/v1/models");
  ASSERT_TRUE(models);
  const json mj = json::parse(models->body);
  EXPECT_EQ(mj["object"], "list");
  ASSERT_EQ(mj["data"].size(), 1u);
  EXPECT_EQ(mj["data"][0]["id"], "tiny.safetensors");
  EXPECT_EQ(mj["data"][0]["object"], "model");
}

}  // namespace
}  // namespace sdc
