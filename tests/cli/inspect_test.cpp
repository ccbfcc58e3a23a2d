// `sdc inspect`: the fixtures' formats, kinds and per-component parameter counts (as in the
// fixture README), LoRA and GGUF details, and exit code 2 with one line naming the file for bad
// input.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "common/fixtures.h"
#include "io/gguf.h"
#include "io/safetensors.h"

namespace sdc {
namespace {

constexpr int64_t kUNet = 2446788, kVae = 516519, kText = 1621696, kControlNet = 1073200;

// Runs `sdc inspect --json ARGS...` and parses one JSON object per output line.
std::vector<nlohmann::json> inspect_json(std::vector<std::string> args) {
  args.insert(args.begin(), {"inspect", "--json"});
  test::CommandResult r = test::run_sdc(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  std::vector<nlohmann::json> out;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

void expect_checkpoint(const nlohmann::json& j, const std::string& format) {
  EXPECT_EQ(j["format"], format) << j.dump();
  EXPECT_EQ(j["kind"], "checkpoint");
  EXPECT_EQ(j["architecture"], "SD1.x");
  EXPECT_EQ(j["components"]["unet"]["params"], kUNet);
  EXPECT_EQ(j["components"]["vae"]["params"], kVae);
  EXPECT_EQ(j["components"]["text_encoder"]["params"], kText);
  EXPECT_EQ(j["components"]["unet"]["hparams"]["block_out_channels"],
            nlohmann::json({32, 32, 64, 64}));
  EXPECT_EQ(j["components"]["vae"]["hparams"]["block_out_channels"],
            nlohmann::json({32, 32, 32, 32}));
  EXPECT_FALSE(j["components"].contains("controlnet"));
}

TEST(Inspect, CheckpointsInEveryFormat) {
  auto js = inspect_json({test::tiny("model.safetensors"), test::tiny("model-fp16.safetensors"),
                          test::tiny("model.ckpt"), test::tiny("diffusers")});
  ASSERT_EQ(js.size(), 4u);
  expect_checkpoint(js[0], "safetensors");
  EXPECT_EQ(js[0]["dtypes"], nlohmann::json({{"F32", 976}}));
  EXPECT_EQ(js[0]["tensors"], 976);
  EXPECT_EQ(js[0]["file_size"], 18466620);
  expect_checkpoint(js[1], "safetensors");
  EXPECT_EQ(js[1]["dtypes"], nlohmann::json({{"F16", 976}}));
  expect_checkpoint(js[2], "ckpt");
  expect_checkpoint(js[3], "diffusers");
  // The folder's own text encoder config gives 4 heads; the single file alone cannot.
  EXPECT_EQ(js[3]["components"]["text_encoder"]["hparams"]["heads"], 4);
  EXPECT_EQ(js[0]["components"]["text_encoder"]["hparams"]["heads"], 1);
}

TEST(Inspect, ModelConfigSuppliesHeadCounts) {
  auto js =
      inspect_json({test::tiny("model.safetensors"), "--model-config", test::tiny("diffusers")});
  ASSERT_EQ(js.size(), 1u);
  EXPECT_EQ(js[0]["components"]["text_encoder"]["hparams"]["heads"], 4);
  EXPECT_EQ(js[0]["components"]["unet"]["hparams"]["num_heads"], 8);
}

TEST(Inspect, LorasAndControlNets) {
  auto js =
      inspect_json({test::tiny("lora-kohya.safetensors"), test::tiny("lora-peft.safetensors"),
                    test::tiny("controlnet.safetensors"), test::tiny("controlnet-diffusers")});
  ASSERT_EQ(js.size(), 4u);
  EXPECT_EQ(js[0]["kind"], "lora");
  EXPECT_EQ(js[0]["lora"]["format"], "kohya");
  EXPECT_EQ(js[1]["kind"], "lora");
  EXPECT_EQ(js[1]["lora"]["format"], "peft");
  for (int i : {0, 1}) {
    EXPECT_EQ(js[size_t(i)]["lora"]["unet_modules"], 277) << js[size_t(i)].dump();
    EXPECT_EQ(js[size_t(i)]["lora"]["text_encoder_modules"], 18);
    EXPECT_EQ(js[size_t(i)]["lora"]["max_rank"], 4);
    EXPECT_FALSE(js[size_t(i)].contains("components"));
  }
  EXPECT_EQ(js[2]["format"], "safetensors");
  EXPECT_EQ(js[3]["format"], "diffusers");
  for (int i : {2, 3}) {
    const auto& j = js[size_t(i)];
    EXPECT_EQ(j["kind"], "controlnet");
    EXPECT_EQ(j["components"]["controlnet"]["params"], kControlNet);
    EXPECT_EQ(j["components"]["controlnet"]["hparams"]["hint_channels"],
              nlohmann::json({16, 16, 32, 32}));
    EXPECT_FALSE(j["components"].contains("unet"));
  }
}

TEST(Inspect, CompiledGgufShowsItsMetadata) {
  test::TempDir dir;
  io::TensorFile f = io::read_safetensors(test::tiny("model.safetensors"));
  std::vector<std::string> vocab(1000, "tok");
  io::write_gguf(dir.file("m.gguf"), f.tensors,
                 {{"sdc.version", io::GgufValue::string("0.1.0")},
                  {"sdc.vocab", io::GgufValue::string_array(vocab)}});
  auto js = inspect_json({dir.file("m.gguf")});
  ASSERT_EQ(js.size(), 1u);
  EXPECT_EQ(js[0]["format"], "gguf");
  EXPECT_EQ(js[0]["kind"], "compiled");
  EXPECT_EQ(js[0]["components"]["unet"]["params"], kUNet);
  EXPECT_EQ(js[0]["metadata"]["sdc.version"], "0.1.0");
  EXPECT_EQ(js[0]["metadata"]["general.alignment"], 64);
  EXPECT_EQ(js[0]["metadata"]["sdc.vocab"]["array_length"], 1000);  // summarised

  test::CommandResult r = test::run_sdc({"inspect", dir.file("m.gguf")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("kind:     compiled, SD1.x, ldm names"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("unet: 2,446,788 parameters"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("sdc.version = \"0.1.0\""), std::string::npos) << r.out;
}

TEST(Inspect, HumanReadableOutput) {
  test::CommandResult r = test::run_sdc({"inspect", test::tiny("model.safetensors")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("format:   safetensors, 18,466,620 bytes"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tensors:  976 (F32 976)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("kind:     checkpoint, SD1.x, ldm names"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("vae: 516,519 parameters"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("text_encoder: 1,621,696 parameters"), std::string::npos) << r.out;
}

TEST(Inspect, UnsupportedArchitectureIsDescribedNotLoaded) {
  test::TempDir dir;
  io::TensorFile f = io::read_safetensors(test::tiny("model.safetensors"));
  WeightMap m = f.tensors;
  m.set("conditioner.embedders.0.transformer.text_model.final_layer_norm.weight",
        TensorRef::from_f32({1}, {1}, DType::F32));
  io::write_safetensors(dir.file("xl.safetensors"), m);
  auto js = inspect_json({dir.file("xl.safetensors")});
  ASSERT_EQ(js.size(), 1u);
  EXPECT_EQ(js[0]["architecture"], "SDXL");
  EXPECT_EQ(js[0]["supported"], false);
  EXPECT_FALSE(js[0].contains("components"));
}

void expect_bad_input(const std::vector<std::string>& args, const std::string& message) {
  test::CommandResult r = test::run_sdc(args);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "sdc: " + message + "\n");
}

TEST(InspectBadInput, EmptyFile) {
  test::TempDir dir;
  std::ofstream(dir.file("e.safetensors")).close();
  expect_bad_input({"inspect", dir.file("e.safetensors")},
                   dir.file("e.safetensors") + ": expected a model file, found an empty file");
}

TEST(InspectBadInput, MissingFileAfterAGoodOne) {
  test::TempDir dir;
  test::CommandResult r =
      test::run_sdc({"inspect", "--json", test::tiny("lora-peft.safetensors"), dir.file("gone")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "sdc: " + dir.file("gone") +
                       ": expected an existing model file or diffusers folder, found No such file "
                       "or directory\n");
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1);  // the good file was described
}

TEST(InspectBadInput, BadGguf) {
  test::TempDir dir;
  std::ofstream(dir.file("t.gguf"), std::ios::binary) << std::string("GGUF\x07\x00\x00\x00", 8);
  expect_bad_input({"inspect", dir.file("t.gguf")},
                   dir.file("t.gguf") + ": version: expected 3 (or 2), found 7");
}

TEST(InspectBadInput, NotADiffusersFolder) {
  test::TempDir dir;
  expect_bad_input({"inspect", dir.path()},
                   dir.path() +
                       ": expected a diffusers folder (model_index.json, or config.json of "
                       "one component), found a directory with neither");
}

TEST(InspectBadInput, WrongModelConfig) {
  test::TempDir dir;
  expect_bad_input({"inspect", test::tiny("model.safetensors"), "--model-config", dir.path()},
                   test::tiny("model.safetensors") + ": " + dir.path() +
                       ": --model-config: expected unet/config.json, text_encoder/config.json, "
                       "vae/config.json or controlnet/config.json, found none of them");
}

TEST(InspectBadInput, MaliciousCheckpointIsRefused) {
  test::TempDir dir;
  test::CommandResult r = test::run_sdc({"inspect", test::tiny("malicious.ckpt")}, dir.path());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(test::tiny("malicious.ckpt")), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(dir.list(), std::vector<std::string>{});  // no sdc-pwned-marker
}

}  // namespace
}  // namespace sdc
