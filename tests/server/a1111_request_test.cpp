// txt2img/img2img bodies → sdc generations: A1111's defaults, coercion, the bodies real clients
// send (A1111-API.md §2), and every refusal with its status and error shape.
#include <gtest/gtest.h>

#include <zlib.h>

#include "io/image.h"
#include "server/a1111/api_error.h"
#include "server/a1111/generation_body.h"
#include "server/a1111/image_base64.h"

namespace sdc::server::a1111 {
namespace {

using nlohmann::json;

A1111Generation txt2img(const json& body) {
  return parse_generation(body.dump(), "application/json", GenerationMode::Txt2Img);
}
A1111Generation img2img(const json& body) {
  return parse_generation(body.dump(), "application/json", GenerationMode::Img2Img);
}

// The 422 detail list of a refused body (fails the test when it is accepted).
json detail_of(const std::string& body, GenerationMode mode = GenerationMode::Txt2Img,
               const std::string& content_type = "application/json") {
  try {
    parse_generation(body, content_type, mode);
  } catch (const ValidationError& e) {
    return e.body()["detail"];
  }
  ADD_FAILURE() << "accepted: " << body;
  return json();
}
json detail_of(const json& body, GenerationMode mode = GenerationMode::Txt2Img) {
  return detail_of(body.dump(), mode);
}

// {status, body} of an ApiError.
std::pair<int, json> api_error_of(const json& body, GenerationMode mode = GenerationMode::Txt2Img) {
  try {
    parse_generation(body.dump(), "application/json", mode);
  } catch (const ApiError& e) {
    return {e.status(), e.body()};
  } catch (const ValidationError& e) {
    ADD_FAILURE() << "422 instead: " << e.what();
    return {422, e.body()};
  }
  ADD_FAILURE() << "accepted: " << body;
  return {0, json()};
}

std::string small_png_base64(int w = 64, int h = 64) {
  io::Image img(w, h);
  for (size_t i = 0; i < img.rgb.size(); ++i) img.rgb[i] = uint8_t(i * 7);
  return encode_base64(io::encode_png(img));
}

TEST(A1111Request, EmptyBodyGivesA1111Defaults) {
  const A1111Generation g = txt2img(json::object());
  EXPECT_EQ(g.request.prompt, "");
  EXPECT_EQ(g.request.steps, 50);  // A1111's API default, not the UI's 20
  EXPECT_EQ(g.request.cfg_scale, 7.0f);
  EXPECT_EQ(g.request.width, 512);
  EXPECT_EQ(g.request.seed, -1);
  EXPECT_EQ(g.request.batch_size, 1);
  EXPECT_EQ(g.request.batch_count, 1);
  EXPECT_EQ(g.sampler.display_name, "Euler");  // sampler_index's default
  EXPECT_EQ(g.request.sampler, "euler");
  EXPECT_FALSE(g.request.sampler_set);
  EXPECT_FALSE(g.request.steps_set);
  EXPECT_TRUE(g.send_images);
  EXPECT_FALSE(g.save_images);
  // "parameters" echoes every field with its default.
  EXPECT_EQ(g.parameters["steps"], 50);
  EXPECT_EQ(g.parameters["sampler_index"], "Euler");
  EXPECT_EQ(g.parameters["denoising_strength"], nullptr);
  EXPECT_EQ(g.parameters["hr_scale"], 2.0);
  EXPECT_EQ(g.parameters["alwayson_scripts"], json::object());
  EXPECT_FALSE(g.parameters.contains("init_images"));
  const A1111Generation i = img2img({{"init_images", {small_png_base64()}}});
  EXPECT_EQ(i.parameters["denoising_strength"], 0.75);
  EXPECT_EQ(i.request.strength, 0.75);
  EXPECT_EQ(i.request.resize_mode, "resize");       // resize_mode 0 = "Just resize"
  EXPECT_EQ(i.parameters["init_images"], nullptr);  // not echoed unless include_init_images
  ASSERT_TRUE(i.request.init_image_data.has_value());
  EXPECT_EQ(i.request.init_image_data->width, 64);
}

TEST(A1111Request, CoercesAndIgnoresUnknownKeys) {
  const A1111Generation g = txt2img({{"steps", "20"},
                                     {"cfg_scale", 7},
                                     {"width", "256"},
                                     {"height", 256.0},
                                     {"seed", "42"},
                                     {"n_iter", true},
                                     {"restore_faces", "false"},
                                     {"url", "http://127.0.0.1:7860"},
                                     {"auth", ""},
                                     {"clip_skip", 2},
                                     {"hr_sampler_name", nullptr},
                                     {"eta", nullptr},
                                     {"made_up", {{"x", 1}}}});
  EXPECT_EQ(g.request.steps, 20);
  EXPECT_TRUE(g.request.steps_set);
  EXPECT_EQ(g.request.width, 256);
  EXPECT_EQ(g.request.height, 256);
  EXPECT_EQ(g.request.seed, 42);
  EXPECT_EQ(g.request.batch_count, 1);
  EXPECT_EQ(g.request.clip_skip, 1);  // clip_skip is not an A1111 field: only override_settings
  EXPECT_EQ(g.parameters["cfg_scale"], 7.0);
  EXPECT_TRUE(g.parameters["cfg_scale"].is_number_float());
  EXPECT_EQ(g.parameters["steps"], 20);
  EXPECT_FALSE(g.parameters.contains("made_up"));
  EXPECT_FALSE(g.parameters.contains("url"));
}

TEST(A1111Request, SillyTavernBody) {
  // generateAutoImage (staging 2024-10), forwarded unchanged by the ST server.
  const json body = {
      {"url", "http://127.0.0.1:7860"},
      {"auth", ""},
      {"prompt", "a cat, <lora:detail:0.5>"},
      {"negative_prompt", "blurry"},
      {"sampler_name", "DDIM"},
      {"scheduler", "normal"},
      {"steps", 20},
      {"cfg_scale", 7},
      {"width", 512},
      {"height", 512},
      {"restore_faces", false},
      {"enable_hr", false},
      {"hr_upscaler", "Latent"},
      {"hr_scale", 2},
      {"denoising_strength", 0.7},
      {"hr_second_pass_steps", 0},
      {"override_settings", {{"CLIP_stop_at_last_layers", 2}, {"sd_vae", "Automatic"}}},
      {"override_settings_restore_afterwards", true},
      {"clip_skip", 2},
      {"save_images", true},
      {"send_images", true},
      {"do_not_save_grid", false},
      {"do_not_save_samples", false}};
  const A1111Generation g = txt2img(body);
  EXPECT_EQ(g.request.prompt, "a cat, ");
  ASSERT_EQ(g.loras.size(), 1u);
  EXPECT_EQ(g.loras[0], (LoraTag{"detail", 0.5}));
  EXPECT_EQ(g.request.sampler, "ddim");  // DDIM ignores the scheduler, as in A1111
  EXPECT_EQ(g.request.clip_skip, 2);
  EXPECT_EQ(g.vae, "Automatic");
  EXPECT_TRUE(g.save_images);
  EXPECT_EQ(g.override_settings["CLIP_stop_at_last_layers"], 2);
  // A1111 reports the prompt as sent, tags included.
  EXPECT_EQ(g.parameters["prompt"], "a cat, <lora:detail:0.5>");
}

TEST(A1111Request, KoboldLiteBody) {
  json body = {{"prompt", "a lighthouse"},
               {"seed", 123456},
               {"sampler_name", "Euler a"},
               {"batch_size", 1},
               {"n_iter", 1},
               {"steps", 20},
               {"cfg_scale", 7},
               {"width", 512},
               {"height", 512},
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
                {{"sd_model_checkpoint", "tiny/model.safetensors [abcdef0123]"},
                 {"eta_noise_seed_delta", 0},
                 {"CLIP_stop_at_last_layers", 1},
                 {"ddim_discretize", "uniform"},
                 {"img2img_fix_steps", false},
                 {"sd_hypernetwork", "None"},
                 {"inpainting_mask_weight", 1},
                 {"initial_noise_multiplier", 1},
                 {"comma_padding_backtrack", 20}}},
               {"scheduler", "karras"}};
  A1111Generation g = txt2img(body);
  // eta is A1111's per-request override: Euler a with eta 0 (no ancestral noise) as A1111 runs it.
  EXPECT_EQ(g.request.sampler, "euler_a");
  ASSERT_TRUE(g.request.eta.has_value());
  EXPECT_EQ(*g.request.eta, 0.0);
  EXPECT_EQ(g.request.scheduler, "karras");
  EXPECT_EQ(g.checkpoint, "tiny/model.safetensors [abcdef0123]");
  EXPECT_EQ(g.request.seed, 123456);
  // img2img: raw base64 (prefix stripped by Kobold Lite) and a strength.
  body["init_images"] = {small_png_base64(128, 96)};
  body["denoising_strength"] = 0.6;
  g = img2img(body);
  ASSERT_TRUE(g.request.init_image_data.has_value());
  EXPECT_EQ(g.request.init_image_data->width, 128);
  EXPECT_EQ(g.request.init_image_data->height, 96);
  EXPECT_DOUBLE_EQ(g.request.strength, 0.6);
}

TEST(A1111Request, WebuiapiBodies) {
  // webuiapi sends every field, many as null, and both sampler_name and sampler_index.
  json body = {{"enable_hr", false},
               {"denoising_strength", 0.7},
               {"firstphase_width", 0},
               {"firstphase_height", 0},
               {"hr_scale", 2},
               {"hr_upscaler", "Latent"},
               {"hr_second_pass_steps", 0},
               {"hr_resize_x", 0},
               {"hr_resize_y", 0},
               {"hr_checkpoint_name", nullptr},
               {"hr_sampler_name", nullptr},
               {"hr_scheduler", nullptr},
               {"hr_prompt", ""},
               {"hr_negative_prompt", ""},
               {"prompt", "a fox"},
               {"styles", json::array()},
               {"seed", -1},
               {"subseed", -1},
               {"subseed_strength", 0.0},
               {"seed_resize_from_h", 0},
               {"seed_resize_from_w", 0},
               {"sampler_name", "Euler a"},
               {"sampler_index", "Euler a"},
               {"scheduler", "automatic"},
               {"batch_size", 2},
               {"n_iter", 3},
               {"steps", 20},
               {"cfg_scale", 7.0},
               {"width", 320},
               {"height", 256},
               {"restore_faces", false},
               {"tiling", false},
               {"do_not_save_samples", false},
               {"do_not_save_grid", false},
               {"negative_prompt", ""},
               {"eta", 1.0},
               {"s_churn", 0},
               {"s_tmax", 0},
               {"s_tmin", 0},
               {"s_noise", 1},
               {"override_settings", json::object()},
               {"override_settings_restore_afterwards", true},
               {"script_args", json::array()},
               {"script_name", nullptr},
               {"send_images", true},
               {"save_images", false},
               {"alwayson_scripts", json::object()}};
  A1111Generation g = txt2img(body);
  EXPECT_EQ(g.request.sampler, "euler_a");
  EXPECT_EQ(g.request.scheduler, "automatic");
  EXPECT_EQ(g.sampler.schedule_label, "Automatic");
  EXPECT_EQ(g.request.batch_size, 2);
  EXPECT_EQ(g.request.batch_count, 3);
  EXPECT_EQ(g.request.width, 320);
  // img2img: data-URL init image and mask; webuiapi's mask is null unless one is given.
  for (const char* k :
       {"enable_hr", "firstphase_width", "firstphase_height", "hr_scale", "hr_upscaler",
        "hr_second_pass_steps", "hr_resize_x", "hr_resize_y", "hr_checkpoint_name",
        "hr_sampler_name", "hr_scheduler", "hr_prompt", "hr_negative_prompt"})
    body.erase(k);
  body["init_images"] = {"data:image/png;base64," + small_png_base64()};
  body["resize_mode"] = 1;
  body["image_cfg_scale"] = 1.5;
  body["mask"] = nullptr;
  body["mask_blur"] = 4;
  body["inpainting_fill"] = 0;
  body["inpaint_full_res"] = true;
  body["inpaint_full_res_padding"] = 0;
  body["inpainting_mask_invert"] = 0;
  body["initial_noise_multiplier"] = 1;
  body["include_init_images"] = false;
  g = img2img(body);
  EXPECT_EQ(g.request.resize_mode, "crop");
  EXPECT_DOUBLE_EQ(g.request.strength, 0.7);
  EXPECT_EQ(g.parameters["mask_blur_x"], 4);
}

TEST(A1111Request, OpenWebUIAndA1111TestBodies) {
  A1111Generation g = txt2img({{"prompt", "x"},
                               {"batch_size", 2},
                               {"width", 512},
                               {"height", 512},
                               {"steps", 25},
                               {"negative_prompt", "y"}});
  EXPECT_EQ(g.request.batch_size, 2);
  EXPECT_EQ(g.request.steps, 25);
  // A1111's test_txt2img base body: sampler_index instead of sampler_name.
  const json base = {{"batch_size", 1},
                     {"cfg_scale", 7},
                     {"denoising_strength", 0},
                     {"enable_hr", false},
                     {"eta", 0},
                     {"firstphase_height", 0},
                     {"firstphase_width", 0},
                     {"height", 64},
                     {"n_iter", 1},
                     {"negative_prompt", ""},
                     {"prompt", "example prompt"},
                     {"restore_faces", false},
                     {"s_churn", 0},
                     {"s_noise", 1},
                     {"s_tmax", 0},
                     {"s_tmin", 0},
                     {"sampler_index", "Euler a"},
                     {"seed", -1},
                     {"seed_resize_from_h", -1},
                     {"seed_resize_from_w", -1},
                     {"steps", 3},
                     {"styles", json::array()},
                     {"subseed", -1},
                     {"subseed_strength", 0},
                     {"tiling", false},
                     {"width", 64}};
  g = txt2img(base);
  EXPECT_EQ(g.sampler.display_name, "Euler a");
  EXPECT_EQ(g.request.sampler, "euler_a");  // with eta 0, A1111's override
  EXPECT_EQ(g.request.eta.value_or(-1), 0.0);
  EXPECT_TRUE(g.request.sampler_set);
  for (const char* s : {"DDIM"}) {
    json b = base;
    b["sampler_index"] = s;
    EXPECT_EQ(txt2img(b).request.sampler, "ddim");
  }
  // img2img test body: inpainting_mask_invert sent as false for an int field; mask null.
  json i = base;
  i["init_images"] = {"data:image/png;base64," + small_png_base64()};
  i["denoising_strength"] = 0.75;
  i["mask"] = nullptr;
  i["mask_blur"] = 4;
  i["inpaint_full_res"] = false;
  i["inpainting_mask_invert"] = false;
  i["override_settings"] = json::object();
  i["include_init_images"] = false;
  g = img2img(i);
  EXPECT_EQ(g.parameters["inpainting_mask_invert"], 0);
}

TEST(A1111Request, SamplerNamesAliasesAndSuffixes) {
  const auto sampler_of = [](const json& extra) {
    json b = {{"prompt", "x"}};
    b.update(extra);
    const A1111Generation g = txt2img(b);
    return g.request.sampler + "/" + g.request.scheduler + "/" + g.sampler.schedule_label;
  };
  EXPECT_EQ(sampler_of({{"sampler_name", "DPM++ 2M Karras"}}), "dpmpp_2m/karras/Karras");
  // Automatic is the sampler's own schedule: Karras for DPM++ 2M (the infotext says so).
  EXPECT_EQ(sampler_of({{"sampler_name", "DPM++ 2M"}}), "dpmpp_2m/automatic/Karras");
  EXPECT_EQ(sampler_of({{"sampler_name", "k_euler_a"}}), "euler_a/automatic/Automatic");
  EXPECT_EQ(sampler_of({{"sampler_name", "euler a"}}), "euler_a/automatic/Automatic");
  EXPECT_EQ(sampler_of({{"sampler_name", "euler_a"}, {"scheduler", "Karras"}}),
            "euler_a/karras/Karras");
  EXPECT_EQ(sampler_of({{"sampler_name", "Euler Karras"}, {"scheduler", "automatic"}}),
            "euler/karras/Karras");
  EXPECT_EQ(sampler_of({{"sampler_name", "LCM"}}), "lcm/automatic/Automatic");
  // sampler_name wins over sampler_index.
  EXPECT_EQ(sampler_of({{"sampler_name", "DDIM"}, {"sampler_index", "Euler a"}}),
            "ddim/automatic/Automatic");
}

TEST(A1111Request, UnknownSamplerOrSchedulerIs400NamingWhatExists) {
  auto [status, body] = api_error_of({{"sampler_name", "DPM++ 9M"}});
  EXPECT_EQ(status, 400);
  EXPECT_EQ(body["error"], "HTTPException");
  EXPECT_EQ(body["detail"], "Sampler not found");
  EXPECT_EQ(body["body"], "");
  const std::string listed = body["errors"].get<std::string>();
  for (const char* name : {"DPM++ 9M", "DPM++ 2M SDE", "Euler a", "UniPC", "LCM"})
    EXPECT_NE(listed.find(name), std::string::npos) << name << " in " << listed;
  std::tie(status, body) = api_error_of({{"sampler_name", "Euler"}, {"scheduler", "cosine"}});
  EXPECT_EQ(status, 400);
  EXPECT_EQ(body["detail"], "Scheduler not found");
  EXPECT_NE(body["errors"].get<std::string>().find("Karras"), std::string::npos);
  // Every A1111 scheduler resolves; the timestep samplers and LCM ignore it, as A1111.
  const A1111Generation lcm =
      txt2img({{"prompt", "x"}, {"sampler_name", "LCM"}, {"scheduler", "karras"}});
  EXPECT_EQ(lcm.request.scheduler, "automatic");
}

TEST(A1111Request, MalformedJsonWrongTypesAndNonObjects) {
  json d = detail_of(std::string("{\"prompt\": \"x\",}"));
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0]["type"], "value_error.jsondecode");
  EXPECT_EQ(d[0]["loc"][0], "body");
  EXPECT_TRUE(d[0]["loc"][1].is_number());
  EXPECT_NE(d[0]["msg"].get<std::string>().find("line 1 column"), std::string::npos);
  // Numbers beyond double range and absurd nesting: 422 as well, never a crash.
  EXPECT_EQ(detail_of(std::string(R"({"steps": 1e999})"))[0]["type"], "value_error.jsondecode");
  EXPECT_EQ(detail_of(R"({"comments": )" + std::string(100000, '[') + std::string(100000, ']') +
                      "}")[0]["type"],
            "value_error.jsondecode");
  d = detail_of(std::string("[1, 2]"));
  EXPECT_EQ(d, json::parse(R"([{"loc":["body"],"msg":"value is not a valid dict",
                                "type":"type_error.dict"}])"));
  d = detail_of(std::string(""));
  EXPECT_EQ(d[0]["type"], "value_error.missing");
  d = detail_of(std::string("prompt=x"), GenerationMode::Txt2Img,
                "application/x-www-form-urlencoded");
  EXPECT_EQ(d[0]["type"], "type_error.dict");
  // Every wrong field is reported, each at its place.
  d = detail_of({{"steps", "many"},
                 {"cfg_scale", "high"},
                 {"restore_faces", "perhaps"},
                 {"styles", "a"},
                 {"override_settings", "x"},
                 {"prompt", {1}}});
  ASSERT_EQ(d.size(), 6u);
  EXPECT_EQ(d[0], json::parse(R"({"loc":["body","prompt"],"msg":"str type expected",
                                 "type":"type_error.str"})"));
  EXPECT_EQ(d[1]["loc"], json({"body", "styles"}));
  EXPECT_EQ(d[1]["type"], "type_error.list");
  EXPECT_EQ(d[2]["loc"], json({"body", "steps"}));
  EXPECT_EQ(d[2]["msg"], "value is not a valid integer");
  EXPECT_EQ(d[3]["type"], "type_error.float");
  EXPECT_EQ(d[4]["type"], "type_error.bool");
  EXPECT_EQ(d[5]["type"], "type_error.dict");
}

TEST(A1111Request, CapsAreClear422s) {
  json d = detail_of({{"steps", 151},
                      {"batch_size", 9},
                      {"n_iter", 17},
                      {"width", 500},
                      {"height", 4096},
                      {"cfg_scale", 101},
                      {"seed", -2}});
  ASSERT_EQ(d.size(), 7u);
  EXPECT_EQ(d[0]["loc"], json({"body", "width"}));
  EXPECT_EQ(d[0]["msg"], "ensure this value is a multiple of 8");
  EXPECT_EQ(d[1]["loc"], json({"body", "height"}));
  EXPECT_EQ(d[1]["msg"], "ensure this value is less than or equal to 2048");
  EXPECT_EQ(d[2]["msg"], "ensure this value is less than or equal to 150");
  EXPECT_EQ(d[3]["loc"], json({"body", "batch_size"}));
  EXPECT_EQ(d[4]["loc"], json({"body", "n_iter"}));
  EXPECT_EQ(d[5]["loc"], json({"body", "cfg_scale"}));
  EXPECT_EQ(d[6]["msg"], "ensure this value is greater than or equal to -1");
  d = detail_of({{"width", 32}, {"steps", 0}});
  EXPECT_EQ(d[0]["msg"], "ensure this value is greater than or equal to 64");
  EXPECT_EQ(d[1]["msg"], "ensure this value is greater than or equal to 1");
  d = detail_of({{"prompt", std::string(20001, 'a')}});
  EXPECT_EQ(d[0]["type"], "value_error.any_str.max_length");
  d = detail_of({{"cfg_scale", "nan"}});
  EXPECT_EQ(d[0]["loc"], json({"body", "cfg_scale"}));
  // Counts past int64 (coerced to its largest value, found by the request fuzzer as a signed
  // overflow in the images cap) are refused by their own cap alone.
  d = detail_of(
      std::string(R"({"batch_size": "2", "n_iter": 122222222222222222222222222222222222})"));
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0]["loc"], json({"body", "n_iter"}));
  EXPECT_EQ(d[0]["type"], "value_error.number.not_le");
  d = detail_of(
      std::string(R"({"batch_size": 9223372036854775807, "n_iter": 9223372036854775807})"));
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0]["loc"], json({"body", "batch_size"}));
  EXPECT_EQ(d[1]["loc"], json({"body", "n_iter"}));
  // Custom limits apply.
  RequestLimits tight;
  tight.max_steps = 10;
  EXPECT_THROW(parse_generation(R"({"steps": 11})", "", GenerationMode::Txt2Img, tight),
               ValidationError);
}

TEST(A1111Request, UnsupportedFeaturesAreRefusedNotIgnored) {
  for (const json& b :
       {json{{"enable_hr", true}, {"denoising_strength", 0.5}, {"hr_upscaler", "ESRGAN_4x"}},
        json{{"enable_hr", true}}, json{{"restore_faces", true}}, json{{"tiling", true}},
        json{{"seed_resize_from_w", 8}, {"seed_resize_from_h", 64}},
        json{{"subseed_strength", 1.5}}, json{{"refiner_checkpoint", "sdxl-refiner"}},
        json{{"s_min_uncond", 0.5}}, json{{"override_settings", {{"samples_format", "jpg"}}}},
        json{{"override_settings", {{"eta_noise_seed_delta", 31337}}}},
        json{{"override_settings", {{"sd_vae", "vae-ft-mse.safetensors"}}}},
        json{{"override_settings", {{"no_such_option", 1}}}},
        json{{"override_settings", {{"CLIP_stop_at_last_layers", 13}}}}}) {
    const json d = detail_of(b);
    ASSERT_EQ(d.size(), 1u) << b;
    EXPECT_EQ(d[0]["loc"][0], "body") << b;
  }
  EXPECT_EQ(detail_of({{"enable_hr", true},
                       {"denoising_strength", 0.5},
                       {"hr_upscaler", "ESRGAN_4x"}})[0]["msg"],
            "sdc does not support the upscaler 'ESRGAN_4x' (sdc has Latent and Lanczos) yet");
  EXPECT_EQ(detail_of({{"enable_hr", true}})[0]["loc"], json({"body", "denoising_strength"}));
  EXPECT_EQ(detail_of({{"override_settings", {{"samples_format", "jpg"}}}})[0],
            json::parse(R"({"loc":["body","override_settings","samples_format"],
                            "msg":"sdc implements only png for samples_format",
                            "type":"value_error.not_supported","ctx":{"supported":"png"}})"));
  // Scripts: A1111's own 422 HTTPException for scripts it does not have.
  auto [status, body] = api_error_of({{"script_name", "sd upscale"}});
  EXPECT_EQ(status, 422);
  EXPECT_EQ(body["detail"], "Script 'sd upscale' not found");
  std::tie(status, body) = api_error_of({{"alwayson_scripts", {{"ADetailer", {{"args", {}}}}}}});
  EXPECT_EQ(status, 422);
  EXPECT_EQ(body["detail"], "always on script ADetailer not found");
}

TEST(A1111Request, Img2ImgInputs) {
  // No init image: A1111's 404.
  auto [status, body] = api_error_of({{"prompt", "x"}}, GenerationMode::Img2Img);
  EXPECT_EQ(status, 404);
  EXPECT_EQ(body["detail"], "Init image not found");
  std::tie(status, body) = api_error_of({{"init_images", json::array()}}, GenerationMode::Img2Img);
  EXPECT_EQ(status, 404);
  // A mask: A1111's inpainting options reach the request, with A1111's API defaults (blur 4,
  // "Only masked" with no padding, masked content "fill").
  A1111Generation g =
      img2img({{"init_images", {small_png_base64()}}, {"mask", small_png_base64()}});
  ASSERT_TRUE(g.request.mask_data.has_value());
  EXPECT_EQ(g.request.mask_data->width, 64);
  EXPECT_EQ(g.request.mask_blur, 4.0f);
  EXPECT_FALSE(g.request.mask_blur_y.has_value());
  EXPECT_TRUE(g.request.inpaint_full_res);
  EXPECT_EQ(g.request.inpaint_padding, 0);
  EXPECT_EQ(g.request.masked_content, "fill");
  EXPECT_FALSE(g.request.mask_invert);
  EXPECT_TRUE(g.request.mask_round);
  EXPECT_TRUE(g.parameters["mask"].is_null());  // not echoed without include_init_images
  // The WebUI-style body: mask_blur sets both, an int field sent as false, content "original".
  g = img2img({{"init_images", {small_png_base64()}},
               {"mask", small_png_base64()},
               {"mask_blur", 2},
               {"mask_blur_y", 9},
               {"inpainting_fill", 1},
               {"inpaint_full_res", false},
               {"inpaint_full_res_padding", 32},
               {"inpainting_mask_invert", true}});
  EXPECT_EQ(g.request.mask_blur, 2.0f);
  EXPECT_FALSE(g.request.mask_blur_y.has_value());
  EXPECT_FALSE(g.request.inpaint_full_res);
  EXPECT_EQ(g.request.inpaint_padding, 32);
  EXPECT_EQ(g.request.masked_content, "original");
  EXPECT_TRUE(g.request.mask_invert);
  g = img2img({{"init_images", {small_png_base64()}},
               {"mask", small_png_base64()},
               {"mask_blur_x", 3},
               {"mask_blur_y", 5},
               {"inpainting_fill", 2}});
  EXPECT_EQ(g.request.mask_blur, 3.0f);
  EXPECT_EQ(g.request.mask_blur_y, 5.0f);
  EXPECT_EQ(g.request.masked_content, "latent-noise");
  json d = detail_of(
      {{"init_images", {small_png_base64()}}, {"mask", small_png_base64()}, {"inpainting_fill", 4}},
      GenerationMode::Img2Img);
  EXPECT_EQ(d[0]["loc"], json({"body", "inpainting_fill"}));
  std::tie(status, body) = api_error_of(
      {{"init_images", {small_png_base64()}}, {"mask", "aGVsbG8="}}, GenerationMode::Img2Img);
  EXPECT_EQ(status, 500);
  EXPECT_EQ(body["detail"], "Invalid encoded image");
  EXPECT_NE(body["errors"].get<std::string>().find("mask"), std::string::npos);
  d = detail_of({{"init_images", {small_png_base64(), small_png_base64()}}},
                GenerationMode::Img2Img);
  EXPECT_EQ(d[0]["loc"], json({"body", "init_images"}));
  d = detail_of({{"init_images", {small_png_base64()}}, {"denoising_strength", 0}},
                GenerationMode::Img2Img);
  EXPECT_EQ(d[0]["msg"], "ensure this value is greater than 0");
  d = detail_of({{"init_images", {small_png_base64()}}, {"resize_mode", 3}},
                GenerationMode::Img2Img);
  EXPECT_EQ(d[0]["loc"], json({"body", "resize_mode"}));
  // Not an image / not base64 / a URL.
  std::tie(status, body) = api_error_of({{"init_images", {"aGVsbG8="}}}, GenerationMode::Img2Img);
  EXPECT_EQ(status, 500);
  EXPECT_EQ(body["detail"], "Invalid encoded image");
  EXPECT_NE(body["errors"].get<std::string>().find("init_images[0]"), std::string::npos);
  std::tie(status, body) = api_error_of({{"init_images", {"A"}}}, GenerationMode::Img2Img);
  EXPECT_EQ(body["errors"], "init_images[0]: not valid base64");
  std::tie(status, body) =
      api_error_of({{"init_images", {"http://169.254.169.254/x.png"}}}, GenerationMode::Img2Img);
  EXPECT_EQ(status, 500);
  EXPECT_EQ(body["detail"], "Requests not allowed");
}

// A PNG signature and IHDR claiming w×h (valid CRC), nothing else.
std::vector<uint8_t> png_header_only(uint32_t w, uint32_t h) {
  std::vector<uint8_t> b = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n',
                            0,    0,   0,   13,  'I',  'H',  'D',  'R'};
  for (uint32_t v : {w, h})
    for (int s : {24, 16, 8, 0}) b.push_back(uint8_t(v >> s));
  for (uint8_t v : {8, 2, 0, 0, 0}) b.push_back(v);
  const uLong crc = crc32(crc32(0, nullptr, 0), b.data() + 12, 17);
  for (int s : {24, 16, 8, 0}) b.push_back(uint8_t(crc >> s));
  return b;
}

TEST(A1111Request, DecodeBombRefusedFromTheHeader) {
  auto [status, body] = api_error_of(
      {{"init_images", {encode_base64(png_header_only(60000, 60000))}}}, GenerationMode::Img2Img);
  EXPECT_EQ(status, 500);
  EXPECT_EQ(body["detail"], "Invalid encoded image");
  EXPECT_NE(body["errors"].get<std::string>().find("found 60000x60000"), std::string::npos) << body;
  // A small image followed by a text chunk whose length claims 2 GB: refused from the chunk
  // header, before libpng would buffer that much (a fuzzer found the allocation).
  std::vector<uint8_t> lying = png_header_only(16, 16);
  lying.insert(lying.end(), {0x7f, 0xff, 0xff, 0x00, 't', 'E', 'X', 't', 'a', 'b'});
  std::tie(status, body) =
      api_error_of({{"init_images", {encode_base64(lying)}}}, GenerationMode::Img2Img);
  EXPECT_EQ(status, 500);
  EXPECT_NE(body["errors"].get<std::string>().find("the file ends early (truncated)"),
            std::string::npos)
      << body;
}

TEST(A1111Request, ModelNamesThatLeaveTheFolderAreRefused) {
  for (const char* name :
       {"../secret.safetensors", "/etc/passwd", "a/../../b", "..", "C:\\x", "sub\\..\\x"}) {
    const json d = detail_of({{"override_settings", {{"sd_model_checkpoint", name}}}});
    ASSERT_EQ(d.size(), 1u) << name;
    EXPECT_EQ(d[0]["type"], "value_error.model_name") << name;
  }
  EXPECT_EQ(txt2img({{"override_settings", {{"sd_model_checkpoint", "model..v2.safetensors"}}}})
                .checkpoint,
            "model..v2.safetensors");
}

TEST(A1111Request, InfotextFillsWhatTheRequestLeavesOut) {
  const A1111Generation g =
      txt2img({{"infotext",
                "a cat\nNegative prompt: dog\nSteps: 12, Sampler: DPM++ 2M, Schedule type: Karras, "
                "CFG scale: 5.5, Seed: 77, Size: 320x256, Clip skip: 2"},
               {"steps", 8}});
  EXPECT_EQ(g.request.prompt, "a cat");
  EXPECT_EQ(g.request.negative_prompt, "dog");
  EXPECT_EQ(g.request.steps, 8);  // the request's own value wins
  EXPECT_EQ(g.request.sampler, "dpmpp_2m");
  EXPECT_EQ(g.request.scheduler, "karras");
  EXPECT_EQ(g.request.cfg_scale, 5.5f);
  EXPECT_EQ(g.request.seed, 77);
  EXPECT_EQ(g.request.width, 320);
  EXPECT_EQ(g.request.clip_skip, 2);
}

TEST(A1111Request, LoraTagErrorsAre422sOnThePrompt) {
  const json d = detail_of({{"prompt", "x <lora:a:0.5:0.7>"}});
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0]["loc"], json({"body", "prompt"}));
  EXPECT_EQ(d[0]["type"], "value_error.extra_network");
  // disable_extra_networks: tags removed, nothing loaded.
  const A1111Generation g =
      txt2img({{"prompt", "x <lora:a:0.5>"}, {"disable_extra_networks", true}});
  EXPECT_EQ(g.request.prompt, "x ");
  EXPECT_TRUE(g.loras.empty());
}

}  // namespace
}  // namespace sdc::server::a1111
