// The A1111 adapter over real loopback HTTP against the tiny fixture model: every route's status
// and body shape, the bodies Open WebUI, SillyTavern, Kobold Lite and webuiapi send (A1111-API.md
// §2) read back the way those clients read them, bad inputs, options that persist, and a
// txt2img whose PNG is the one `sdc generate` writes for the same parameters.
#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "common/fixtures.h"
#include "engine/engine.h"
#include "io/image.h"
#include "io/sha256.h"
#include "server/a1111/image_base64.h"
#include "server/http_server.h"

namespace sdc::server::a1111 {
namespace {

using nlohmann::json;

class A1111Http : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    engine::EngineOptions eo;
    eo.registry.single_model = test::tiny("model.safetensors");
    eo.registry.model_config = test::tiny("diffusers");
    eo.registry.hash_cache = dir_->file("hashes.json");
    eo.settings_file = dir_->file("settings.json");
    eo.taesd = test::tiny("taesd");  // A1111's TAESD methods, when a request or option asks
    eo.embeddings_dir = test::tiny("textual_inversion/a1111-pt");
    eo.log = &log_;
    engine_ = new engine::Engine(eo);
    ServerOptions so;
    so.port = 0;
    server_ = new HttpServer(*engine_, so);
    server_->bind();
    thread_ = new std::thread([] { server_->run(); });
  }
  static void TearDownTestSuite() {
    engine_->shutdown(true);
    server_->stop();
    thread_->join();
    delete thread_;
    delete server_;
    delete engine_;
    delete dir_;
  }

  static httplib::Client client() {
    httplib::Client c("127.0.0.1", server_->port());
    c.set_read_timeout(600);
    return c;
  }
  // {status, parsed body}
  static std::pair<int, json> get(const std::string& path) {
    auto r = client().Get(path.c_str());
    EXPECT_TRUE(r) << path;
    if (!r) return {0, json()};
    return {r->status, json::parse(r->body)};
  }
  static std::pair<int, json> post_raw(const std::string& path, const std::string& body,
                                       const std::string& type = "application/json") {
    auto r = client().Post(path.c_str(), body, type.c_str());
    EXPECT_TRUE(r) << path;
    if (!r) return {0, json()};
    return {r->status, json::parse(r->body)};
  }
  static std::pair<int, json> post(const std::string& path, const json& body) {
    return post_raw(path, body.dump());
  }

  static test::TempDir* dir_;
  static engine::Engine* engine_;
  static HttpServer* server_;
  static std::thread* thread_;
  static std::ostringstream log_;
};

test::TempDir* A1111Http::dir_ = nullptr;
engine::Engine* A1111Http::engine_ = nullptr;
HttpServer* A1111Http::server_ = nullptr;
std::thread* A1111Http::thread_ = nullptr;
std::ostringstream A1111Http::log_;

std::vector<uint8_t> decode_png_b64(const json& s) {
  auto bytes = decode_base64(s.get<std::string>());
  EXPECT_TRUE(bytes.has_value());
  return bytes.value_or(std::vector<uint8_t>{});
}

TEST_F(A1111Http, ListingRoutesHaveA1111Shapes) {
  auto [status, models] = get("/sdapi/v1/sd-models");
  EXPECT_EQ(status, 200);
  ASSERT_EQ(models.size(), 1u);
  for (const char* k : {"title", "model_name", "hash", "sha256", "filename", "config"})
    EXPECT_TRUE(models[0].contains(k)) << k;
  EXPECT_EQ(models[0]["model_name"], "model");

  auto [ostatus, options] = get("/sdapi/v1/options");
  EXPECT_EQ(ostatus, 200);
  EXPECT_EQ(options["samples_format"], "png");  // Kobold Lite refuses a null
  EXPECT_EQ(options["send_seed"], true);
  EXPECT_FALSE(options.contains("forge_preset"));  // SillyTavern would take sdc for Forge

  for (const char* path :
       {"/sdapi/v1/samplers", "/sdapi/v1/schedulers", "/sdapi/v1/sd-vae", "/sdapi/v1/loras",
        "/sdapi/v1/upscalers", "/sdapi/v1/latent-upscale-modes", "/sdapi/v1/prompt-styles",
        "/sdapi/v1/hypernetworks", "/sdapi/v1/face-restorers", "/sdapi/v1/realesrgan-models"}) {
    auto [s, body] = get(path);
    EXPECT_EQ(s, 200) << path;
    EXPECT_TRUE(body.is_array()) << path;
  }
  auto [ss, samplers] = get("/sdapi/v1/samplers");
  EXPECT_EQ(samplers[0]["name"], "DPM++ 2M");
  // --embeddings: listed against the loaded model's text-encoder width (the tiny model's, once a
  // generation has loaded it; SD1.x's 768 before, when the tiny files are skipped).
  ASSERT_EQ(post("/sdapi/v1/txt2img",
                 json{{"prompt", "tiny-cat"}, {"steps", 1}, {"width", 64}, {"height", 64}})
                .first,
            200);
  auto [es, embeddings] = get("/sdapi/v1/embeddings");
  EXPECT_EQ(es, 200);
  ASSERT_TRUE(embeddings["loaded"].contains("tiny-cat")) << embeddings;
  EXPECT_TRUE(embeddings["loaded"].contains("tiny-style")) << embeddings;
  EXPECT_TRUE(embeddings["loaded"]["tiny-cat"]["vectors"].is_number_integer());
  EXPECT_TRUE(embeddings["loaded"]["tiny-cat"].contains("sd_checkpoint"));
  EXPECT_EQ(embeddings["skipped"], json::object());
  auto [cs, scripts] = get("/sdapi/v1/scripts");
  EXPECT_EQ(scripts, json({{"txt2img", json::array()}, {"img2img", json::array()}}));
  auto [fs, flags] = get("/sdapi/v1/cmd-flags");
  EXPECT_EQ(fs, 200);
  EXPECT_EQ(flags["api"], true);
  EXPECT_EQ(flags["port"], 0);
  auto [ms, memory] = get("/sdapi/v1/memory");
  EXPECT_EQ(ms, 200);
  EXPECT_GT(memory["ram"]["total"].get<double>(), 0);
  EXPECT_TRUE(memory["cuda"].contains("error"));
  // Idle progress: what SillyTavern and webuiapi wait for.
  auto [ps, progress] = get("/sdapi/v1/progress");
  EXPECT_EQ(ps, 200);
  EXPECT_EQ(progress["progress"], 0);
  EXPECT_EQ(progress["state"]["job_count"], 0);
  EXPECT_EQ(progress["current_image"], nullptr);
  // Housekeeping routes answer JSON (webuiapi calls .json() on every reply).
  EXPECT_EQ(post_raw("/sdapi/v1/interrupt", "").second, json::object());
  EXPECT_EQ(post_raw("/sdapi/v1/skip", "").second, nullptr);
  EXPECT_EQ(post_raw("/sdapi/v1/refresh-checkpoints", "").second, nullptr);
  EXPECT_EQ(post_raw("/sdapi/v1/refresh-loras", "").second, nullptr);
  EXPECT_EQ(post_raw("/sdapi/v1/unload-checkpoint", "").second, json::object());
  EXPECT_EQ(post_raw("/sdapi/v1/reload-checkpoint", "").second, json::object());
}

TEST_F(A1111Http, Txt2ImgIsTheImageSdcGenerateMakes) {
  const json body = {{"prompt", "a red ball"},
                     {"negative_prompt", "blue"},
                     {"seed", 42},
                     {"steps", 3},
                     {"cfg_scale", 5},
                     {"width", 64},
                     {"height", 64},
                     {"sampler_name", "Euler a"}};
  auto [status, res] = post("/sdapi/v1/txt2img", body);
  ASSERT_EQ(status, 200) << res;
  ASSERT_EQ(res["images"].size(), 1u);
  ASSERT_TRUE(res["info"].is_string());  // Open WebUI indexes res['info']
  const json info = json::parse(res["info"].get<std::string>());
  EXPECT_EQ(info["seed"], 42);
  EXPECT_EQ(info["all_seeds"], json({42}));
  EXPECT_EQ(info["sampler_name"], "Euler a");
  EXPECT_EQ(res["parameters"]["prompt"], "a red ball");
  const std::vector<uint8_t> api_png = decode_png_b64(res["images"][0]);

  test::TempDir out;
  // The API's convention is A1111's, the CLI's default too.
  const std::vector<std::string> args = test::tiny_generate_a1111(
      {"-p", "a red ball", "-n", "blue", "--seed", "42", "--steps", "3", "--cfg-scale", "5", "-W",
       "64", "-H", "64", "--sampler", "euler_a", "-o", out.file("cli.png")});
  const test::CommandResult cli = test::run_sdc(args);
  ASSERT_EQ(cli.exit_code, 0) << cli.err;
  std::ifstream f(out.file("cli.png"), std::ios::binary);
  const std::vector<uint8_t> cli_png((std::istreambuf_iterator<char>(f)),
                                     std::istreambuf_iterator<char>());
  // Same pixels, and the same "parameters" text as sdc generate writes, with A1111's "Model
  // hash" (the first 10 hex digits of the file's sha256) in its place.
  const io::Image a = io::decode_image(api_png.data(), api_png.size(), "api");
  const io::Image b = io::decode_image(cli_png.data(), cli_png.size(), "cli");
  EXPECT_EQ(a.rgb, b.rgb);
  const io::PngText ta = io::decode_png_text(api_png.data(), api_png.size(), "api");
  io::PngText tb = io::decode_png_text(cli_png.data(), cli_png.size(), "cli");
  ASSERT_EQ(ta.size(), 1u);
  ASSERT_EQ(tb.size(), 1u);
  const std::string hash =
      "Model hash: " + io::sha256_file(test::tiny("model.safetensors")).substr(0, 10) + ", ";
  EXPECT_NE(ta[0].second.find(hash + "Model: model"), std::string::npos) << ta[0].second;
  if (tb[0].second.find("Model hash: ") == std::string::npos) {
    // This sdc generate does not write the hash yet: compare the rest of the text.
    const size_t at = tb[0].second.find("Model: model");
    ASSERT_NE(at, std::string::npos);
    tb[0].second.insert(at, hash);
    EXPECT_EQ(ta, tb);
  } else {
    EXPECT_EQ(api_png, cli_png);  // then the files are the same, byte for byte
  }
  EXPECT_EQ(info["infotexts"][0], ta[0].second);
}

TEST_F(A1111Http, ClientBodiesReadAsClientsReadThem) {
  // Open WebUI: GET /options for the model, then a minimal body; reads images and info.
  auto [os, options] = get("/sdapi/v1/options");
  ASSERT_EQ(os, 200);
  auto [s1, ow] =
      post("/sdapi/v1/txt2img",
           json{{"prompt", "x"}, {"batch_size", 2}, {"width", 64}, {"height", 64}, {"steps", 2}});
  ASSERT_EQ(s1, 200) << ow;
  EXPECT_EQ(ow["images"].size(), 2u);
  for (const json& img : ow["images"]) {
    const std::vector<uint8_t> png = decode_png_b64(img);
    EXPECT_EQ(io::sniff_image_format(png.data(), png.size()), io::ImageFormat::Png);
  }
  const json owinfo = json::parse(ow["info"].get<std::string>());
  EXPECT_EQ(owinfo["all_seeds"][1].get<int64_t>(), owinfo["all_seeds"][0].get<int64_t>() + 1);

  // SillyTavern: its proxy body, unknown keys and all; an empty Basic header.
  httplib::Client c = client();
  httplib::Headers h = {{"Authorization", "Basic "}};
  const json st = {
      {"url", "http://127.0.0.1:7860"},
      {"auth", ""},
      {"prompt", "a cat"},
      {"negative_prompt", ""},
      {"sampler_name", "DDIM"},
      {"scheduler", "normal"},
      {"steps", 2},
      {"cfg_scale", 7},
      {"width", 64},
      {"height", 64},
      {"restore_faces", false},
      {"enable_hr", false},
      {"hr_upscaler", "Latent"},
      {"hr_scale", 2},
      {"denoising_strength", 0.7},
      {"hr_second_pass_steps", 0},
      {"override_settings", {{"CLIP_stop_at_last_layers", 2}, {"sd_vae", "Automatic"}}},
      {"override_settings_restore_afterwards", true},
      {"clip_skip", 2},
      {"save_images", false},
      {"send_images", true},
      {"do_not_save_grid", false},
      {"do_not_save_samples", false}};
  auto r = c.Post("/sdapi/v1/txt2img", h, st.dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json stres = json::parse(r->body);
  const std::vector<uint8_t> png = decode_png_b64(stres["images"][0]);
  const io::PngText text = io::decode_png_text(png.data(), png.size(), "st");
  ASSERT_FALSE(text.empty());
  EXPECT_NE(text[0].second.find("Clip skip: 2"), std::string::npos) << text[0].second;
  // ... then set-model and the progress poll it does after.
  auto [ms, none] =
      post("/sdapi/v1/options", json{{"sd_model_checkpoint", options["sd_model_checkpoint"]}});
  EXPECT_EQ(ms, 200);
  EXPECT_EQ(none, nullptr);
  auto [ps, progress] = get("/sdapi/v1/progress");
  EXPECT_EQ(progress["progress"], 0);
  EXPECT_EQ(progress["state"]["job_count"], 0);

  // Kobold Lite: model by title in override_settings; img2img with raw base64.
  io::Image init(64, 64);
  for (size_t i = 0; i < init.rgb.size(); ++i) init.rgb[i] = uint8_t(i * 13);
  const json kl = {{"prompt", "a lighthouse"},
                   {"seed", 7},
                   {"sampler_name", "Euler a"},
                   {"batch_size", 1},
                   {"n_iter", 1},
                   {"steps", 2},
                   {"cfg_scale", 7},
                   {"width", 64},
                   {"height", 64},
                   {"negative_prompt", ""},
                   {"do_not_save_samples", true},
                   {"do_not_save_grid", true},
                   {"enable_hr", false},
                   {"eta", 0},
                   {"s_churn", 0},
                   {"s_tmax", 0},
                   {"s_tmin", 0},
                   {"s_noise", 1},
                   {"override_settings",
                    {{"sd_model_checkpoint", options["sd_model_checkpoint"]},
                     {"eta_noise_seed_delta", 0},
                     {"CLIP_stop_at_last_layers", 1},
                     {"ddim_discretize", "uniform"},
                     {"img2img_fix_steps", false},
                     {"sd_hypernetwork", "None"},
                     {"inpainting_mask_weight", 1},
                     {"initial_noise_multiplier", 1},
                     {"comma_padding_backtrack", 20}}},
                   {"init_images", {encode_base64(io::encode_png(init))}},
                   {"denoising_strength", 0.6}};
  auto [ks, klres] = post("/sdapi/v1/img2img", kl);
  ASSERT_EQ(ks, 200) << klres;
  EXPECT_FALSE(decode_png_b64(klres["images"][0]).empty());

  // webuiapi: every field, nulls included; both sampler_name and sampler_index.
  const json wa = {{"prompt", "a fox"},
                   {"styles", json::array()},
                   {"seed", 3},
                   {"subseed", -1},
                   {"subseed_strength", 0.0},
                   {"seed_resize_from_h", 0},
                   {"seed_resize_from_w", 0},
                   {"sampler_name", "Euler a"},
                   {"sampler_index", "Euler a"},
                   {"scheduler", "automatic"},
                   {"batch_size", 1},
                   {"n_iter", 2},
                   {"steps", 2},
                   {"cfg_scale", 7.0},
                   {"width", 64},
                   {"height", 64},
                   {"restore_faces", false},
                   {"tiling", false},
                   {"negative_prompt", ""},
                   {"eta", 1.0},
                   {"s_churn", 0},
                   {"s_tmax", 0},
                   {"s_tmin", 0},
                   {"s_noise", 1},
                   {"enable_hr", false},
                   {"hr_checkpoint_name", nullptr},
                   {"hr_sampler_name", nullptr},
                   {"hr_scheduler", nullptr},
                   {"override_settings", json::object()},
                   {"override_settings_restore_afterwards", true},
                   {"script_args", json::array()},
                   {"script_name", nullptr},
                   {"send_images", true},
                   {"save_images", false},
                   {"alwayson_scripts", json::object()}};
  auto [ws, wares] = post("/sdapi/v1/txt2img", wa);
  ASSERT_EQ(ws, 200) << wares;
  EXPECT_EQ(wares["images"].size(), 2u);
  EXPECT_EQ(json::parse(wares["info"].get<std::string>())["all_seeds"], json({3, 4}));
}

TEST_F(A1111Http, OptionsRoundTripAndPersist) {
  auto [s, options] = get("/sdapi/v1/options");
  ASSERT_EQ(s, 200);
  // Open WebUI posts the whole object back.
  EXPECT_EQ(post("/sdapi/v1/options", options).first, 200);
  // A1111's own test: flip send_seed, read it back, restore.
  EXPECT_EQ(post("/sdapi/v1/options", json{{"send_seed", false}}).first, 200);
  EXPECT_EQ(get("/sdapi/v1/options").second["send_seed"], false);
  std::ifstream f(dir_->file("settings.json"));
  const json saved = json::parse(f);
  EXPECT_EQ(saved["send_seed"], false);  // persisted in the settings file
  EXPECT_EQ(post("/sdapi/v1/options", json{{"send_seed", true}}).first, 200);
  // Refusals leave everything as it was.
  auto [bs, bad] = post("/sdapi/v1/options", json{{"send_seed", false}, {"samples_format", "jpg"}});
  EXPECT_EQ(bs, 422);
  EXPECT_EQ(bad["detail"][0]["loc"], json({"body", "samples_format"}));
  EXPECT_EQ(get("/sdapi/v1/options").second["send_seed"], true);
  auto [ks, key] = post("/sdapi/v1/options", json{{"no_such_option", 1}});
  EXPECT_EQ(ks, 500);
  EXPECT_EQ(key["error"], "KeyError");
  auto [ns, notfound] =
      post("/sdapi/v1/options", json{{"sd_model_checkpoint", "nope.safetensors"}});
  EXPECT_EQ(ns, 500);
  EXPECT_EQ(notfound["error"], "RuntimeError");
  auto [ps, path] =
      post("/sdapi/v1/options", json{{"sd_model_checkpoint", "../model.safetensors"}});
  EXPECT_EQ(ps, 422);
  EXPECT_EQ(get("/sdapi/v1/options").second["sd_model_checkpoint"], options["sd_model_checkpoint"]);
}

TEST_F(A1111Http, BadInputs) {
  auto [s1, b1] = post_raw("/sdapi/v1/txt2img", std::string("{\"prompt\": "));
  EXPECT_EQ(s1, 422);
  EXPECT_EQ(b1["detail"][0]["type"], "value_error.jsondecode");
  auto [s2, b2] = post("/sdapi/v1/txt2img", json{{"steps", "many"}});
  EXPECT_EQ(s2, 422);
  EXPECT_EQ(b2["detail"][0]["loc"], json({"body", "steps"}));
  auto [s3, b3] = post("/sdapi/v1/txt2img", json{{"sampler_name", "Heun++ 9M"}});
  EXPECT_EQ(s3, 400);
  EXPECT_EQ(b3["detail"], "Sampler not found");
  auto [s4, b4] = post("/sdapi/v1/img2img", json{{"prompt", "x"}});
  EXPECT_EQ(s4, 404);
  EXPECT_EQ(b4["detail"], "Init image not found");
  auto [s5, b5] = post("/sdapi/v1/txt2img",
                       json{{"override_settings", {{"sd_model_checkpoint", "/etc/passwd"}}}});
  EXPECT_EQ(s5, 422);
  auto [s6, b6] =
      post("/sdapi/v1/txt2img",
           json{{"prompt", "<lora:missing:1>"}, {"steps", 1}, {"width", 64}, {"height", 64}});
  EXPECT_EQ(s6, 404) << b6;  // no such LoRA: the engine's NotFound
  auto [s7, b7] = post("/sdapi/v1/img2img", json{{"init_images", {"bm90IGFuIGltYWdl"}}});
  EXPECT_EQ(s7, 500);
  EXPECT_EQ(b7["detail"], "Invalid encoded image");
  auto [s8, b8] = post("/sdapi/v1/png-info", json{{"image", "bm90IGFuIGltYWdl"}});
  EXPECT_EQ(s8, 500);
  auto [s9, b9] =
      post_raw("/sdapi/v1/txt2img", std::string("prompt=x"), "application/x-www-form-urlencoded");
  EXPECT_EQ(s9, 422);
  // The server is still fine.
  EXPECT_EQ(get("/sdapi/v1/progress").first, 200);
}

TEST_F(A1111Http, PngInfoReadsWhatTxt2ImgWrote) {
  auto [s, res] =
      post("/sdapi/v1/txt2img",
           json{{"prompt", "a tree"}, {"seed", 11}, {"steps", 2}, {"width", 64}, {"height", 64}});
  ASSERT_EQ(s, 200) << res;
  auto [ps, info] =
      post("/sdapi/v1/png-info",
           json{{"image", "data:image/png;base64," + res["images"][0].get<std::string>()}});
  ASSERT_EQ(ps, 200) << info;
  EXPECT_EQ(info["parameters"]["Prompt"], "a tree");
  EXPECT_EQ(info["parameters"]["Seed"], "11");
  EXPECT_EQ(info["parameters"]["Steps"], "2");
  EXPECT_EQ(info["info"], json::parse(res["info"].get<std::string>())["infotexts"][0]);
  EXPECT_EQ(post("/sdapi/v1/png-info", json{{"image", ""}}).second["info"], "");
}

// `sdc generate` on the tiny model with `flags` under A1111's conventions (the CLI's default); its
// image.
io::Image cli_image(std::vector<std::string> flags) {
  test::TempDir out;
  flags.insert(flags.end(), {"-o", out.file("cli.png")});
  const std::vector<std::string> args = test::tiny_generate_a1111(flags);
  const test::CommandResult cli = test::run_sdc(args);
  EXPECT_EQ(cli.exit_code, 0) << cli.err;
  return cli.exit_code == 0 ? io::read_image(out.file("cli.png")) : io::Image();
}

TEST_F(A1111Http, VariationSeedsAndHiresFixAreTheCliImages) {
  const json base = {{"prompt", "a boat"}, {"seed", 5},    {"steps", 2},
                     {"width", 64},        {"height", 64}, {"sampler_name", "Euler a"},
                     {"cfg_scale", 5}};
  json variation = base;
  variation["subseed"] = 9;
  variation["subseed_strength"] = 0.3;
  variation["seed_resize_from_w"] = 96;
  variation["seed_resize_from_h"] = 64;
  auto [vs, v] = post("/sdapi/v1/txt2img", variation);
  ASSERT_EQ(vs, 200) << v;
  const json vinfo = json::parse(v["info"].get<std::string>());
  EXPECT_EQ(vinfo["subseed"], 9);
  EXPECT_NE(vinfo["infotexts"][0].get<std::string>().find("Variation seed: 9"), std::string::npos)
      << vinfo["infotexts"][0];
  const std::vector<uint8_t> vpng = decode_png_b64(v["images"][0]);
  const std::vector<std::string> common = {"-p",        "a boat",  "--seed",      "5",  "--steps",
                                           "2",         "-W",      "64",          "-H", "64",
                                           "--sampler", "euler_a", "--cfg-scale", "5"};
  std::vector<std::string> vflags = common;
  vflags.insert(vflags.end(),
                {"--subseed", "9", "--subseed-strength", "0.3", "--seed-resize-from", "96", "64"});
  EXPECT_EQ(io::decode_image(vpng.data(), vpng.size(), "api").rgb, cli_image(vflags).rgb);

  json hires = base;
  hires["enable_hr"] = true;
  hires["hr_scale"] = 1.5;
  hires["denoising_strength"] = 0.6;
  hires["hr_second_pass_steps"] = 2;
  hires["hr_upscaler"] = "Latent";
  hires["hr_sampler_name"] = nullptr;  // webuiapi sends nulls
  auto [hs, h] = post("/sdapi/v1/txt2img", hires);
  ASSERT_EQ(hs, 200) << h;
  const std::vector<uint8_t> hpng = decode_png_b64(h["images"][0]);
  const io::Image himg = io::decode_image(hpng.data(), hpng.size(), "api");
  EXPECT_EQ(himg.width, 96);
  std::vector<std::string> hflags = common;
  hflags.insert(hflags.end(), {"--hires-scale", "1.5", "--hires-denoise", "0.6", "--hires-steps",
                               "2", "--hires-upscaler", "latent"});
  EXPECT_EQ(himg.rgb, cli_image(hflags).rgb);
  // Denoising strength 0 (A1111's own test sends it): a zero-step second pass, 200.
  json zero = hires;
  zero["denoising_strength"] = 0;
  auto [zs, z] = post("/sdapi/v1/txt2img", zero);
  EXPECT_EQ(zs, 200) << z;
  // Upscalers sdc lacks and a second-pass sampler of its own are refused (422).
  for (const auto& [key, value] :
       std::vector<std::pair<std::string, json>>{{"hr_upscaler", "R-ESRGAN 4x+"},
                                                 {"hr_sampler_name", "DDIM"},
                                                 {"subseed_strength", 1.5}}) {
    json bad = hires;
    bad[key] = value;
    auto [bs, b] = post("/sdapi/v1/txt2img", bad);
    EXPECT_EQ(bs, 422) << key << ": " << b;
    EXPECT_EQ(b["detail"][0]["loc"], json({"body", key})) << b;
  }
  EXPECT_EQ(get("/sdapi/v1/upscalers").second[0]["name"], "Lanczos");
  EXPECT_EQ(get("/sdapi/v1/latent-upscale-modes").second[0]["name"], "Latent");
}

// img2img with a mask as the A1111 test suite and the WebUI send it (blur 4, whole picture,
// inverted or not) and with the API's defaults ("Only masked", masked content "fill"): 200, and
// the same pixels as `sdc generate` with the matching flags.
TEST_F(A1111Http, Img2ImgWithAMaskIsTheCliInpainting) {
  test::TempDir dir;
  io::Image init(96, 64), mask(96, 64);
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 96; ++x) {
      uint8_t* p = init.pixel(x, y);
      p[0] = uint8_t(x * 2);
      p[1] = uint8_t(y * 3);
      p[2] = uint8_t(128 + x - y);
      std::fill_n(mask.pixel(x, y), 3, uint8_t(x >= 40 && x < 60 && y >= 20 && y < 44 ? 255 : 0));
    }
  io::write_png(dir.file("init.png"), init);
  io::write_png(dir.file("mask.png"), mask);
  auto b64 = [](const io::Image& im) { return encode_base64(io::encode_png(im)); };
  const json base = {{"prompt", "a boat"},
                     {"seed", 6},
                     {"steps", 3},
                     {"width", 64},
                     {"height", 64},
                     {"sampler_name", "Euler a"},
                     {"denoising_strength", 0.75},
                     {"init_images", {"data:image/png;base64," + b64(init)}},
                     {"mask", "data:image/png;base64," + b64(mask)}};
  const std::vector<std::string> common = {"-p",
                                           "a boat",
                                           "--seed",
                                           "6",
                                           "--steps",
                                           "3",
                                           "-W",
                                           "64",
                                           "-H",
                                           "64",
                                           "--sampler",
                                           "euler_a",
                                           "--strength",
                                           "0.75",
                                           "--resize-mode",
                                           "resize",
                                           "--init-image",
                                           dir.file("init.png"),
                                           "--mask",
                                           dir.file("mask.png")};
  auto api_image = [&](const json& body) {
    auto [status, res] = post("/sdapi/v1/img2img", body);
    EXPECT_EQ(status, 200) << res;
    if (status != 200) return io::Image();
    const std::vector<uint8_t> png = decode_png_b64(res["images"][0]);
    return io::decode_image(png.data(), png.size(), "api");
  };

  json web = base;  // A1111's own test_img2img body with a mask, inverted
  web["mask_blur"] = 4;
  web["inpaint_full_res"] = false;
  web["inpainting_mask_invert"] = true;
  web["include_init_images"] = false;
  std::vector<std::string> flags = common;
  flags.insert(flags.end(), {"--mask-blur", "4", "--mask-invert", "--masked-content", "fill"});
  const io::Image a = api_image(web);
  EXPECT_EQ(a.width, 64);  // whole picture: the output size
  EXPECT_EQ(a.rgb, cli_image(flags).rgb);

  // The API's defaults: "Only masked", padding 0, blur 4, fill; the result has the init's size.
  const io::Image d = api_image(base);
  EXPECT_EQ(d.width, 96);
  EXPECT_EQ(d.height, 64);
  flags = common;
  flags.insert(flags.end(), {"--mask-blur", "4", "--inpaint-full-res", "--inpaint-padding", "0",
                             "--masked-content", "fill"});
  EXPECT_EQ(d.rgb, cli_image(flags).rgb);
  auto [status, res] = post("/sdapi/v1/img2img", base);
  ASSERT_EQ(status, 200);
  const json info = json::parse(res["info"].get<std::string>());
  EXPECT_FALSE(info["is_using_inpainting_conditioning"].get<bool>());
  EXPECT_NE(info["infotexts"][0].get<std::string>().find(
                "Mask blur: 4, Inpaint area: Only masked, Masked area padding: 0, Masked content: "
                "fill"),
            std::string::npos)
      << info["infotexts"][0];
}

TEST_F(A1111Http, TaesdDecodeMethodAndPreviewTypeAsA1111Options) {
  const json base = {
      {"prompt", "a tree"}, {"seed", 11}, {"steps", 2}, {"width", 64}, {"height", 64}};
  json taesd = base;
  taesd["override_settings"] = {{"sd_vae_decode_method", "TAESD"}};
  auto [s, res] = post("/sdapi/v1/txt2img", taesd);
  ASSERT_EQ(s, 200) << res;
  const std::string info = json::parse(res["info"].get<std::string>())["infotexts"][0];
  EXPECT_NE(info.find("VAE Decoder: TAESD"), std::string::npos) << info;
  auto [fs, full] = post("/sdapi/v1/txt2img", base);
  ASSERT_EQ(fs, 200) << full;
  EXPECT_NE(full["images"][0], res["images"][0]);  // another decoder, another image
  EXPECT_EQ(json::parse(full["info"].get<std::string>())["infotexts"][0].get<std::string>().find(
                "VAE Decoder"),
            std::string::npos);
  // Only the methods sdc implements are accepted, in /options and override_settings alike.
  auto [ns, nn] = post("/sdapi/v1/options", json{{"show_progress_type", "Approx NN"}});
  EXPECT_EQ(ns, 422);
  EXPECT_EQ(nn["detail"][0]["loc"], json({"body", "show_progress_type"}));
  EXPECT_EQ(get("/sdapi/v1/options").second["show_progress_type"], "Approx cheap");
  json bad = base;
  bad["override_settings"] = {{"sd_vae_encode_method", "Tiny"}};
  EXPECT_EQ(post("/sdapi/v1/txt2img", bad).first, 422);
  EXPECT_EQ(post("/sdapi/v1/options", json{{"show_progress_type", "TAESD"}}).first, 200);
  EXPECT_EQ(post("/sdapi/v1/txt2img", base).first, 200);  // TAESD previews
  EXPECT_EQ(post("/sdapi/v1/options", json{{"show_progress_type", "Approx cheap"}}).first, 200);
}

TEST_F(A1111Http, AuthAsA1111WithTheLoraRoutesPublic) {
  ServerOptions so;
  so.port = 0;
  so.api_auth = {{"user", "secret"}};
  HttpServer guarded(*engine_, so);
  guarded.bind();
  std::thread t([&] { guarded.run(); });
  httplib::Client c("127.0.0.1", guarded.port());
  auto r = c.Get("/sdapi/v1/options");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(json::parse(r->body)["detail"], "Not authenticated");
  c.set_basic_auth("user", "wrong");
  r = c.Get("/sdapi/v1/options");
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(json::parse(r->body)["detail"], "Incorrect username or password");
  c.set_basic_auth("user", "secret");
  r = c.Get("/sdapi/v1/options");
  EXPECT_EQ(r->status, 200);
  // The Lora extension's routes are outside --api-auth in A1111.
  httplib::Client anonymous("127.0.0.1", guarded.port());
  r = anonymous.Get("/sdapi/v1/loras");
  EXPECT_EQ(r->status, 200);
  r = anonymous.Post("/sdapi/v1/refresh-loras", "", "application/json");
  EXPECT_EQ(r->status, 200);
  r = anonymous.Post("/sdapi/v1/txt2img", "{}", "application/json");
  EXPECT_EQ(r->status, 401);
  guarded.stop();
  t.join();
}

TEST_F(A1111Http, ProgressWhileRunningAndInterruptReturnsThePartialResult) {
  // A long job: 4 runs of 2 images, 150 steps each (interrupted long before its end).
  std::pair<int, json> result;
  std::thread generating([&] {
    result = post("/sdapi/v1/txt2img", json{{"prompt", "a long job"},
                                            {"seed", 1},
                                            {"steps", 150},
                                            {"batch_size", 2},
                                            {"n_iter", 4},
                                            {"width", 64},
                                            {"height", 64}});
  });
  // Whatever happens below, the generating request is ended and joined.
  struct Join {
    std::thread& t;
    ~Join() {
      post_raw("/sdapi/v1/interrupt", "");
      if (t.joinable()) t.join();
    }
  } join{generating};
  json running;
  for (int i = 0; i < 12000; ++i) {  // at most 120 s
    running = get("/sdapi/v1/progress").second;
    // show_progress_every_n_steps is 10: a preview comes after the 10th step.
    if (running["state"]["sampling_step"].get<int>() > 0 && !running["current_image"].is_null())
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_GT(running["state"]["sampling_step"].get<int>(), 0) << running;
  EXPECT_EQ(running["state"]["job"], "scripts_txt2img");
  EXPECT_EQ(running["state"]["job_count"], 4);
  EXPECT_EQ(running["state"]["sampling_steps"], 150);
  EXPECT_GT(running["progress"].get<double>(), 0.0);
  EXPECT_LE(running["progress"].get<double>(), 1.0);
  EXPECT_TRUE(running["textinfo"].is_string());
  ASSERT_TRUE(running["current_image"].is_string()) << running;
  const std::vector<uint8_t> preview = decode_png_b64(running["current_image"]);
  EXPECT_EQ(io::sniff_image_format(preview.data(), preview.size()), io::ImageFormat::Png);
  EXPECT_TRUE(get("/sdapi/v1/progress?skip_current_image=true").second["current_image"].is_null());
  EXPECT_EQ(post_raw("/sdapi/v1/interrupt", "").second, json::object());
  generating.join();
  // A1111 answers the interrupted request with 200 and the images reached so far.
  ASSERT_EQ(result.first, 200) << result.second;
  const size_t n = result.second["images"].size();
  EXPECT_GE(n, 2u);
  EXPECT_LT(n, 8u);
  const json info = json::parse(result.second["info"].get<std::string>());
  EXPECT_EQ(info["all_seeds"].size(), n);
  EXPECT_EQ(get("/sdapi/v1/progress").second["state"]["job_count"], 0);
}

}  // namespace
}  // namespace sdc::server::a1111
