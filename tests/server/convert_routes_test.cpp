// Convert jobs through `sdc serve`'s own HTTP server and engine, over loopback: submit with POST
// /v1/jobs {"type": "convert"}, follow its stages, find the model registered at once and generate
// with it; cancel; bad requests answered with their status; the page and the files routes served.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include <httplib.h>

#include "common/fixtures.h"
#include "engine/engine.h"
#include "server/base64.h"
#include "server/http_server.h"
#include "server/raw_http.h"

namespace sdc::server {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::TempDir;

class ConvertRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(models.file("lora"));
    fs::copy_file(test::tiny("model.safetensors"), models.file("tiny.safetensors"));
    fs::copy_file(test::tiny("lora-kohya.safetensors"), models.file("lora/lcm-lora.safetensors"));
    engine::EngineOptions eo;
    eo.registry.models_dir = models.path();
    eo.registry.model_config = test::tiny("diffusers");
    eo.log = &log;
    engine = std::make_unique<engine::Engine>(eo);
    ServerOptions so;
    so.port = 0;
    so.transfer.allow_http = true;
    so.transfer.allow_private_downloads = true;
    http = std::make_unique<HttpServer>(*engine, so);
    http->bind();
    thread = std::thread([this] { http->run(); });
  }
  void TearDown() override {
    engine->shutdown(true);
    http->stop();
    thread.join();
  }
  httplib::Client client() {
    httplib::Client c("127.0.0.1", http->port());
    c.set_read_timeout(120, 0);
    return c;
  }
  json post_job(const json& body, int expected_status) {
    auto r = client().Post("/v1/jobs", body.dump(), "application/json");
    EXPECT_TRUE(r);
    if (!r) return {};
    EXPECT_EQ(r->status, expected_status) << r->body;
    return json::parse(r->body, nullptr, false);
  }
  json wait_final(const std::string& id) {
    json j;
    EXPECT_TRUE(test::eventually(
        [&] {
          auto r = client().Get("/v1/jobs/" + id);
          if (!r) return false;
          j = json::parse(r->body);
          const std::string s = j["status"];
          return s != "queued" && s != "running";
        },
        std::chrono::seconds(300)));
    return j;
  }
  std::ostringstream log;
  TempDir models;
  std::unique_ptr<engine::Engine> engine;
  std::unique_ptr<HttpServer> http;
  std::thread thread;
};

TEST_F(ConvertRoutesTest, ConvertThenGenerateWithTheResult) {
  json job = post_job({{"type", "convert"},
                       {"source", {{"path", "tiny.safetensors"}}},
                       {"loras", {{{"path", "lora/lcm-lora.safetensors"}, {"scale", 1.0}}}},
                       {"precision", "f32"},
                       {"sizes", {{64, 64}}},
                       {"name", "tiny-lcm"}},
                      202);
  EXPECT_EQ(job["kind"], "convert");
  const std::string id = job["id"];
  // The event stream names the convert stages and ends with "finished".
  std::string events;
  auto r = client().Get("/v1/jobs/" + id + "/events", [&](const char* data, size_t n) {
    events.append(data, n);
    return true;
  });
  ASSERT_TRUE(r);
  EXPECT_NE(events.find("\"stage\":\"write\""), std::string::npos) << events;
  EXPECT_NE(events.find("event: finished"), std::string::npos) << events;
  json done = wait_final(id);
  ASSERT_EQ(done["status"], "succeeded") << done.dump();
  EXPECT_EQ(done["result"]["file"], "tiny-lcm.gguf");
  EXPECT_EQ(done["result"]["defaults"]["sampler"], "lcm");
  EXPECT_EQ(done["result"]["loras"][0]["name"], "lcm-lora.safetensors");
  const std::string model = done["result"]["model"];
  // Registered at once: listed, and a generation with it runs.
  auto models_list = client().Get("/v1/models");
  ASSERT_TRUE(models_list);
  EXPECT_NE(models_list->body.find("tiny-lcm"), std::string::npos) << models_list->body;
  json gen = post_job({{"prompt", "a lighthouse"},
                       {"model", model},
                       {"width", 64},
                       {"height", 64},
                       {"steps", 2},
                       {"seed", 1}},
                      202);
  json g = wait_final(gen["id"]);
  EXPECT_EQ(g["status"], "succeeded") << g.dump();
  EXPECT_EQ(g["result"]["images"].size(), 1u);
  // Nothing temporary left in the models folder.
  for (const auto& e : fs::directory_iterator(models.path()))
    EXPECT_EQ(e.path().filename().string().rfind(".sdc-convert", 0), std::string::npos);
}

TEST_F(ConvertRoutesTest, CancelLeavesNoModel) {
  json job = post_job({{"type", "convert"}, {"source", {{"path", "tiny.safetensors"}}}}, 202);
  auto r = client().Delete("/v1/jobs/" + job["id"].get<std::string>());
  ASSERT_TRUE(r);
  json done = wait_final(job["id"]);
  EXPECT_EQ(done["status"], "cancelled") << done.dump();
  EXPECT_FALSE(fs::exists(models.file("tiny.gguf")));
}

TEST_F(ConvertRoutesTest, BadConvertRequests) {
  json e = post_job({{"type", "convert"}, {"source", {{"path", "../../etc/passwd"}}}}, 400);
  EXPECT_NE(e.dump().find("contains \\\"..\\\""), std::string::npos) << e.dump();
  e = post_job({{"type", "convert"}, {"source", {{"upload", "up-0000"}}}}, 404);
  e = post_job(
      {{"type", "convert"}, {"source", {{"path", "tiny.safetensors"}}}, {"precision", "f4"}}, 422);
  e = post_job(
      {{"type", "convert"}, {"source", {{"url", "https://127.0.0.1:1/x"}}}, {"sizes", {{63, 64}}}},
      422);
  e = post_job({{"type", "convert"}}, 400);
  EXPECT_NE(e.dump().find("source"), std::string::npos);
}

TEST_F(ConvertRoutesTest, PageAndFilesAreServed) {
  auto c = client();
  auto r = c.Get("/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->get_header_value("Content-Type").find("text/html"), std::string::npos);
  EXPECT_NE(r->body.find("<title>sdc"), std::string::npos);
  r = c.Get("/ui/../../etc/passwd");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  // The ControlNet hint preview: the pipeline's canny, as PNG; bad bodies refused.
  std::ifstream f(test::tiny("images/init_64x64.png"), std::ios::binary);
  const std::string png((std::istreambuf_iterator<char>(f)), {});
  r = c.Post("/v1/preprocess/canny", json{{"image", base64_encode(png)}, {"low", 50}}.dump(),
             "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->get_header_value("Content-Type"), "image/png");
  const io::Image hint =
      io::decode_image(reinterpret_cast<const uint8_t*>(r->body.data()), r->body.size(), "hint");
  EXPECT_EQ(hint.width, 64);
  for (uint8_t v : hint.rgb) EXPECT_TRUE(v == 0 || v == 255);
  r = c.Post("/v1/preprocess/canny", R"({"image": "not base64!"})", "application/json");
  EXPECT_EQ(r->status, 422) << r->body;
  r = c.Post("/v1/preprocess/canny", R"({"picture": 1})", "application/json");
  EXPECT_EQ(r->status, 400) << r->body;
  r = c.Get("/v1/files?path=lora");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("\"kind\":\"lora\""), std::string::npos) << r->body;
}

}  // namespace
}  // namespace sdc::server
