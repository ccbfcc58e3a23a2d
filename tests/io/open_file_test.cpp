// open_tensor_file(): the reader is chosen by content, and paths that hold no model are refused.
#include <gtest/gtest.h>

#include <fstream>

#include "common/error.h"
#include "common/fixtures.h"
#include "io/gguf.h"
#include "io/open_file.h"
#include "io/safetensors.h"

namespace sdc {
namespace {

std::string error_of(const std::string& path) {
  try {
    io::open_tensor_file(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(OpenFile, DetectsFixtureFormatsByContent) {
  EXPECT_EQ(io::detect_format(test::tiny("model.safetensors")), io::FileFormat::Safetensors);
  EXPECT_EQ(io::detect_format(test::tiny("model-fp16.safetensors")), io::FileFormat::Safetensors);
  EXPECT_EQ(io::detect_format(test::tiny("model.ckpt")), io::FileFormat::Ckpt);
  EXPECT_EQ(io::detect_format(test::tiny("diffusers")), io::FileFormat::Diffusers);
  EXPECT_EQ(io::detect_format(test::tiny("controlnet-diffusers")), io::FileFormat::Diffusers);
}

TEST(OpenFile, ExtensionDoesNotMatter) {
  test::TempDir dir;
  WeightMap m;
  m.set("w", TensorRef::from_f32({1, 2, 3}, {3}, DType::F32));
  io::write_gguf(dir.file("model.safetensors"), m, {});  // a GGUF under a misleading name
  io::TensorFile g = io::open_tensor_file(dir.file("model.safetensors"));
  EXPECT_EQ(g.format, io::FileFormat::Gguf);
  EXPECT_EQ(g.tensors.get("w").to_f32(), (std::vector<float>{1, 2, 3}));
  io::write_safetensors(dir.file("model.gguf"), m);
  EXPECT_EQ(io::open_tensor_file(dir.file("model.gguf")).format, io::FileFormat::Safetensors);
}

TEST(OpenFile, OpensSafetensorsAndDiffusers) {
  EXPECT_EQ(io::open_tensor_file(test::tiny("model.safetensors")).tensors.size(), 976u);
  EXPECT_EQ(io::open_tensor_file(test::tiny("diffusers")).tensors.size(), 976u);
}

TEST(OpenFileBadInput, EmptyFile) {
  test::TempDir dir;
  std::ofstream(dir.file("empty.safetensors")).close();
  EXPECT_EQ(error_of(dir.file("empty.safetensors")),
            dir.file("empty.safetensors") + ": expected a model file, found an empty file");
}

TEST(OpenFileBadInput, MissingPath) {
  test::TempDir dir;
  EXPECT_EQ(error_of(dir.file("nope.safetensors")),
            dir.file("nope.safetensors") +
                ": expected an existing model file or diffusers folder, found No such file or "
                "directory");
}

TEST(OpenFileBadInput, UnrecognisedContent) {
  test::TempDir dir;
  std::ofstream(dir.file("notes.txt")) << "these are not weights, just some words";
  EXPECT_EQ(error_of(dir.file("notes.txt")),
            dir.file("notes.txt") +
                ": expected a safetensors, GGUF or PyTorch checkpoint file, or a diffusers folder, "
                "found unrecognised content");
}

TEST(OpenFileBadInput, DirectoryThatIsNotADiffusersFolder) {
  test::TempDir dir;
  EXPECT_NE(error_of(dir.path()).find("expected a diffusers folder"), std::string::npos);
}

TEST(OpenFileBadInput, TruncatedGgufThroughDispatcher) {
  test::TempDir dir;
  std::ofstream(dir.file("x.bin")) << "GGUF\x03";
  EXPECT_NE(error_of(dir.file("x.bin")).find("version: expected 4 more bytes"), std::string::npos)
      << error_of(dir.file("x.bin"));
}

}  // namespace
}  // namespace sdc

namespace sdc {
namespace {

TEST(OpenFileDetection, SafetensorsWhoseHeaderLengthLooksLikeAPickle) {
  // A header of 0x280 bytes starts the file with 80 02 — PROTO 2 for a pickle reader.
  test::TempDir dir;
  std::string header = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  header.resize(0x280, ' ');
  std::string bytes(8, '\0');
  bytes[0] = char(0x80);
  bytes[1] = char(0x02);
  bytes += header + std::string(4, '\0');
  FILE* f = std::fopen(dir.file("x.safetensors").c_str(), "wb");
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
  EXPECT_EQ(io::detect_format(dir.file("x.safetensors")), io::FileFormat::Safetensors);
  EXPECT_EQ(io::open_tensor_file(dir.file("x.safetensors")).tensors.size(), 1u);
}

}  // namespace
}  // namespace sdc
