// Native job API over loopback HTTP against the tiny model: submit → poll → images, the same PNG
// as `sdc generate`, SSE event order, cancel mid-step, validation errors, DELETE of unknown ids.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "common/test_server.h"
#include "io/image.h"
#include "io/sha256.h"
#include "server/a1111/image_base64.h"

namespace sdc {
namespace {
using nlohmann::json;
namespace fs = std::filesystem;

json wait_final(httplib::Client& c, const std::string& id) {
  for (int i = 0; i < 1200; ++i) {
    auto r = c.Get("/v1/jobs/" + id);
    EXPECT_TRUE(r);
    if (!r) return json();
    json j = json::parse(r->body);
    const std::string s = j["status"];
    if (s != "queued" && s != "running") return j;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ADD_FAILURE() << "job " << id << " did not finish";
  return json();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(ServerJobs, SubmitPollAndFetchTheImage) {
  test::TestServer server;
  auto c = server.client();
  auto r = c.Post("/v1/jobs", test::tiny_job(2, 11), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 202) << r->body;
  const json submitted = json::parse(r->body);
  const std::string id = submitted["id"];
  EXPECT_EQ(r->get_header_value("Location"), "/v1/jobs/" + id);
  EXPECT_TRUE(submitted["status"] == "queued" || submitted["status"] == "running");

  const json done = wait_final(c, id);
  ASSERT_EQ(done["status"], "succeeded") << done.dump();
  ASSERT_EQ(done["result"]["images"].size(), 1u);
  const json img = done["result"]["images"][0];
  EXPECT_EQ(img["seed"], 11);
  EXPECT_EQ(img["width"], 64);
  const std::string hash = io::sha256_file(test::tiny("model.safetensors")).substr(0, 10);
  EXPECT_NE(img["infotext"].get<std::string>().find("Model hash: " + hash + ", Model: tiny"),
            std::string::npos)
      << img["infotext"];
  EXPECT_EQ(done["result"]["model"], "tiny.safetensors [" + hash + "]");

  auto png = c.Get(img["url"].get<std::string>());
  ASSERT_TRUE(png);
  EXPECT_EQ(png->status, 200);
  EXPECT_EQ(png->get_header_value("Content-Type"), "image/png");
  const io::Image decoded = io::decode_image(reinterpret_cast<const uint8_t*>(png->body.data()),
                                             png->body.size(), "reply");
  EXPECT_EQ(decoded.width, 64);
  // Also written whole to --outputs-dir.
  ASSERT_TRUE(img.contains("output_path"));
  EXPECT_EQ(read_file(img["output_path"]), png->body);

  // "save": false keeps a job's images out of --outputs-dir.
  auto unsaved =
      c.Post("/v1/jobs?wait=1", test::tiny_job(1, 12, R"("save":false)"), "application/json");
  ASSERT_TRUE(unsaved);
  ASSERT_EQ(unsaved->status, 200) << unsaved->body;
  EXPECT_FALSE(json::parse(unsaved->body)["result"]["images"][0].contains("output_path"));
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(server.dir().file("outputs"))) files += e.exists();
  EXPECT_EQ(files, 1u);

  auto missing = c.Get("/v1/jobs/" + id + "/images/1");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
}

TEST(ServerJobs, SameParametersGiveTheSamePngAsTheCli) {
  test::TestServer server;
  auto c = server.client();
  auto r =
      c.Post("/v1/jobs?wait=true",
             R"({"prompt":"a (red:1.2) fox","negative_prompt":"blurry","width":64,"height":64,)"
             R"("steps":3,"cfg_scale":5,"sampler":"dpmpp_2m","scheduler":"karras","seed":42})",
             "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json done = json::parse(r->body);
  auto api_png = c.Get(done["result"]["images"][0]["url"].get<std::string>());
  ASSERT_TRUE(api_png);

  // The native API's convention is A1111's, as the CLI's default.
  const std::vector<std::string> args =
      test::tiny_generate_a1111({"-p",          "a (red:1.2) fox",
                                 "-n",          "blurry",
                                 "-W",          "64",
                                 "-H",          "64",
                                 "--steps",     "3",
                                 "--cfg-scale", "5",
                                 "--sampler",   "dpmpp_2m",
                                 "--scheduler", "karras",
                                 "--seed",      "42",
                                 "--threads",   "1",
                                 "--precision", "f32",
                                 "-o",          server.dir().file("cli.png")});
  auto cli = test::run_sdc(args);
  ASSERT_EQ(cli.exit_code, 0) << cli.err;
  // Byte for byte: same pixels, same parameters chunk (Model: is the file stem, "model" for the
  // CLI's fixture path and "tiny" for the link in the models folder, so compare pixels and the
  // text separately).
  const std::string cli_png = read_file(server.dir().file("cli.png"));
  const io::Image a = io::decode_image(reinterpret_cast<const uint8_t*>(api_png->body.data()),
                                       api_png->body.size(), "api");
  const io::Image b =
      io::decode_image(reinterpret_cast<const uint8_t*>(cli_png.data()), cli_png.size(), "cli");
  EXPECT_EQ(a.rgb, b.rgb);
  auto text_a = io::decode_png_text(reinterpret_cast<const uint8_t*>(api_png->body.data()),
                                    api_png->body.size(), "api");
  auto text_b =
      io::decode_png_text(reinterpret_cast<const uint8_t*>(cli_png.data()), cli_png.size(), "cli");
  ASSERT_EQ(text_a.size(), 1u);
  ASSERT_EQ(text_b.size(), 1u);
  std::string expected = text_b[0].second;
  expected.replace(expected.find("Model: model"), 12, "Model: tiny");
  EXPECT_EQ(text_a[0].second, expected);
}

TEST(ServerJobs, EventsStreamInOrder) {
  test::TestServer server;
  auto c = server.client();
  auto r = c.Post("/v1/jobs", test::tiny_job(3, 1), "application/json");
  ASSERT_TRUE(r);
  const std::string id = json::parse(r->body)["id"];
  std::string stream;
  auto ev = c.Get("/v1/jobs/" + id + "/events", [&](const char* data, size_t n) {
    stream.append(data, n);
    return true;
  });
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->status, 200);
  EXPECT_EQ(ev->get_header_value("Content-Type"), "text/event-stream");
  // Event names in order: queued, started, step…, finished.
  std::vector<std::string> names;
  std::vector<json> data;
  std::istringstream lines(stream);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("event: ", 0) == 0) names.push_back(line.substr(7));
    if (line.rfind("data: ", 0) == 0) data.push_back(json::parse(line.substr(6)));
  }
  ASSERT_GE(names.size(), 4u) << stream;
  EXPECT_EQ(names.front(), "queued");
  EXPECT_EQ(names[1], "started");
  EXPECT_EQ(names.back(), "finished");
  EXPECT_EQ(data.back()["status"], "succeeded");
  int last_step = 0;
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == "step" && data[i]["progress"]["stage"] == "denoising" &&
        data[i]["progress"]["step"] != 0) {
      EXPECT_GT(data[i]["progress"]["step"].get<int>(), last_step);
      last_step = data[i]["progress"]["step"];
    }
  EXPECT_EQ(last_step, 3);
  // Resuming after the last event ends at once.
  httplib::Headers h{{"Last-Event-ID", std::to_string(data.size())}};
  auto again = c.Get("/v1/jobs/" + id + "/events", h);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->body, "");
}

TEST(ServerJobs, DeleteCancelsARunningJobMidStep) {
  test::TestServer server;
  auto c = server.client();
  auto r = c.Post("/v1/jobs", test::tiny_job(150, 3, R"("batch_count":16)"), "application/json");
  ASSERT_TRUE(r);
  const std::string id = json::parse(r->body)["id"];
  // Wait for the first sampler step, then cancel.
  bool stepping = false;
  for (int i = 0; i < 600 && !stepping; ++i) {
    const json j = json::parse(c.Get("/v1/jobs/" + id)->body);
    stepping = j["status"] == "running" && j["progress"]["step"].get<int>() >= 1;
    if (!stepping) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(stepping);
  auto del = c.Delete("/v1/jobs/" + id);
  ASSERT_TRUE(del);
  EXPECT_EQ(del->status, 200);
  const json done = wait_final(c, id);
  EXPECT_EQ(done["status"], "cancelled") << done.dump();
  EXPECT_TRUE(done["result"].is_null());
  EXPECT_LT(done["progress"]["batch"].get<int>(), 15);  // stopped long before the end
  // Nothing written for it.
  EXPECT_TRUE(fs::is_empty(server.dir().file("outputs")));
  EXPECT_EQ(server.engine().metrics().jobs_cancelled.load(), 1u);
  // Unknown ids: 404.
  auto unknown = c.Delete("/v1/jobs/0123abcd");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);
}

// Inpainting through the native API: init_image + mask and A1111's options under the CLI's
// names give the PNG `sdc generate` writes.
TEST(ServerJobs, InpaintingJobIsTheCliInpainting) {
  test::TestServer server;
  auto c = server.client();
  io::Image init(64, 64), mask(64, 64);
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 64; ++x) {
      uint8_t* p = init.pixel(x, y);
      p[0] = uint8_t(4 * x);
      p[1] = uint8_t(4 * y);
      p[2] = 90;
      std::fill_n(mask.pixel(x, y), 3, uint8_t(x > 20 && x < 44 && y > 8 && y < 30 ? 255 : 0));
    }
  io::write_png(server.dir().file("init.png"), init);
  io::write_png(server.dir().file("mask.png"), mask);
  const std::string body =
      test::tiny_job(3, 8,
                     R"("init_image":")" + server::a1111::encode_base64(io::encode_png(init)) +
                         R"(","mask":")" + server::a1111::encode_base64(io::encode_png(mask)) +
                         R"(","strength":0.8,"mask_blur":2,"masked_content":"latent-nothing",)"
                         R"("inpaint_full_res":true,"inpaint_padding":8,"save":false)");
  auto r = c.Post("/v1/jobs?wait=true", body, "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json done = json::parse(r->body);
  auto api_png = c.Get(done["result"]["images"][0]["url"].get<std::string>());
  ASSERT_TRUE(api_png);
  const test::CommandResult cli =
      test::run_sdc(test::tiny_generate_a1111({"-p",
                                               "a red fox",
                                               "-W",
                                               "64",
                                               "-H",
                                               "64",
                                               "--steps",
                                               "3",
                                               "--seed",
                                               "8",
                                               "--init-image",
                                               server.dir().file("init.png"),
                                               "--mask",
                                               server.dir().file("mask.png"),
                                               "--strength",
                                               "0.8",
                                               "--mask-blur",
                                               "2",
                                               "--masked-content",
                                               "latent-nothing",
                                               "--inpaint-full-res",
                                               "--inpaint-padding",
                                               "8",
                                               "--threads",
                                               "1",
                                               "--precision",
                                               "f32",
                                               "-o",
                                               server.dir().file("cli.png")}));
  ASSERT_EQ(cli.exit_code, 0) << cli.err;
  EXPECT_EQ(io::decode_image(reinterpret_cast<const uint8_t*>(api_png->body.data()),
                             api_png->body.size(), "api")
                .rgb,
            io::read_image(server.dir().file("cli.png")).rgb);
  // A mask without an init image, or a bad option: 422 naming the field.
  auto bad = c.Post("/v1/jobs", test::tiny_job(1, 1, R"("mask":"aGVsbG8=")"), "application/json");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 422) << bad->body;
  EXPECT_EQ(json::parse(bad->body)["detail"][0]["loc"][1], "mask") << bad->body;
}

TEST(ServerJobs, ValidationErrorsAre422NamingTheField) {
  test::TestServer server;
  auto c = server.client();
  auto expect_422 = [&](const std::string& body, const std::string& field,
                        const std::string& type) {
    auto r = c.Post("/v1/jobs", body, "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 422) << body << " → " << r->body;
    const json j = json::parse(r->body);
    ASSERT_TRUE(j["detail"].is_array()) << r->body;
    if (!field.empty()) {
      EXPECT_EQ(j["detail"][0]["loc"][1], field) << r->body;
    }
    EXPECT_EQ(j["detail"][0]["type"], type) << r->body;
  };
  expect_422("{not json", "", "value_error.jsondecode");
  expect_422("[1,2]", "", "type_error.dict");
  expect_422(R"({"negative_prompt":"x"})", "prompt", "value_error.missing");
  expect_422(test::tiny_job(2, 1, R"("stepz":3)"), "stepz", "value_error.extra");
  expect_422(R"({"prompt":"x","steps":"many"})", "steps", "type_error.integer");
  expect_422(R"({"prompt":"x","steps":2.5})", "steps", "type_error.integer");
  expect_422(R"({"prompt":"x","steps":151})", "steps", "value_error.number.not_le");
  expect_422(R"({"prompt":"x","width":100})", "width", "value_error.number.not_multiple");
  expect_422(R"({"prompt":"x","width":4096})", "width", "value_error.number.not_le");
  expect_422(R"({"prompt":"x","batch_size":9})", "batch_size", "value_error.number.not_le");
  expect_422(R"({"prompt":"x","batch_size":8,"batch_count":16})", "batch_count",
             "value_error.number.not_le");
  expect_422(R"({"prompt":7})", "prompt", "type_error.str");
  expect_422(R"({"prompt":")" + std::string(20001, 'a') + R"("})", "prompt",
             "value_error.any_str.max_length");
  expect_422(R"({"prompt":"x","cfg_scale":1e400})", "", "value_error.jsondecode");
  expect_422(R"({"prompt":"x","seed":18446744073709551615})", "seed", "value_error.number.not_le");
  expect_422(R"({"prompt":"x","loras":{"name":"kohya"}})", "loras", "type_error.list");
  // An unknown sampler names the ones there are (the engine's check).
  auto r = c.Post("/v1/jobs", R"({"prompt":"x","sampler":"heun++ 9m"})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 422) << r->body;
  EXPECT_NE(r->body.find("Euler a"), std::string::npos) << r->body;
  EXPECT_EQ(server.engine().metrics().jobs_submitted.load(), 0u);
}

TEST(ServerJobs, ModelAndLoraNamesCannotLeaveTheirFolders) {
  test::TestServer server;
  auto c = server.client();
  for (const std::string model :
       {"../tiny.safetensors", "/etc/passwd", "lora/../../x", "a\\\\b", "..", "x/../../y"}) {
    auto r =
        c.Post("/v1/jobs", test::tiny_job(1, 1, R"("model":")" + model + "\""), "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << model << " → " << r->body;
    EXPECT_EQ(json::parse(r->body)["error"], "BadName") << r->body;
  }
  auto lora = c.Post("/v1/jobs", test::tiny_job(1, 1, R"("loras":[{"name":"../../etc/x"}])"),
                     "application/json");
  ASSERT_TRUE(lora);
  EXPECT_EQ(lora->status, 400) << lora->body;
  auto unknown =
      c.Post("/v1/jobs", test::tiny_job(1, 1, R"("model":"nope.safetensors")"), "application/json");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404) << unknown->body;
  EXPECT_NE(unknown->body.find("tiny.safetensors"), std::string::npos) << unknown->body;
  EXPECT_EQ(server.engine().metrics().jobs_submitted.load(), 0u);
}

TEST(ServerJobs, LoraByNameIsMergedAndRecorded) {
  test::TestServer server;
  auto c = server.client();
  auto plain = c.Post("/v1/jobs?wait=1", test::tiny_job(2, 5), "application/json");
  auto with =
      c.Post("/v1/jobs?wait=1", test::tiny_job(2, 5, R"("loras":[{"name":"kohya","weight":0.8}])"),
             "application/json");
  ASSERT_TRUE(plain && with);
  ASSERT_EQ(with->status, 200) << with->body;
  const json a = json::parse(plain->body), b = json::parse(with->body);
  const std::string info = b["result"]["images"][0]["infotext"];
  EXPECT_NE(info.find("Lora hashes: \"kohya: "), std::string::npos) << info;
  auto pa = c.Get(a["result"]["images"][0]["url"].get<std::string>());
  auto pb = c.Get(b["result"]["images"][0]["url"].get<std::string>());
  EXPECT_NE(pa->body, pb->body);                          // the LoRA changed the image
  EXPECT_EQ(server.engine().loaded_models().size(), 1u);  // --max-loaded 1: LRU kept the last
}

}  // namespace
}  // namespace sdc
