// A1111 "parameters" text: exact layout, quoting, round trips, a real-world A1111 string, and
// A1111's own field regex quirks (expected values computed with its regex and json in Python).
#include <gtest/gtest.h>

#include "common/error.h"
#include "pipeline/generation_params.h"

namespace sdc {
namespace {

using pipeline::ControlNetInfo;
using pipeline::GenerationParams;

GenerationParams basic() {
  GenerationParams p;
  p.prompt = "a cat";
  p.steps = 20;
  p.sampler = "Euler a";
  p.cfg_scale = 7;
  p.seed = 42;
  p.width = 512;
  p.height = 512;
  p.model = "name";
  return p;
}

TEST(GenerationParams, FormatsA1111Layout) {
  GenerationParams p = basic();
  EXPECT_EQ(
      pipeline::format_a1111_parameters(p),
      "a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 512x512, Model: name");
  p.negative_prompt = "blurry, ugly";
  p.cfg_scale = 7.5;
  p.width = 768;
  p.schedule_type = "Karras";
  p.sampler = "DPM++ 2M";
  p.model_hash = "6ce0161689";
  p.denoising_strength = 0.75;
  p.clip_skip = 2;
  p.loras = {{"add_detail", "7c6bad76eb54"}, {"lcm", "aa11bb22cc33"}};
  p.version = "sdc 0.1.0";
  EXPECT_EQ(pipeline::format_a1111_parameters(p),
            "a cat\nNegative prompt: blurry, ugly\nSteps: 20, Sampler: DPM++ 2M, Schedule type: "
            "Karras, CFG scale: 7.5, Seed: 42, Size: 768x512, Model hash: 6ce0161689, Model: name, "
            "Denoising strength: 0.75, Clip skip: 2, Lora hashes: \"add_detail: 7c6bad76eb54, lcm: "
            "aa11bb22cc33\", Version: sdc 0.1.0");
  p.clip_skip = 1;  // A1111 leaves clip skip 1 out
  p.denoising_strength.reset();
  p.loras.clear();
  p.negative_prompt.clear();
  EXPECT_EQ(pipeline::format_a1111_parameters(p).find("Clip skip"), std::string::npos);
  EXPECT_EQ(pipeline::format_a1111_parameters(p).find("Negative prompt"), std::string::npos);
}

TEST(GenerationParams, QuotesLikeA1111) {
  EXPECT_EQ(pipeline::quote_a1111_value("plain value"), "plain value");
  EXPECT_EQ(pipeline::quote_a1111_value("my,model"), "\"my,model\"");
  // json.dumps('a "b": c\\d\n\x01é', ensure_ascii=False)
  EXPECT_EQ(pipeline::quote_a1111_value("a \"b\": c\\d\n\x01\xc3\xa9"),
            "\"a \\\"b\\\": c\\\\d\\n\\u0001\xc3\xa9\"");
  EXPECT_EQ(pipeline::unquote_a1111_value("\"a \\\"b\\\": c\\\\d\\n\\u0001\xc3\xa9\""),
            "a \"b\": c\\d\n\x01\xc3\xa9");
  EXPECT_EQ(pipeline::unquote_a1111_value("\"\\ud83d\\ude00\""), "\xf0\x9f\x98\x80");
  EXPECT_EQ(pipeline::unquote_a1111_value("\"x\\q\""), "\"x\\q\"");  // json.loads fails: as is
  EXPECT_EQ(pipeline::unquote_a1111_value("not quoted"), "not quoted");
  GenerationParams p = basic();
  p.model = "my,model";
  EXPECT_NE(pipeline::format_a1111_parameters(p).find("Model: \"my,model\""), std::string::npos);
}

TEST(GenerationParams, RoundTrips) {
  GenerationParams p = basic();
  p.prompt = "a cat, (detailed:1.2)\nsecond line with \xe7\x8c\xab";
  p.negative_prompt = "ugly, \"bad\" hands\nand more";
  p.sampler = "DPM++ 2M";
  p.schedule_type = "Karras";
  p.cfg_scale = 6.25;
  p.seed = 4294967295;
  p.width = 640;
  p.height = 384;
  p.model_hash = "abcd1234";
  p.model = "tiny, model: v1";
  p.denoising_strength = 0.6;
  p.clip_skip = 2;
  p.ensd = 31337;
  p.rng = "CPU";
  p.loras = {{"add_detail", "7c6bad76eb54"}};
  ControlNetInfo u;
  u.module = "canny";
  u.model = "control_v11p_sd15_canny [d14c016b]";
  u.weight = 0.8;
  u.processor_res = 512;
  u.threshold_a = 100;
  u.threshold_b = 200;
  u.guidance_end = 0.9;
  u.extra = {{"Low Vram", "False"}};
  p.controlnets = {u, ControlNetInfo{}};
  p.extra = {{"Hires upscale", "2"}, {"Note", "with \"quotes\", commas: and\nnewlines"}};
  p.version = "sdc 0.1.0";
  const std::string text = pipeline::format_a1111_parameters(p);
  EXPECT_NE(text.find("Clip skip: 2, ENSD: 31337, RNG: CPU"), std::string::npos) << text;
  EXPECT_EQ(pipeline::parse_a1111_parameters(text), p) << text;
  EXPECT_EQ(pipeline::format_a1111_parameters(pipeline::parse_a1111_parameters(text)), text);
}

TEST(GenerationParams, ParsesRealWorldA1111Text) {
  const std::string text =
      "masterpiece, best quality, 1girl, <lora:add_detail:0.8>\n"
      "Negative prompt: (worst quality:1.4), low quality, easynegative\n"
      "Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7.5, Seed: 3736328473, "
      "Size: 512x768, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Denoising strength: "
      "0.45, Clip skip: 2, Hires upscale: 2, Hires upscaler: Latent, Lora hashes: \"add_detail: "
      "7c6bad76eb54\", TI hashes: \"easynegative: c74b4e810b03\", ControlNet 0: \"Module: canny, "
      "Model: control_v11p_sd15_canny [d14c016b], Weight: 1, Resize Mode: Crop and Resize, Low "
      "Vram: False, Processor Res: 512, Threshold A: 100, Threshold B: 200, Guidance Start: 0, "
      "Guidance End: 1, Pixel Perfect: False, Control Mode: Balanced\", ControlNet 1: "
      "\"preprocessor: none, model: control_v11f1e_sd15_tile [a371b31b], weight: 0.5, "
      "starting/ending: (0.1, 0.8), resize mode: Just Resize, pixel perfect: True, control mode: "
      "My prompt is more important, preprocessor params: (-1, -1, -1)\", Version: v1.6.0";
  const GenerationParams p = pipeline::parse_a1111_parameters(text);
  EXPECT_EQ(p.prompt, "masterpiece, best quality, 1girl, <lora:add_detail:0.8>");
  EXPECT_EQ(p.negative_prompt, "(worst quality:1.4), low quality, easynegative");
  EXPECT_EQ(p.steps, 28);
  EXPECT_EQ(p.sampler, "DPM++ 2M");
  EXPECT_EQ(p.schedule_type, "Karras");
  EXPECT_EQ(p.cfg_scale, 7.5);
  EXPECT_EQ(p.seed, 3736328473);
  EXPECT_EQ(p.width, 512);
  EXPECT_EQ(p.height, 768);
  EXPECT_EQ(p.model_hash, "6ce0161689");
  EXPECT_EQ(p.model, "v1-5-pruned-emaonly");
  ASSERT_TRUE(p.denoising_strength);
  EXPECT_EQ(*p.denoising_strength, 0.45);
  EXPECT_EQ(p.clip_skip, 2);
  EXPECT_EQ(p.version, "v1.6.0");
  ASSERT_EQ(p.loras.size(), 1u);
  EXPECT_EQ(p.loras[0].name, "add_detail");
  EXPECT_EQ(p.loras[0].hash, "7c6bad76eb54");
  const std::vector<std::pair<std::string, std::string>> extra = {
      {"Hires upscale", "2"},
      {"Hires upscaler", "Latent"},
      {"TI hashes", "easynegative: c74b4e810b03"}};
  EXPECT_EQ(p.extra, extra);
  ASSERT_EQ(p.controlnets.size(), 2u);
  const ControlNetInfo& a = p.controlnets[0];
  EXPECT_EQ(a.module, "canny");
  EXPECT_EQ(a.model, "control_v11p_sd15_canny [d14c016b]");
  EXPECT_EQ(a.weight, 1.0);
  EXPECT_EQ(a.resize_mode, "Crop and Resize");
  EXPECT_EQ(a.processor_res, 512);
  EXPECT_EQ(a.threshold_a, 100.0);
  EXPECT_EQ(a.threshold_b, 200.0);
  EXPECT_EQ(a.guidance_start, 0.0);
  EXPECT_EQ(a.guidance_end, 1.0);
  EXPECT_FALSE(a.pixel_perfect);
  EXPECT_EQ(a.control_mode, "Balanced");
  EXPECT_EQ(a.extra, (std::vector<std::pair<std::string, std::string>>{{"Low Vram", "False"}}));
  const ControlNetInfo& b = p.controlnets[1];  // the newer sd-webui-controlnet layout
  EXPECT_EQ(b.module, "none");
  EXPECT_EQ(b.model, "control_v11f1e_sd15_tile [a371b31b]");
  EXPECT_EQ(b.weight, 0.5);
  EXPECT_EQ(b.guidance_start, 0.1);
  EXPECT_EQ(b.guidance_end, 0.8);
  EXPECT_EQ(b.resize_mode, "Just Resize");
  EXPECT_TRUE(b.pixel_perfect);
  EXPECT_EQ(b.control_mode, "My prompt is more important");
  EXPECT_EQ(b.processor_res, 0);
  EXPECT_FALSE(b.threshold_a);
  EXPECT_FALSE(b.threshold_b);
}

TEST(GenerationParams, FollowsA1111FieldRegex) {
  // Python: re_param.findall(line), empty values skipped, quoted values json-decoded.
  const std::string line =
      "Steps: 5, Sampler: DDIM, Seed: 1, Foo bar: 1, junk, Baz: \"x, y\", Q: \"unterminated, "
      "Qux-2/b: 7 , Esc: \"a\\\"b\\\\c\\n\\u00e9\\ud83d\\ude00\", Bad: \"x\\q\", Empty: , E2:\"\", "
      "Multi: \"a\" \"b\", Tail: \"t\"x, Last:end";
  const GenerationParams p = pipeline::parse_a1111_parameters("prompt\n" + line);
  const std::vector<std::pair<std::string, std::string>> want = {
      {"Foo bar", "1"},         {"Baz", "x, y"},
      {"Qux-2/b", "7 "},        {"Esc", "a\"b\\c\n\xc3\xa9\xf0\x9f\x98\x80"},
      {"Bad", "\"x\\q\""},      {"E2", ""},
      {"Multi", "\"a\" \"b\""}, {"Tail", "\"t\"x"},
      {"Last", "end"}};
  EXPECT_EQ(p.extra, want);
  EXPECT_EQ(p.steps, 5);
  EXPECT_EQ(p.sampler, "DDIM");
  EXPECT_EQ(p.prompt, "prompt");
}

TEST(GenerationParams, LastLineNeedsThreeFields) {
  GenerationParams p =
      pipeline::parse_a1111_parameters("  a photo\nNegative prompt: x\nSteps: 3, Seed: 9  \n");
  EXPECT_EQ(p.prompt, "a photo");
  EXPECT_EQ(p.negative_prompt, "x\nSteps: 3, Seed: 9");
  EXPECT_EQ(p.steps, GenerationParams{}.steps);
  p = pipeline::parse_a1111_parameters("just a prompt, with: a colon");
  EXPECT_EQ(p.prompt, "just a prompt, with: a colon");
  EXPECT_TRUE(p.extra.empty());
  // Only fields: the prompt is empty.
  p = pipeline::parse_a1111_parameters(
      "Steps: 3, Sampler: LCM, CFG scale: 1, Seed: 5, Size: 64x96");
  EXPECT_EQ(p.prompt, "");
  EXPECT_EQ(p.height, 96);
}

TEST(GenerationParams, LongQuotedValueIsLinear) {
  // A million-character quoted value must neither recurse deeply nor take quadratic time.
  const std::string big(1 << 20, 'a');
  const GenerationParams p =
      pipeline::parse_a1111_parameters("p\nSteps: 1, Seed: 2, Note: \"" + big + ",\", Size: 8x8");
  ASSERT_EQ(p.extra.size(), 1u);
  EXPECT_EQ(p.extra[0].second.size(), big.size() + 1);
  const GenerationParams q =
      pipeline::parse_a1111_parameters("p\nSteps: 1, Seed: 2, Size: 8x8, " + big + " b");
  EXPECT_TRUE(q.extra.empty());  // a word run with no colon is no field
  EXPECT_EQ(q.prompt, "p");
}

TEST(GenerationParams, MalformedKnownFields) {
  auto error_of = [](const std::string& text) -> std::string {
    try {
      pipeline::parse_a1111_parameters(text);
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  };
  EXPECT_EQ(error_of("p\nSteps: many, Sampler: x, Seed: 1"),
            "parameters: Steps: expected an integer, found \"many\"");
  EXPECT_EQ(error_of("p\nSteps: 1, CFG scale: high, Seed: 1"),
            "parameters: CFG scale: expected a number, found \"high\"");
  EXPECT_EQ(error_of("p\nSteps: 1, Size: 512, Seed: 1"),
            "parameters: Size: expected WIDTHxHEIGHT, found \"512\"");
  EXPECT_EQ(error_of("p\nSteps: 1, Seed: 1, Lora hashes: \"nohash\""),
            "parameters: Lora hashes: expected \"name: hash, …\", found \"nohash\"");
  EXPECT_EQ(error_of("p\nSteps: 1, Seed: 1, ControlNet 0: \"Module: canny, Weight: heavy\""),
            "parameters: ControlNet 0 Weight: expected a number, found \"heavy\"");
  EXPECT_EQ(error_of("p\nSteps: 1, Seed: 1, ControlNet 0: \"starting/ending: (0, 1, 2)\""),
            "parameters: ControlNet 0 starting/ending: expected (start, end), found \"(0, 1, 2)\"");
}

}  // namespace
}  // namespace sdc
