// Convert jobs without the engine: every bad request refused with its field named; a convert from
// a server path with a LoRA gives byte for byte what `sdc convert` writes; URL and upload
// sources; bad files and HTML links reported with the user's names; cancel; nothing left behind.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include "common/fixtures.h"
#include "io/open_file.h"
#include "model/compiled_model.h"
#include "server/convert/convert_job.h"
#include "server/loopback_server.h"

namespace sdc::server::convert_jobs {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::TempDir;

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

class ConvertJobTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(models.file("lora"));
    fs::copy_file(test::tiny("model.safetensors"), models.file("tiny.safetensors"));
    fs::copy_file(test::tiny("lora-kohya.safetensors"),
                  models.file("lora/lcm-lora-sdv1-5.safetensors"));
    std::ofstream(models.file("broken.ckpt")) << "PK\x03\x04 not really a zip";
    browser = std::make_unique<transfer::FileBrowser>(
        std::vector<transfer::FileRoot>{{"models", models.path()}});
    transfer::UploadOptions uo;
    uo.dir = uploads_dir.path();
    store = std::make_unique<transfer::UploadStore>(uo);
    ctx.files = browser.get();
    ctx.uploads = store.get();
    ctx.models_dir = models.path();
    ctx.model_config = test::tiny("diffusers");
    ctx.tool = "sdc test";
    ctx.downloads.allow_http = true;
    ctx.downloads.allow_private = true;
    ctx.downloads.retry_delay = std::chrono::milliseconds(10);
  }
  // Names in the models folder (the temporary job folders must be gone).
  std::vector<std::string> model_dir_names() { return models.list(); }
  std::string prepare_error(const json& body) {
    try {
      prepare_convert(body, ctx);
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  }
  TempDir models, uploads_dir;
  std::unique_ptr<transfer::FileBrowser> browser;
  std::unique_ptr<transfer::UploadStore> store;
  ConvertContext ctx;
};

TEST_F(ConvertJobTest, BadRequestsNameTheField) {
  auto expect = [&](const json& body, const std::string& part) {
    const std::string msg = prepare_error(body);
    EXPECT_NE(msg.find(part), std::string::npos) << body.dump() << " → " << msg;
  };
  expect(json::array(), "body: expected a JSON object");
  expect({{"type", "convert"}}, "source: expected the model to convert");
  expect({{"source", "tiny.safetensors"}}, "source: expected {\"upload\": ID}");
  expect({{"source", {{"path", "tiny.safetensors"}, {"url", "https://x/y"}}}},
         "source: expected exactly one of upload, path, url, found 2");
  expect({{"source", {{"path", "../etc/passwd"}}}}, "contains \"..\"");
  expect({{"source", {{"path", "/etc/passwd"}}}}, "it is absolute");
  expect({{"source", {{"path", ""}}}}, "source.path");
  expect({{"source", {{"path", "missing.ckpt"}}}}, "expected an existing file");
  expect({{"source", {{"path", "tiny.safetensors"}, {"scale", 1}}}}, "source.scale");
  expect({{"source", {{"upload", "up-nope"}}}}, "expected a known upload id, found up-nope");
  expect({{"source", {{"url", "ftp://host/x"}}}}, "source.url: expected an http(s) URL");
  expect({{"source", {{"path", "tiny.safetensors"}, {"token", "t"}}}},
         "source.token: expected a token only with a url");
  const json ok_src = {{"path", "tiny.safetensors"}};
  expect({{"source", ok_src}, {"colour", 1}}, "colour: expected one of type, source");
  expect({{"source", ok_src},
          {"loras", {{{"path", "lora/lcm-lora-sdv1-5.safetensors"}, {"scale", "x"}}}}},
         "loras[0].scale: expected a number, found \"x\"");
  expect({{"source", ok_src}, {"precision", "f8"}},
         "precision: expected f32, f16 or bf16 (int8: the unet and vae only), found \"f8\"");
  expect({{"source", ok_src}, {"precision", {{"unet", "bf16"}, {"clip", "f32"}}}},
         "precision: expected unet, text_encoder, vae or controlnet, found \"clip\"");
  expect({{"source", ok_src}, {"sizes", {{512, 500}}}}, "sizes: expected multiples of 8");
  expect({{"source", ok_src}, {"sizes", {512, 512}}}, "sizes[0]: expected [W, H]");
  expect({{"source", ok_src}, {"batch", 0}}, "batch: expected a batch size in [1, 64], found 0");
  expect({{"source", ok_src}, {"name", "../evil"}}, "name: expected 1–100 letters");
  expect({{"source", ok_src}, {"name", ".hidden"}}, "name: expected");
  expect({{"source", ok_src}, {"defaults", "fast"}},
         "defaults: expected \"auto\", \"lcm\" or \"none\"");
  std::ofstream(models.file("taken.gguf")) << "x";
  expect({{"source", ok_src}, {"name", "taken"}}, "models/taken.gguf exists");
  ctx.downloads.allow_http = false;
  expect({{"source", {{"url", "http://host/x"}}}},
         "expected an https URL (http needs --allow-http)");
  // An upload that has not arrived completely cannot be converted yet.
  transfer::UploadInfo u = store->create("half.safetensors", 100);
  expect({{"source", {{"upload", u.id}}}}, "expected a complete upload, found 0 of 100 bytes");
}

// The same bytes as `sdc convert -u … -l …:0.8 -t bf16 -s 64 64 --name tiny-lcm`.
TEST_F(ConvertJobTest, PathSourceWithLoraMatchesTheCli) {
  const json body = {{"type", "convert"},
                     {"source", {{"path", "tiny.safetensors"}}},
                     {"loras", {{{"path", "lora/lcm-lora-sdv1-5.safetensors"}, {"scale", 0.8}}}},
                     {"precision", "bf16"},
                     {"sizes", {{64, 64}}},
                     {"name", "tiny-lcm"}};
  TempDir cli_out;
  test::CommandResult c = test::run_sdc(
      {"convert", "-u", models.file("tiny.safetensors"), "--model-config", test::tiny("diffusers"),
       "-l", models.file("lora/lcm-lora-sdv1-5.safetensors") + ":0.8", "-t", "bf16", "-s", "64",
       "64", "--name", "tiny-lcm", "-o", cli_out.file("tiny-lcm.gguf")});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  // The job records the same tool string as this sdc binary, so the files can be equal.
  ctx.tool = model::read_compiled_info(io::open_tensor_file(cli_out.file("tiny-lcm.gguf")))->tool;

  PreparedConvert p = prepare_convert(body, ctx);
  std::vector<ConvertJobProgress> seen;
  ConvertJobHooks hooks;
  hooks.progress = [&](const ConvertJobProgress& pr) { seen.push_back(pr); };
  ConvertJobResult r = run_convert(p, ctx, hooks);
  EXPECT_EQ(r.file, "tiny-lcm.gguf");
  EXPECT_EQ(r.converted.info.defaults.sampler, "lcm");
  ASSERT_EQ(r.converted.info.loras.size(), 1u);
  EXPECT_FLOAT_EQ(r.converted.info.loras[0].scale, 0.8f);
  ASSERT_FALSE(seen.empty());
  EXPECT_DOUBLE_EQ(seen.back().fraction, 1.0);
  std::vector<std::string> stages;
  for (const auto& s : seen)
    if (stages.empty() || stages.back() != s.stage) stages.push_back(s.stage);
  EXPECT_EQ(stages, (std::vector<std::string>{"read", "hash", "write", "publish"}));
  for (size_t i = 1; i < seen.size(); ++i) EXPECT_GE(seen[i].fraction, seen[i - 1].fraction);
  bool lora_logged = false;
  for (const auto& l : r.log) lora_logged |= l.find("277 UNet modules") != std::string::npos;
  EXPECT_TRUE(lora_logged);
  EXPECT_TRUE(read_all(r.path) == read_all(cli_out.file("tiny-lcm.gguf")));
  EXPECT_EQ(model_dir_names(),
            (std::vector<std::string>{"broken.ckpt", "lora", "tiny-lcm.gguf", "tiny.safetensors"}));
}

// The web page's int8 choices: {"unet": "int8", "vae": "int8"} stores both f16 and marks them
// (sdc.compute.unet / sdc.compute.vae), as `sdc convert -t unet=int8,vae=int8` does.
TEST_F(ConvertJobTest, Int8UNetAndVaeAreMarked) {
  const json body = {{"type", "convert"},
                     {"source", {{"path", "tiny.safetensors"}}},
                     {"precision", {{"unet", "int8"}, {"vae", "int8"}}},
                     {"sizes", {{64, 64}}},
                     {"name", "tiny-int8"}};
  PreparedConvert p = prepare_convert(body, ctx);
  const ConvertJobResult r = run_convert(p, ctx, {});
  const auto info = model::read_compiled_info(io::open_tensor_file(r.path));
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->unet_compute, "int8");
  EXPECT_EQ(info->vae_compute, "int8");
  EXPECT_EQ(info->precision.at("unet"), DType::F16);
  EXPECT_EQ(info->precision.at("vae"), DType::F16);
  EXPECT_NE(prepare_error({{"type", "convert"},
                           {"source", {{"path", "tiny.safetensors"}}},
                           {"precision", {{"text_encoder", "int8"}}}})
                .find("precision: expected f32, f16 or bf16 (int8: the unet and vae only)"),
            std::string::npos);
}

TEST_F(ConvertJobTest, UrlAndUploadSources) {
  const std::string model_bytes = read_all(test::tiny("model.safetensors"));
  test::LoopbackServer server;
  server.http().Get("/models/tiny.safetensors",
                    [&](const httplib::Request&, httplib::Response& res) {
                      res.set_content(model_bytes, "application/octet-stream");
                    });
  server.start();
  // The LoRA arrives as an upload.
  const std::string lora = read_all(test::tiny("lora-kohya.safetensors"));
  transfer::UploadInfo u = store->create("my-lcm-lora.safetensors", lora.size());
  transfer::ChunkWriter w = store->begin_chunk(u.id, 0, lora.size());
  w.write(lora.data(), lora.size());
  w.finish();

  const json body = {{"source", {{"url", server.url("/models/tiny.safetensors?token=abc")}}},
                     {"loras", {{{"upload", u.id}, {"scale", 1.0}}}}};
  PreparedConvert p = prepare_convert(body, ctx);
  EXPECT_EQ(p.output_name, "tiny.gguf");  // the URL's file name's stem
  std::vector<std::string> stages;
  ConvertJobHooks hooks;
  hooks.progress = [&](const ConvertJobProgress& pr) {
    if (stages.empty() || stages.back() != pr.stage) stages.push_back(pr.stage);
  };
  ConvertJobResult r = run_convert(p, ctx, hooks);
  EXPECT_EQ(stages.front(), "download");
  EXPECT_EQ(r.file, "tiny.gguf");
  ASSERT_EQ(r.converted.info.loras.size(), 1u);
  EXPECT_EQ(r.converted.info.loras[0].name, "my-lcm-lora.safetensors");
  for (const auto& l : r.log) EXPECT_EQ(l.find("abc"), std::string::npos) << l;
  EXPECT_EQ(model_dir_names(),
            (std::vector<std::string>{"broken.ckpt", "lora", "tiny.gguf", "tiny.safetensors"}));
}

TEST_F(ConvertJobTest, ErrorsNameFilesAsTheUserKnowsThem) {
  PreparedConvert p = prepare_convert({{"source", {{"path", "broken.ckpt"}}}}, ctx);
  try {
    run_convert(p, ctx);
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("models/broken.ckpt"), std::string::npos) << msg;
    EXPECT_EQ(msg.find(models.path()), std::string::npos) << msg;
  }
  test::LoopbackServer server;
  server.http().Get("/page", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content("<!doctype html><title>Model page</title>", "text/html");
  });
  server.start();
  p = prepare_convert({{"source", {{"url", server.url("/page")}}}, {"name", "x"}}, ctx);
  try {
    run_convert(p, ctx);
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(server.url("/page") + ": content: expected a model file"), std::string::npos)
        << msg;
    EXPECT_NE(msg.find("an HTML page"), std::string::npos) << msg;
  }
  EXPECT_EQ(model_dir_names(),
            (std::vector<std::string>{"broken.ckpt", "lora", "tiny.safetensors"}));
}

TEST_F(ConvertJobTest, CancelLeavesNothing) {
  PreparedConvert p = prepare_convert({{"source", {{"path", "tiny.safetensors"}}}}, ctx);
  std::atomic<bool> stop{false};
  ConvertJobHooks hooks;
  hooks.progress = [&](const ConvertJobProgress& pr) {
    if (pr.stage == "write" && pr.stage_fraction > 0.2) stop = true;
  };
  hooks.cancelled = [&] { return stop.load(); };
  try {
    run_convert(p, ctx, hooks);
    FAIL() << "not cancelled";
  } catch (const std::exception& e) {
    EXPECT_TRUE(is_cancellation(e)) << e.what();
    EXPECT_STREQ(e.what(), "tiny.gguf: interrupted; nothing written");
  }
  EXPECT_EQ(model_dir_names(),
            (std::vector<std::string>{"broken.ckpt", "lora", "tiny.safetensors"}));
}

}  // namespace
}  // namespace sdc::server::convert_jobs
