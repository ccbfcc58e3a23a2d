// The adapter's smaller parts: <lora:…> tags, base64 and data URLs, the sampler/scheduler lists,
// /png-info's reading of an infotext, the txt2img response and its info string.
#include <gtest/gtest.h>

#include "common/error.h"
#include "io/image.h"
#include "server/a1111/api_error.h"
#include "server/a1111/extra_networks.h"
#include "server/a1111/generation_response.h"
#include "server/a1111/image_base64.h"
#include "server/a1111/options_catalog.h"
#include "server/a1111/png_info.h"
#include "server/a1111/sampler_names.h"

namespace sdc::server::a1111 {
namespace {

using nlohmann::json;

std::string tag_error(const std::string& prompt) {
  try {
    extract_extra_networks(prompt);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(A1111ExtraNetworks, TagsAreCutOutAndParsed) {
  PromptNetworks n =
      extract_extra_networks("a <lora:detail> cat <lora:style_v2:0.6>, <lyco:x:te=0.3>");
  EXPECT_EQ(n.prompt, "a  cat , ");
  ASSERT_EQ(n.loras.size(), 3u);
  EXPECT_EQ(n.loras[0], (LoraTag{"detail", 1.0}));
  EXPECT_EQ(n.loras[1], (LoraTag{"style_v2", 0.6}));
  EXPECT_EQ(n.loras[2], (LoraTag{"x", 0.3}));
  // Repeats add up (A1111 applies each occurrence); equal te and unet multipliers are fine.
  n = extract_extra_networks("<lora:a:0.25><lora:a:0.5:0.5><lora:b:te=0.2:unet=0.2>");
  ASSERT_EQ(n.loras.size(), 2u);
  EXPECT_DOUBLE_EQ(n.loras[0].weight, 0.75);
  EXPECT_DOUBLE_EQ(n.loras[1].weight, 0.2);
  // Not tags: left as text.
  for (const char* text :
       {"a < b > c", "<3", "<lora:>", "<:x>", "<lora x:1>", "(a:1.2)", "<lora:x"})
    EXPECT_EQ(extract_extra_networks(text).prompt, text) << text;
}

TEST(A1111ExtraNetworks, BadTagsNameThePrompt) {
  EXPECT_EQ(tag_error("<lora:a:strong>"),
            "prompt: expected a number as the multiplier in <lora:a:strong>, found strong");
  EXPECT_EQ(tag_error("<lora:a:0.5:0.8>"),
            "prompt: expected one multiplier for text encoder and UNet in <lora:a:0.5:0.8> (sdc "
            "merges a LoRA at one scale), found te 0.5, unet 0.8");
  EXPECT_NE(tag_error("<lora:a:1:1:8>").find("no dynamic rank"), std::string::npos);
  EXPECT_NE(tag_error("<lora:../x:1>").find("a LoRA name without a path"), std::string::npos);
  EXPECT_NE(tag_error("<lora:/etc/x:1>").find("a LoRA name without a path"), std::string::npos);
  EXPECT_EQ(tag_error("<hypernet:h:1>"),
            "prompt: expected only <lora:…> extra networks in sdc, found <hypernet:h:1>");
  EXPECT_NE(tag_error("<lora:a:x=1>").find("te=, unet= or dyn="), std::string::npos);
}

TEST(A1111Base64, RoundTripsAndToleratesWhatPythonDoes) {
  const std::vector<uint8_t> bytes = {0, 1, 2, 250, 251, 252, 253};
  for (size_t n = 0; n <= bytes.size(); ++n) {
    const std::vector<uint8_t> part(bytes.begin(), bytes.begin() + long(n));
    const std::string enc = encode_base64(part);
    EXPECT_EQ(enc.size() % 4, 0u);
    EXPECT_EQ(decode_base64(enc), part);
  }
  EXPECT_EQ(encode_base64(std::vector<uint8_t>{'M', 'a', 'n'}), "TWFu");
  EXPECT_EQ(decode_base64("TW\nFu\r\n"), (std::vector<uint8_t>{'M', 'a', 'n'}));
  EXPECT_EQ(decode_base64("TWE"), (std::vector<uint8_t>{'M', 'a'}));  // padding left out
  EXPECT_EQ(decode_base64("TWFuT"), std::nullopt);                    // one character over
  EXPECT_EQ(decode_base64("TQ==TQ=="), std::nullopt);                 // data after padding
  EXPECT_EQ(strip_data_url("data:image/png;base64,QUJD"), "QUJD");
  EXPECT_EQ(strip_data_url("QUJD"), "QUJD");
}

TEST(A1111Base64, RequestImages) {
  io::Image img(16, 8);
  img.rgb.assign(img.rgb.size(), 200);
  const std::string b64 = encode_base64(io::encode_png(img));
  const io::ImageLimits limits;
  for (const std::string& text :
       {b64, "data:image/png;base64," + b64, "DATA:image/png;base64," + b64}) {
    const io::Image got = decode_request_image(text, "image", limits);
    EXPECT_EQ(got.width, 16);
    EXPECT_EQ(got.rgb, img.rgb);
  }
  try {
    decode_request_image("data:image/png," + b64, "image", limits);
    FAIL();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 500);
    EXPECT_EQ(e.body()["errors"], "image: expected a base64 data URL (data:image/png;base64,...)");
  }
  io::ImageLimits tiny;
  tiny.max_side = 8;
  try {
    decode_request_image(b64, "init_images[0]", tiny);
    FAIL();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.body()["detail"], "Invalid encoded image");
    EXPECT_NE(e.body()["errors"].get<std::string>().find("init_images[0]: image size"),
              std::string::npos)
        << e.body();
  }
}

TEST(A1111Names, ListsAreA1111ShapedAndResolve) {
  const json samplers = samplers_json();
  ASSERT_FALSE(samplers.empty());
  for (const json& s : samplers) {
    EXPECT_TRUE(s["name"].is_string());
    EXPECT_TRUE(s["aliases"].is_array());
    EXPECT_TRUE(s["options"].is_object());
    for (const auto& [k, v] : s["options"].items()) EXPECT_TRUE(v.is_string()) << k;
    EXPECT_NO_THROW(resolve_sampler(s["name"].get<std::string>(), ""));
    for (const json& a : s["aliases"]) EXPECT_NO_THROW(resolve_sampler(a.get<std::string>(), ""));
  }
  EXPECT_EQ(samplers[0]["name"], "DPM++ 2M");
  EXPECT_EQ(samplers[0]["options"]["scheduler"], "karras");
  const json schedulers = schedulers_json();
  for (const json& s : schedulers) {
    for (const char* k : {"name", "label", "aliases", "default_rho", "need_inner_model"})
      EXPECT_TRUE(s.contains(k)) << k;
    EXPECT_NO_THROW(resolve_sampler("Euler", s["name"].get<std::string>()));
    EXPECT_NO_THROW(resolve_sampler("Euler", s["label"].get<std::string>()));
  }
  bool karras = false;
  for (const json& s : schedulers)
    if (s["name"] == "karras") {
      karras = true;
      EXPECT_EQ(s["default_rho"], 7.0);
      EXPECT_EQ(s["label"], "Karras");
    }
  EXPECT_TRUE(karras);
  EXPECT_EQ(schedulers.size(), 12u);  // A1111 v1.10.1's twelve
}

TEST(A1111Options, CatalogChecksValues) {
  FieldErrors e;
  const json loc = json::array({"body", "k"});
  EXPECT_EQ(check_option_value(*find_option("send_seed"), "false", loc, e), false);
  EXPECT_EQ(check_option_value(*find_option("jpeg_quality"), "95", loc, e), 95);
  EXPECT_EQ(check_option_value(*find_option("samples_format"), "png", loc, e), "png");
  EXPECT_EQ(check_option_value(*find_option("eta_noise_seed_delta"), 0.0, loc, e), 0);
  EXPECT_TRUE(e.empty());
  EXPECT_EQ(check_option_value(*find_option("eta_noise_seed_delta"), 31337, loc, e), nullptr);
  EXPECT_EQ(check_option_value(*find_option("jpeg_quality"), "high", loc, e), nullptr);
  EXPECT_EQ(e.size(), 2u);
  EXPECT_EQ(find_option("forge_preset"), nullptr);  // its presence would mean Forge to SillyTavern
  for (const OptionSpec& s : option_catalog()) EXPECT_EQ(find_option(s.key), &s);
}

TEST(A1111PngInfo, ParsesInfotextAsA1111) {
  const json p = parse_generation_parameters(
      "a cat, (fluffy:1.2)\nsecond line\nNegative prompt: dog\nSteps: 20, Sampler: DPM++ 2M, "
      "Schedule type: Karras, CFG scale: 7.0, Seed: 42, Size: 512x768, Model hash: 6ce0161689, "
      "Model: v1-5, Lora hashes: \"detail: 0123456789ab, style: ba9876543210\", Version: sdc");
  EXPECT_EQ(p["Prompt"], "a cat, (fluffy:1.2)\nsecond line");
  EXPECT_EQ(p["Negative prompt"], "dog");
  EXPECT_EQ(p["Steps"], "20");
  EXPECT_EQ(p["Sampler"], "DPM++ 2M");
  EXPECT_EQ(p["Schedule type"], "Karras");
  EXPECT_EQ(p["CFG scale"], "7.0");
  EXPECT_EQ(p["Size-1"], "512");
  EXPECT_EQ(p["Size-2"], "768");
  EXPECT_FALSE(p.contains("Size"));
  EXPECT_EQ(p["Lora hashes"], "detail: 0123456789ab, style: ba9876543210");
  EXPECT_EQ(p["Clip skip"], "1");  // A1111's defaults for absent fields
  EXPECT_EQ(p["RNG"], "GPU");
  // Fewer than three fields on the last line: it is prompt text.
  const json q = parse_generation_parameters("just a prompt: with a colon");
  EXPECT_EQ(q["Prompt"], "just a prompt: with a colon");
  EXPECT_FALSE(q.contains("just a prompt"));
}

TEST(A1111PngInfo, ReadsTheChunksOfAnImage) {
  io::Image img(8, 8);
  const std::vector<uint8_t> png = io::encode_png(
      img, {{"parameters", "x\nSteps: 3, Sampler: Euler, Seed: 1"}, {"Software", "sdc"}});
  const json r = png_info_response(png);
  EXPECT_EQ(r["info"], "x\nSteps: 3, Sampler: Euler, Seed: 1");
  EXPECT_EQ(r["items"], json({{"Software", "sdc"}}));
  EXPECT_EQ(r["parameters"]["Seed"], "1");
  EXPECT_EQ(png_info_response(io::encode_png(img))["info"], "");
  EXPECT_THROW(png_info_response({1, 2, 3}), ApiError);
}

TEST(A1111Response, InfoIsAJsonStringWithA1111Keys) {
  A1111Generation g = parse_generation(
      R"({"prompt": "a <lora:l:0.5> cat", "negative_prompt": "dog", "seed": 5, "batch_size": 2,
          "sampler_name": "DPM++ 2M", "steps": 4})",
      "application/json", GenerationMode::Txt2Img);
  GenerationOutput out;
  out.pngs = {"PNG1", "PNG2"};
  out.seeds = {5, 6};
  out.infotexts = {"t1", "t2"};
  out.model_name = "model";
  out.model_hash = "0123456789";
  out.job_timestamp = "20261204093000";
  out.steps = 4;
  out.cfg_scale = 7.0;
  const json r = generation_response(g, out);
  ASSERT_TRUE(r["info"].is_string());
  const json info = json::parse(r["info"].get<std::string>());
  for (const char* k : {"prompt",
                        "all_prompts",
                        "negative_prompt",
                        "all_negative_prompts",
                        "seed",
                        "all_seeds",
                        "subseed",
                        "all_subseeds",
                        "subseed_strength",
                        "width",
                        "height",
                        "sampler_name",
                        "cfg_scale",
                        "steps",
                        "batch_size",
                        "restore_faces",
                        "face_restoration_model",
                        "sd_model_name",
                        "sd_model_hash",
                        "sd_vae_name",
                        "sd_vae_hash",
                        "seed_resize_from_w",
                        "seed_resize_from_h",
                        "denoising_strength",
                        "extra_generation_params",
                        "index_of_first_image",
                        "infotexts",
                        "styles",
                        "job_timestamp",
                        "clip_skip",
                        "is_using_inpainting_conditioning",
                        "version"})
    EXPECT_TRUE(info.contains(k)) << k;
  EXPECT_EQ(info.size(), 32u);
  EXPECT_EQ(info["prompt"], "a <lora:l:0.5> cat");
  EXPECT_EQ(info["all_seeds"], json({5, 6}));
  EXPECT_EQ(info["seed"], 5);
  EXPECT_EQ(info["sampler_name"], "DPM++ 2M");
  EXPECT_EQ(info["extra_generation_params"], json({{"Schedule type", "Karras"}}));
  EXPECT_EQ(info["infotexts"], json({"t1", "t2"}));
  EXPECT_EQ(info["sd_model_hash"], "0123456789");
  EXPECT_EQ(r["images"], json({"UE5HMQ==", "UE5HMg=="}));
  EXPECT_EQ(r["parameters"]["seed"], 5);
  g.send_images = false;
  EXPECT_EQ(generation_response(g, out)["images"], json::array());
}

}  // namespace
}  // namespace sdc::server::a1111
