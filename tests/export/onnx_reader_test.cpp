// Reading an ONNX export folder back (export/onnx_reader.h): every weight of the source comes
// back under its LDM name with the same values (inline and external data, f32 and f16), and
// malformed folders — no or foreign model.json, truncated or garbage .onnx, a missing or short
// external-data file — are refused naming the file and field.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "common/fixtures.h"
#include "export/onnx_reader.h"
#include "io/safetensors.h"

namespace sdc {
namespace {

namespace fs = std::filesystem;
using test::tiny;

std::string export_tiny(const test::TempDir& dir, const std::string& name,
                        std::vector<std::string> flags) {
  std::vector<std::string> args{"convert",
                                "-u",
                                tiny("model.safetensors"),
                                "--model-config",
                                tiny("diffusers"),
                                "-c",
                                tiny("controlnet.safetensors"),
                                "--format",
                                "onnx",
                                "-o",
                                dir.file(name)};
  args.insert(args.end(), flags.begin(), flags.end());
  const test::CommandResult r = test::run_sdc(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return dir.file(name);
}

std::string error_of(const std::string& dir) {
  try {
    exporter::read_onnx_export(dir);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(OnnxReader, GivesBackEveryWeightOfTheSource) {
  test::TempDir dir;
  const io::TensorFile model = io::read_safetensors(tiny("model.safetensors"));
  const io::TensorFile control = io::read_safetensors(tiny("controlnet.safetensors"));
  for (const auto& [name, flags] : std::vector<std::pair<std::string, std::vector<std::string>>>{
           {"inline", {}}, {"external", {"--external-data"}}, {"f16", {"-t", "f16"}}}) {
    const io::TensorFile back = exporter::read_onnx_export(export_tiny(dir, name, flags));
    EXPECT_EQ(back.tensors.size(), model.tensors.size() + control.tensors.size()) << name;
    for (const io::TensorFile* src : {&model, &control})
      for (const auto& [key, t] : src->tensors.all()) {
        const TensorRef* b = back.tensors.find(key);
        ASSERT_NE(b, nullptr) << name << ": " << key;
        EXPECT_EQ(b->shape, t.shape) << key;
        std::vector<float> want = t.to_f32();
        if (b->dtype == DType::F16)  // an f16 export stores the weights rounded to f16
          for (float& x : want) x = f16_to_f32(f32_to_f16(x));
        EXPECT_EQ(b->to_f32(), want) << name << ": " << key;
      }
    EXPECT_TRUE(back.metadata.contains("sdc.config.unet"));
  }
}

TEST(OnnxReader, RefusesMalformedFolders) {
  test::TempDir dir;
  EXPECT_NE(error_of(dir.file("none")).find("model.json: expected a readable model.json"),
            std::string::npos);
  fs::create_directories(dir.file("foreign"));
  std::ofstream(dir.file("foreign/model.json")) << R"({"format": "other"})";
  EXPECT_NE(error_of(dir.file("foreign")).find("format: expected \"sdc-onnx\""), std::string::npos);

  const std::string out = export_tiny(dir, "ext", {"--external-data"});
  const fs::path unet = fs::path(out) / "unet/unet_fuse_1.onnx";
  const fs::path data = fs::path(out) / "unet/unet_fuse_1.onnx.data";
  fs::resize_file(data, fs::file_size(data) / 2);
  EXPECT_NE(error_of(out).find("external data: expected"), std::string::npos) << error_of(out);
  fs::remove(data);
  EXPECT_NE(error_of(out).find("unet_fuse_1.onnx.data"), std::string::npos) << error_of(out);
  std::ofstream(unet, std::ios::binary | std::ios::trunc) << std::string("\x3a\xff\xff\x01", 4);
  EXPECT_NE(error_of(out).find("unet_fuse_1.onnx: ModelProto: field 7: expected"),
            std::string::npos)
      << error_of(out);
  std::ofstream(unet, std::ios::binary | std::ios::trunc) << std::string("\x0f\x01", 2);
  EXPECT_NE(error_of(out).find("wire type 0, 1, 2 or 5, found 7"), std::string::npos)
      << error_of(out);
}

}  // namespace
}  // namespace sdc
