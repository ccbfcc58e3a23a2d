// `sdc convert --format onnx` through the command line: the folder layout, model.json (shapes,
// precisions, sources and sha256s, baked LoRAs, defaults), the compile recipes, byte-identical
// output from the same inputs, and every refusal (non-empty folder without --force, a file as
// output, bf16, options of the ONNX export with --format gguf, a full disk) leaving nothing
// half-written. Also the protobuf wire encodings the writer relies on.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "common/fixtures.h"
#include "export/protobuf_wire.h"
#include "io/sha256.h"

namespace sdc {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::CommandResult;
using test::tiny;

std::vector<std::string> convert_args(const std::string& out, std::vector<std::string> flags) {
  std::vector<std::string> a{"convert",
                             "-u",
                             tiny("model.safetensors"),
                             "--model-config",
                             tiny("diffusers"),
                             "--format",
                             "onnx",
                             "-o",
                             out};
  a.insert(a.end(), flags.begin(), flags.end());
  return a;
}

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The files of a folder, relative, sorted.
std::vector<std::string> tree(const fs::path& root) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(root))
    if (e.is_regular_file()) out.push_back(fs::relative(e.path(), root).string());
  std::sort(out.begin(), out.end());
  return out;
}

// The last "sdc: …" line of stderr.
std::string error_line(const CommandResult& r) {
  std::string last, line;
  for (char c : r.err) {
    if (c != '\n') {
      line += c;
      continue;
    }
    if (line.rfind("sdc: ", 0) == 0) last = line;
    line.clear();
  }
  if (line.rfind("sdc: ", 0) == 0) last = line;
  return last;
}

TEST(ProtobufWire, EncodesVarintsFloatsAndLengthDelimitedFields) {
  exporter::ProtoBuffer b;
  b.int_field(1, 1);
  b.int_field(2, 300);
  EXPECT_EQ(b.bytes(), std::string("\x08\x01\x10\xac\x02", 5));
  exporter::ProtoBuffer n;
  n.int_field(3, -1);  // int64 -1: ten bytes, two's complement
  EXPECT_EQ(n.bytes(), std::string("\x18\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11));
  exporter::ProtoBuffer f;
  f.float_field(2, 1.0f);
  EXPECT_EQ(f.bytes(), std::string("\x15\x00\x00\x80\x3f", 5));
  exporter::ProtoBuffer s, outer;
  s.bytes_field(1, "ab");
  outer.message_field(7, s);
  EXPECT_EQ(outer.bytes(), std::string("\x3a\x04\x0a\x02"
                                       "ab",
                                       6));
  EXPECT_EQ(exporter::varint_size(127), 1u);
  EXPECT_EQ(exporter::varint_size(128), 2u);
  EXPECT_EQ(exporter::varint_size(uint64_t(-1)), 10u);
}

TEST(OnnxConvert, WritesTheLayoutModelJsonAndRecipes) {
  test::TempDir dir;
  const std::string out = dir.file("out");
  const CommandResult r = test::run_sdc(convert_args(
      out + "/", {"-c", tiny("controlnet.safetensors"), "-l", tiny("lora-kohya.safetensors:0.7"),
                  "--defaults", "lcm", "-s", "512", "512", "768", "512", "-b", "2"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(tree(out),
            (std::vector<std::string>{
                "compile-bm1684x.sh", "compile-tensorrt.sh", "controlnet/controlnet_2.onnx",
                "model.json", "text_encoder/text_encoder.onnx", "unet/unet_fuse_2.onnx",
                "vae_decoder/vae_decoder.onnx", "vae_encoder/vae_encoder.onnx"}));
  EXPECT_EQ(dir.list(), std::vector<std::string>{"out"});  // no temporary folder left

  const json m = json::parse(read(fs::path(out) / "model.json"));
  EXPECT_EQ(m["format"], "sdc-onnx");
  EXPECT_EQ(m["onnx"]["opset"], 17);
  EXPECT_EQ(m["static"], false);
  EXPECT_EQ(m["batch"], 2);
  EXPECT_EQ(m["sizes"], json::parse("[[512, 512], [768, 512]]"));
  EXPECT_EQ(m["precision"]["unet"], "f32");
  EXPECT_EQ(m["defaults"]["sampler"], "lcm");
  EXPECT_EQ(m["defaults"]["steps"], 4);
  ASSERT_EQ(m["loras"].size(), 1u);
  EXPECT_EQ(m["loras"][0]["name"], "lora-kohya.safetensors");
  EXPECT_FLOAT_EQ(m["loras"][0]["scale"].get<float>(), 0.7f);
  EXPECT_EQ(m["loras"][0]["sha256"], io::sha256_file(tiny("lora-kohya.safetensors")));
  bool model_source = false;
  for (const auto& s : m["sources"])
    if (s["name"] == "model.safetensors") {
      model_source = true;
      EXPECT_EQ(s["sha256"], io::sha256_file(tiny("model.safetensors")));
    }
  EXPECT_TRUE(model_source) << m["sources"].dump();
  EXPECT_EQ(m["configs"]["text_encoder"]["num_attention_heads"], 4);

  // Every component's files with their real sha256; UNet inputs as the seed's UNet had them.
  for (const auto& [id, c] : m["components"].items())
    for (const auto& [file, f] : c["files"].items())
      EXPECT_EQ(f["sha256"], io::sha256_file((fs::path(out) / file).string())) << file;
  const json& unet = m["components"]["unet"];
  EXPECT_EQ(unet["file"], "unet/unet_fuse_2.onnx");
  ASSERT_EQ(unet["inputs"].size(), 3u + 13u);
  EXPECT_EQ(unet["inputs"][0]["name"], "sample");
  EXPECT_EQ(unet["inputs"][0]["shape"], json::parse(R"(["batch", 4, "height", "width"])"));
  EXPECT_EQ(unet["inputs"][1]["name"], "timestep");
  EXPECT_EQ(unet["inputs"][2]["name"], "encoder_hidden_states");
  EXPECT_EQ(unet["inputs"][2]["shape"], json::parse(R"(["batch", "sequence", 32])"));
  EXPECT_EQ(unet["inputs"][15]["name"], "control_mid");
  EXPECT_EQ(unet["inputs"][15]["shape"], json::parse(R"(["batch", 64, "height_8", "width_8"])"));
  EXPECT_EQ(unet["outputs"][0]["name"], "out_sample");
  EXPECT_EQ(m["components"]["controlnet"]["outputs"].size(), 13u);
  EXPECT_EQ(m["components"]["text_encoder"]["inputs"][0]["dtype"], "int32");
  EXPECT_EQ(m["components"]["vae_decoder"]["outputs"][0]["shape"],
            json::parse(R"(["batch", 3, "image_height", "image_width"])"));

  // Recipes: one tpu-mlir transform per component and size, combined; trtexec with profiles.
  const std::string bm = read(fs::path(out) / "compile-bm1684x.sh");
  EXPECT_NE(bm.find("model_transform.py --model_name unet_768x512 --model_def "
                    "unet/unet_fuse_2.onnx"),
            std::string::npos)
      << bm;
  EXPECT_NE(bm.find("--input_shapes '[[2,4,64,96],[2],[2,77,32],[2,32,64,96]"), std::string::npos)
      << bm;
  EXPECT_NE(bm.find("--chip bm1684x"), std::string::npos);
  EXPECT_EQ(bm.find("text_encoder_768x512"), std::string::npos) << bm;  // size-independent: once
  EXPECT_NE(bm.find("model_tool --combine bmodel/unet_512x512_\"$q\".bmodel "
                    "bmodel/unet_768x512_\"$q\".bmodel -o bmodel/unet_\"$q\".bmodel"),
            std::string::npos)
      << bm;
  const std::string trt = read(fs::path(out) / "compile-tensorrt.sh");
  EXPECT_NE(trt.find("trtexec --onnx=vae_decoder/vae_decoder.onnx"), std::string::npos) << trt;
  EXPECT_NE(trt.find("--minShapes=latent:1x4x64x64"), std::string::npos) << trt;
  EXPECT_NE(trt.find("--maxShapes=latent:2x4x64x96"), std::string::npos) << trt;
  EXPECT_TRUE((fs::status(fs::path(out) / "compile-tensorrt.sh").permissions() &
               fs::perms::owner_exec) != fs::perms::none);
}

TEST(OnnxConvert, StaticShapesAndControlNetInputsWithoutAControlNet) {
  test::TempDir dir;
  const std::string out = dir.file("out");
  const CommandResult r = test::run_sdc(
      convert_args(out, {"--static", "-s", "96", "64", "--controlnet-inputs", "-t", "f16"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json m = json::parse(read(fs::path(out) / "model.json"));
  EXPECT_EQ(m["static"], true);
  EXPECT_EQ(m["precision"]["vae"], "f16");
  EXPECT_FALSE(m["components"].contains("controlnet"));
  const json& unet = m["components"]["unet"];
  ASSERT_EQ(unet["inputs"].size(), 16u);
  EXPECT_EQ(unet["inputs"][0]["shape"], json::parse("[1, 4, 8, 12]"));
  EXPECT_EQ(unet["inputs"][15]["shape"], json::parse("[1, 64, 1, 2]"));
  EXPECT_EQ(unet["precision"], "f16");
  const std::string trt = read(fs::path(out) / "compile-tensorrt.sh");
  EXPECT_EQ(trt.find("--minShapes"), std::string::npos) << trt;  // fixed shapes need none
}

TEST(OnnxConvert, TheSameInputsGiveByteIdenticalFiles) {
  test::TempDir dir;
  const std::vector<std::string> flags{"-c", tiny("controlnet.safetensors"), "--external-data"};
  ASSERT_EQ(test::run_sdc(convert_args(dir.file("a"), flags)).exit_code, 0);
  ASSERT_EQ(test::run_sdc(convert_args(dir.file("b"), flags)).exit_code, 0);
  const auto files = tree(dir.file("a"));
  ASSERT_EQ(files, tree(dir.file("b")));
  EXPECT_EQ(files.size(), 3u + 2u * 5u);  // model.json, two recipes, five .onnx + .data
  for (const auto& f : files)
    EXPECT_TRUE(read(fs::path(dir.file("a")) / f) == read(fs::path(dir.file("b")) / f)) << f;
}

TEST(OnnxConvert, RefusesANonEmptyFolderUnlessForced) {
  test::TempDir dir;
  const fs::path out = dir.file("out");
  fs::create_directories(out);
  std::ofstream(out / "keep.txt") << "mine";
  CommandResult r = test::run_sdc(convert_args(out.string(), {}));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(error_line(r).find("-o/--output: expected a new or empty folder (--force replaces "
                               "it), found a folder that is not empty"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(tree(out), std::vector<std::string>{"keep.txt"});
  EXPECT_EQ(dir.list(), std::vector<std::string>{"out"});

  r = test::run_sdc(convert_args(out.string(), {"--force"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(fs::exists(out / "keep.txt"));
  EXPECT_TRUE(fs::exists(out / "unet/unet_fuse_1.onnx"));
  EXPECT_EQ(dir.list(), std::vector<std::string>{"out"});

  fs::create_directories(dir.file("empty"));  // an empty folder is used as it is
  r = test::run_sdc(convert_args(dir.file("empty"), {}));
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(OnnxConvert, RefusesBadOptionCombinationsBeforeWritingAnything) {
  test::TempDir dir;
  std::ofstream(dir.file("file")) << "x";
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases{
      {convert_args(dir.file("file"), {}),
       "-o/--output: expected a folder for the ONNX export, found an existing file"},
      {convert_args(dir.file("o1"), {"-t", "bf16"}), "expected f32 or f16 with --format onnx"},
      {convert_args(dir.file("o2"), {"-t", "unet=bf16"}), "-t/--type (unet)"},
      {{"convert", "-u", tiny("model.safetensors"), "--format", "tflite", "-o", dir.file("o3")},
       "--format: expected gguf or onnx"},
      {convert_args(dir.file("no/such/dir"), {}), "expected an existing parent folder"},
      {{"convert", "-u", tiny("model.safetensors"), "--static", "-o", dir.file("x.gguf")},
       "--static: expected --format onnx (an option of the ONNX export), found --format gguf"},
      {{"convert", "-u", tiny("model.safetensors"), "--force", "-o", dir.file("x.gguf")},
       "--force: expected --format onnx"},
  };
  for (const auto& c : cases) {
    const CommandResult r = test::run_sdc(c.args);
    EXPECT_EQ(r.exit_code, 2) << c.message << "\n" << r.err;
    EXPECT_NE(error_line(r).find(c.message), std::string::npos) << r.err;
  }
  EXPECT_EQ(dir.list(), std::vector<std::string>{"file"});
}

// A full disk, simulated with a file-size limit: the error is one line, and neither the output
// folder nor the temporary one remains.
TEST(OnnxConvert, AFullDiskLeavesNothingBehind) {
  test::TempDir io, out;
  const pid_t pid = fork();
  if (pid == 0) {
    const rlimit limit{1 << 20, 1 << 20};  // 1 MiB; the UNet alone is about 10 MB
    setrlimit(RLIMIT_FSIZE, &limit);
    const int e = open(io.file("stderr").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int o = open("/dev/null", O_WRONLY);
    dup2(e, 2);
    dup2(o, 1);
    std::vector<std::string> args = convert_args(out.file("onnx"), {});
    args.insert(args.begin(), SDC_BINARY);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 2);
  CommandResult r;
  r.err = read(io.file("stderr"));
  EXPECT_NE(error_line(r).find("write: expected all bytes written, found File too large"),
            std::string::npos)
      << r.err;
  EXPECT_TRUE(out.list().empty());
}

}  // namespace
}  // namespace sdc
