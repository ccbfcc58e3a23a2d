// Safetensors reader: the fixtures load, and every malformed header is refused with its reason.
#include <gtest/gtest.h>

#include <fstream>

#include "common/error.h"
#include "common/fixtures.h"
#include "io/safetensors.h"

namespace sdc {
namespace {

std::string write_raw(const test::TempDir& dir, const std::string& header, size_t data_bytes,
                      int64_t declared_len = -1) {
  const std::string path = dir.file("t.safetensors");
  std::ofstream out(path, std::ios::binary);
  uint64_t len = declared_len < 0 ? header.size() : uint64_t(declared_len);
  for (int i = 0; i < 8; ++i) out.put(char((len >> (8 * i)) & 0xff));
  out << header << std::string(data_bytes, '\0');
  return path;
}

std::string error_of(const std::string& path) {
  try {
    io::read_safetensors(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(Safetensors, ReadsFixtureModel) {
  io::TensorFile f = io::read_safetensors(test::tiny("model.safetensors"));
  EXPECT_EQ(f.format, io::FileFormat::Safetensors);
  const TensorRef& w = f.tensors.get("model.diffusion_model.input_blocks.0.0.weight");
  EXPECT_EQ(w.shape, (Shape{32, 4, 3, 3}));
  EXPECT_EQ(w.dtype, DType::F32);
}

TEST(Safetensors, RoundTripsWithMetadata) {
  test::TempDir dir;
  WeightMap m;
  m.set("a", TensorRef::from_f32({1, 2, 3, 4, 5, 6}, {2, 3}, DType::BF16));
  m.set("b", TensorRef::from_f32({7}, {1}, DType::F32));
  io::write_safetensors(dir.file("x.safetensors"), m, {{"k", "v"}});
  io::TensorFile f = io::read_safetensors(dir.file("x.safetensors"));
  EXPECT_EQ(f.tensors.get("a").to_f32(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(f.metadata["k"], "v");
  EXPECT_EQ(dir.list(), std::vector<std::string>{"x.safetensors"});
}

TEST(SafetensorsBadInput, EmptyFile) {
  test::TempDir dir;
  std::ofstream(dir.file("e.safetensors")).close();
  EXPECT_NE(error_of(dir.file("e.safetensors")).find("an empty file"), std::string::npos);
}

TEST(SafetensorsBadInput, HeaderLengthPastEnd) {
  test::TempDir dir;
  auto p = write_raw(dir, "{}", 0, 1ll << 40);
  EXPECT_NE(error_of(p).find("header length"), std::string::npos) << error_of(p);
}

TEST(SafetensorsBadInput, InvalidJson) {
  test::TempDir dir;
  auto p = write_raw(dir, "{\"a\": [", 0);
  EXPECT_NE(error_of(p).find("invalid JSON"), std::string::npos);
}

TEST(SafetensorsBadInput, UnknownDtype) {
  test::TempDir dir;
  auto p = write_raw(dir, R"({"a":{"dtype":"F8","shape":[1],"data_offsets":[0,1]}})", 1);
  EXPECT_NE(error_of(p).find("a.dtype: expected one of"), std::string::npos) << error_of(p);
}

TEST(SafetensorsBadInput, ShapeSizeMismatch) {
  test::TempDir dir;
  auto p = write_raw(dir, R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8);
  EXPECT_EQ(error_of(p),
            dir.file("t.safetensors") + ": a: expected 12 bytes for F32 [3], found 8 bytes");
}

TEST(SafetensorsBadInput, OffsetsOutOfRange) {
  test::TempDir dir;
  auto p = write_raw(dir, R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 4);
  EXPECT_NE(error_of(p).find("a.data_offsets"), std::string::npos);
}

TEST(SafetensorsBadInput, OverlappingTensors) {
  test::TempDir dir;
  auto p = write_raw(dir,
                     R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                     R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                     12);
  EXPECT_NE(error_of(p).find("overlaps a"), std::string::npos) << error_of(p);
}

TEST(SafetensorsBadInput, HugeShapeIsRefusedBeforeAllocating) {
  test::TempDir dir;
  auto p = write_raw(
      dir, R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})", 4);
  EXPECT_NE(error_of(p).find("a.shape"), std::string::npos) << error_of(p);
}

TEST(SafetensorsBadInput, HugeSizesBesideAZeroAreRefused) {
  // No elements, but 4096 x 4096 x 4096 would overflow a product of the other sizes.
  test::TempDir dir;
  auto p = write_raw(
      dir, R"({"a":{"dtype":"F32","shape":[0,4096,4096,4096],"data_offsets":[0,0]}})", 4096);
  EXPECT_NE(error_of(p).find("a.shape: expected a size that fits in the file"), std::string::npos)
      << error_of(p);
}

TEST(SafetensorsBadInput, TruncatedFile) {
  test::TempDir dir;
  auto p = write_raw(dir, R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 7);
  EXPECT_NE(error_of(p).find("a.data_offsets"), std::string::npos);
}

}  // namespace
}  // namespace sdc

namespace sdc {
namespace {

TEST(SafetensorsWriter, RefusesInconsistentTensorsWithoutWriting) {
  test::TempDir dir;
  auto error = [&](const WeightMap& m) {
    try {
      io::write_safetensors(dir.file("w.safetensors"), m);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  WeightMap reserved;
  reserved.set("__metadata__", TensorRef::from_f32({1}, {1}, DType::F32));
  EXPECT_EQ(error(reserved), dir.file("w.safetensors") +
                                 ": __metadata__: expected a tensor name, found the reserved key "
                                 "__metadata__");
  WeightMap wrong;
  TensorRef t = TensorRef::from_f32({1, 2}, {2}, DType::F32);
  t.shape = {3};
  wrong.set("t", t);
  EXPECT_EQ(error(wrong),
            dir.file("w.safetensors") + ": t: expected 12 bytes for F32 [3], found 8 bytes");
  EXPECT_EQ(dir.list(), std::vector<std::string>{});
}

}  // namespace
}  // namespace sdc
