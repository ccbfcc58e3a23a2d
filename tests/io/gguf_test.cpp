// GGUF: typed metadata and tensors round-trip, GGML dim order, alignment, and every malformed
// header is refused with its reason before anything is allocated.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "common/fixtures.h"
#include "io/gguf.h"

namespace sdc {
namespace {

using io::GgufType;
using io::GgufValue;

// Builds raw GGUF bytes by hand, to test what the writer would never produce.
struct Raw {
  std::string b;
  Raw& u32(uint32_t v) {
    for (int i = 0; i < 4; ++i) b.push_back(char((v >> (8 * i)) & 0xff));
    return *this;
  }
  Raw& u64(uint64_t v) {
    for (int i = 0; i < 8; ++i) b.push_back(char((v >> (8 * i)) & 0xff));
    return *this;
  }
  Raw& str(const std::string& s) {
    u64(s.size());
    b += s;
    return *this;
  }
  Raw& header(uint64_t tensors, uint64_t kvs, uint32_t version = 3) {
    b += "GGUF";
    return u32(version).u64(tensors).u64(kvs);
  }
  Raw& pad(size_t a) {
    while (b.size() % a) b.push_back('\0');
    return *this;
  }
};

std::string write_file(const test::TempDir& dir, const std::string& bytes,
                       const std::string& name = "t.gguf") {
  std::ofstream out(dir.file(name), std::ios::binary);
  out << bytes;
  return dir.file(name);
}

std::string error_of(const std::string& path) {
  try {
    io::read_gguf(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

std::string parse_error_of(const std::string& bytes) {
  try {
    io::parse_gguf(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "mem", nullptr);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

io::GgufMetadata every_type() {
  return {
      {"u8", GgufValue::u8(250)},
      {"i8", GgufValue::i8(-100)},
      {"u16", GgufValue::u16(65000)},
      {"i16", GgufValue::i16(-32000)},
      {"u32", GgufValue::u32(4000000000u)},
      {"i32", GgufValue::i32(-2000000000)},
      {"u64", GgufValue::u64(18000000000000000000ull)},
      {"i64", GgufValue::i64(-9000000000000000000ll)},
      {"f32", GgufValue::f32(0.18215f)},
      {"f64", GgufValue::f64(3.141592653589793)},
      {"bool", GgufValue::boolean(true)},
      {"string", GgufValue::string("h\xc3\xa9llo")},
      {"empty_string", GgufValue::string("")},
      {"strings", GgufValue::string_array({"a", "bc", ""})},
      {"ints", GgufValue::array(GgufType::I32, {GgufValue::i32(1), GgufValue::i32(-2)})},
      {"nested",
       GgufValue::array(GgufType::Array, {GgufValue::array(GgufType::U8, {GgufValue::u8(1)}),
                                          GgufValue::array(GgufType::U8, {})})},
      {"empty_array", GgufValue::array(GgufType::F32, {})},
  };
}

TEST(Gguf, RoundTripsEveryMetadataTypeAndTensors) {
  test::TempDir dir;
  WeightMap m;
  m.set("conv.weight",
        TensorRef::from_f32(std::vector<float>(2 * 3 * 3 * 3, 0.5f), {2, 3, 3, 3}, DType::F32));
  m.set("half", TensorRef::from_f32({1, -2, 3, 65504}, {4}, DType::F16));
  m.set("brain", TensorRef::from_f32({1.5f, 2.5f, 3.5f, 4.5f, 5.5f, 6.5f}, {3, 2}, DType::BF16));
  m.set("scalar", TensorRef::from_f32({7}, {}, DType::F32));
  const io::GgufMetadata kv = every_type();
  io::write_gguf(dir.file("m.gguf"), m, kv);
  EXPECT_EQ(dir.list(), std::vector<std::string>{"m.gguf"});

  io::GgufFile g = io::read_gguf(dir.file("m.gguf"));
  EXPECT_EQ(g.version, 3u);
  EXPECT_EQ(g.alignment, 64u);
  EXPECT_EQ(g.file.format, io::FileFormat::Gguf);
  EXPECT_EQ(g.file.file_size, std::filesystem::file_size(dir.file("m.gguf")));
  ASSERT_EQ(g.kv.size(), kv.size() + 1);  // + general.alignment
  for (size_t i = 0; i < kv.size(); ++i) {
    EXPECT_EQ(g.kv[i].first, kv[i].first);
    EXPECT_TRUE(g.kv[i].second == kv[i].second) << kv[i].first;
  }
  EXPECT_EQ(g.kv.back().first, "general.alignment");
  EXPECT_EQ(g.file.metadata["u64"].get<uint64_t>(), 18000000000000000000ull);
  EXPECT_EQ(g.file.metadata["i8"].get<int>(), -100);
  EXPECT_EQ(g.file.metadata["strings"], nlohmann::json({"a", "bc", ""}));
  EXPECT_EQ(g.file.metadata["nested"], nlohmann::json::parse("[[1],[]]"));
  EXPECT_FLOAT_EQ(g.file.metadata["f32"].get<float>(), 0.18215f);

  ASSERT_EQ(g.file.tensors.size(), 4u);
  for (const auto& [name, t] : m.all()) {
    const TensorRef& r = g.file.tensors.get(name);
    EXPECT_EQ(r.shape, t.shape) << name;
    EXPECT_EQ(r.dtype, t.dtype) << name;
    ASSERT_EQ(r.nbytes, t.nbytes) << name;
    EXPECT_EQ(std::memcmp(r.data, t.data, t.nbytes), 0) << name;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(r.data) % 64, 0u) << name;  // aligned in memory too
  }

  // Written again from what was read: byte-identical.
  io::write_gguf(dir.file("again.gguf"), g.file.tensors, g.kv);
  std::ifstream a(dir.file("m.gguf"), std::ios::binary),
      b(dir.file("again.gguf"), std::ios::binary);
  std::string sa((std::istreambuf_iterator<char>(a)), {}),
      sb((std::istreambuf_iterator<char>(b)), {});
  EXPECT_EQ(sa, sb);
}

TEST(Gguf, StoresDimsInnermostFirst) {
  test::TempDir dir;
  WeightMap m;
  m.set("w", TensorRef::from_f32({1, 2, 3, 4, 5, 6}, {2, 3}, DType::F32));
  io::write_gguf(dir.file("w.gguf"), m, {}, 32);
  std::ifstream in(dir.file("w.gguf"), std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(in)), {});
  // header 24 + kv "general.alignment" (8 + 17 + 4 + 4) + name (8 + 1) + n_dims 4, then dims.
  const size_t dims_at = 24 + 33 + 9 + 4;
  uint64_t ne0, ne1;
  std::memcpy(&ne0, s.data() + dims_at, 8);
  std::memcpy(&ne1, s.data() + dims_at + 8, 8);
  EXPECT_EQ(ne0, 3u);
  EXPECT_EQ(ne1, 2u);
}

TEST(Gguf, ReadsHandWrittenFileWithDefaultAlignment) {
  // A file without general.alignment: data starts at the next multiple of 32.
  Raw r;
  r.header(1, 1).str("general.name").u32(8).str("tiny");
  r.str("t").u32(3).u64(2).u64(1).u64(3).u32(1).u64(0);  // F16, GGML dims [2,1,3]
  r.pad(32);
  for (int i = 0; i < 6; ++i) r.b += std::string("\x00\x3c", 2);  // 1.0 in f16
  test::TempDir dir;
  io::GgufFile g = io::read_gguf(write_file(dir, r.b));
  EXPECT_EQ(g.alignment, 32u);
  const TensorRef& t = g.file.tensors.get("t");
  EXPECT_EQ(t.shape, (Shape{3, 1, 2}));
  EXPECT_EQ(t.to_f32(), std::vector<float>(6, 1.0f));
  EXPECT_EQ(g.file.metadata["general.name"], "tiny");
}

TEST(Gguf, AcceptsVersion2) {
  Raw r;
  r.header(0, 0, 2);
  test::TempDir dir;
  EXPECT_EQ(io::read_gguf(write_file(dir, r.b)).version, 2u);
}

TEST(Gguf, ValueFromJson) {
  auto v = io::gguf_value_from_json(nlohmann::json::parse(R"([1, -2, 3])"));
  EXPECT_EQ(v.type, GgufType::Array);
  EXPECT_EQ(v.element_type, GgufType::I64);
  EXPECT_EQ(io::gguf_value_from_json("x").type, GgufType::String);
  EXPECT_EQ(io::gguf_value_from_json(7u).type, GgufType::U64);
  EXPECT_EQ(io::gguf_value_from_json(0.5).type, GgufType::F64);
  try {
    io::gguf_value_from_json(nlohmann::json::object(), "sdc.config");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sdc.config: expected a string, number, bool or array"),
              std::string::npos)
        << e.what();
  }
  try {
    io::gguf_value_from_json(nlohmann::json::parse(R"([1, "a"])"), "mixed");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("share one type"), std::string::npos) << e.what();
  }
}

TEST(GgufBadInput, EmptyFile) {
  test::TempDir dir;
  EXPECT_EQ(error_of(write_file(dir, "")),
            dir.file("t.gguf") + ": expected a GGUF file, found an empty file");
}

TEST(GgufBadInput, BadMagic) {
  test::TempDir dir;
  Raw r;
  r.header(0, 0);
  r.b[0] = 'X';
  EXPECT_EQ(error_of(write_file(dir, r.b)),
            dir.file("t.gguf") + ": magic: expected \"GGUF\", found \"XGUF\"");
}

TEST(GgufBadInput, UnsupportedVersion) {
  Raw r;
  r.header(0, 0, 1);
  EXPECT_EQ(parse_error_of(r.b), "mem: version: expected 3 (or 2), found 1");
}

TEST(GgufBadInput, AbsurdTensorCount) {
  Raw r;
  r.header(uint64_t(1) << 62, 0);
  EXPECT_NE(parse_error_of(r.b).find("tensor count: expected at most 0"), std::string::npos)
      << parse_error_of(r.b);
}

TEST(GgufBadInput, AbsurdKeyValueCount) {
  Raw r;
  r.header(0, ~uint64_t(0));
  r.b += std::string(100, '\0');
  EXPECT_NE(parse_error_of(r.b).find("metadata key/value count: expected at most 7"),
            std::string::npos)
      << parse_error_of(r.b);
}

TEST(GgufBadInput, StringLengthPastEnd) {
  Raw r;
  r.header(0, 1).u64(uint64_t(1) << 60).b += "abcdefghijklm";
  EXPECT_NE(parse_error_of(r.b).find("metadata key 0 length: expected at most the 13 bytes left"),
            std::string::npos)
      << parse_error_of(r.b);
}

TEST(GgufBadInput, ArrayLengthPastEnd) {
  Raw r;
  r.header(0, 1).str("a").u32(9).u32(uint32_t(GgufType::U32)).u64(1000).u32(1);
  EXPECT_NE(parse_error_of(r.b).find("metadata a array length: expected at most 1 elements"),
            std::string::npos)
      << parse_error_of(r.b);
}

TEST(GgufBadInput, UnknownValueType) {
  Raw r;
  r.header(0, 1).str("a").u32(13).u32(0);
  EXPECT_EQ(parse_error_of(r.b),
            "mem: metadata a type: expected a GGUF value type 0..12, found 13");
}

TEST(GgufBadInput, NestingTooDeep) {
  Raw r;
  r.header(0, 1).str("deep").u32(9);
  for (int i = 0; i < 20; ++i) r.u32(9).u64(1);
  r.u32(0).u64(0);
  EXPECT_NE(parse_error_of(r.b).find("arrays nested at most 8 deep"), std::string::npos)
      << parse_error_of(r.b);
}

TEST(GgufBadInput, TooManyDims) {
  Raw r;
  r.header(1, 0).str("t").u32(5);
  for (int i = 0; i < 5; ++i) r.u64(1);
  r.u32(0).u64(0).pad(32).b += std::string(4, '\0');
  EXPECT_EQ(parse_error_of(r.b), "mem: tensor t dimension count: expected at most 4, found 5");
}

TEST(GgufBadInput, QuantisedTypeIsRefused) {
  Raw r;
  r.header(1, 0).str("t").u32(1).u64(32).u32(8).u64(0).pad(32).b += std::string(34, '\0');
  EXPECT_NE(parse_error_of(r.b).find("tensor t type: expected F32, F16 or BF16"),
            std::string::npos);
  EXPECT_NE(parse_error_of(r.b).find("GGML type 8 (Q8_0)"), std::string::npos)
      << parse_error_of(r.b);
}

TEST(GgufBadInput, HugeDimsAreRefusedBeforeAllocating) {
  Raw r;
  r.header(1, 0).str("t").u32(2).u64(uint64_t(1) << 40).u64(uint64_t(1) << 40).u32(0).u64(0);
  EXPECT_NE(parse_error_of(r.b).find("tensor t dimensions: expected a size that fits in the file"),
            std::string::npos)
      << parse_error_of(r.b);
}

TEST(GgufBadInput, HugeDimsBesideAZeroDimAreRefused) {
  // Zero bytes, but numel() of the other dims would overflow (found by the fuzzer).
  Raw r;
  r.header(1, 0).str("t").u32(3).u64(0).u64(uint64_t(1) << 40).u64(uint64_t(1) << 40);
  r.u32(0).u64(0).pad(32);
  EXPECT_NE(parse_error_of(r.b).find("tensor t dimensions: expected a size that fits in the file"),
            std::string::npos)
      << parse_error_of(r.b);
}

TEST(GgufBadInput, UnalignedOffset) {
  Raw r;
  r.header(1, 0).str("t").u32(1).u64(1).u32(0).u64(4).pad(32).b += std::string(64, '\0');
  EXPECT_EQ(parse_error_of(r.b),
            "mem: tensor t offset: expected a multiple of the alignment 32, found 4");
}

TEST(GgufBadInput, OffsetPastEnd) {
  Raw r;
  r.header(1, 0).str("t").u32(1).u64(4).u32(0).u64(32).pad(32).b += std::string(40, '\0');
  EXPECT_NE(parse_error_of(r.b).find("tensor t offset: expected a span inside the data area of 40"),
            std::string::npos)
      << parse_error_of(r.b);
}

TEST(GgufBadInput, BadAlignmentKey) {
  Raw r;
  r.header(0, 1).str("general.alignment").u32(4).u32(48);
  EXPECT_EQ(parse_error_of(r.b), "mem: general.alignment: expected a power of two, found 48");
  Raw s;
  s.header(0, 1).str("general.alignment").u32(8).str("x");
  EXPECT_EQ(parse_error_of(s.b), "mem: general.alignment: expected a u32, found string");
}

TEST(GgufBadInput, DuplicateTensorName) {
  Raw r;
  r.header(2, 0).str("t").u32(1).u64(1).u32(0).u64(0).str("t").u32(1).u64(1).u32(0).u64(32);
  r.pad(32).b += std::string(64, '\0');
  EXPECT_EQ(parse_error_of(r.b), "mem: tensor t: expected unique tensor names, found a duplicate");
}

TEST(GgufBadInput, OverlappingTensors) {
  Raw r;
  r.header(2, 0).str("a").u32(1).u64(16).u32(0).u64(0).str("b").u32(1).u64(16).u32(0).u64(32);
  r.pad(32).b += std::string(128, '\0');
  EXPECT_EQ(parse_error_of(r.b),
            "mem: tensor b offset: expected no overlap with other tensors, found overlaps a");
}

TEST(GgufBadInput, BadBool) {
  Raw r;
  r.header(0, 1).str("b").u32(7).b += '\x02';
  EXPECT_EQ(parse_error_of(r.b), "mem: metadata b: expected a bool (0 or 1), found 2");
}

TEST(GgufBadInput, EveryTruncationIsRefused) {
  test::TempDir dir;
  WeightMap m;
  m.set("a", TensorRef::from_f32({1, 2, 3}, {3}, DType::F32));
  m.set("b", TensorRef::from_f32({4, 5}, {1, 2}, DType::F16));
  io::write_gguf(dir.file("full.gguf"), m, {{"k", GgufValue::string_array({"x", "yz"})}});
  std::ifstream in(dir.file("full.gguf"), std::ios::binary);
  const std::string full((std::istreambuf_iterator<char>(in)), {});
  // Cutting anywhere inside the header or the last tensor's bytes must be an error; cutting the
  // final tensor's padding leaves a valid file.
  const size_t last_data_end = full.size() - 64 + 4;
  for (size_t n = 0; n < last_data_end; ++n) {
    const std::string msg = parse_error_of(full.substr(0, n));
    EXPECT_NE(msg, "no error") << "cut at " << n;
  }
  const std::string truncated = write_file(dir, full.substr(0, full.size() - 100));
  EXPECT_NE(error_of(truncated).find("truncated"), std::string::npos) << error_of(truncated);
}

TEST(GgufWriter, RefusesWhatGgufCannotHold) {
  test::TempDir dir;
  auto writer_error = [&](const WeightMap& m, const io::GgufMetadata& kv, uint32_t alignment) {
    try {
      io::write_gguf(dir.file("x.gguf"), m, kv, alignment);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  WeightMap ok;
  ok.set("a", TensorRef::from_f32({1}, {1}, DType::F32));
  EXPECT_NE(writer_error(ok, {}, 48).find("alignment: expected a power of two, found 48"),
            std::string::npos);
  EXPECT_NE(writer_error(ok, {{"general.alignment", GgufValue::u32(32)}}, 64)
                .find("general.alignment: expected a u32 equal to 64"),
            std::string::npos);
  EXPECT_NE(writer_error(ok, {{"k", GgufValue::u8(1)}, {"k", GgufValue::u8(2)}}, 64)
                .find("metadata k: expected unique keys"),
            std::string::npos);
  EXPECT_NE(writer_error(ok, {{"arr", GgufValue::array(GgufType::U8, {GgufValue::i8(1)})}}, 64)
                .find("metadata arr: expected array items of type u8, found i8"),
            std::string::npos);
  WeightMap five;
  five.set("w", TensorRef::from_f32({1}, {1, 1, 1, 1, 1}, DType::F32));
  EXPECT_NE(writer_error(five, {}, 64).find("w: expected at most 4 dimensions"), std::string::npos);
  WeightMap u8;
  auto buf = std::make_shared<std::vector<uint8_t>>(1, 1);
  TensorRef t;
  t.dtype = DType::U8;
  t.shape = {1};
  t.data = buf->data();
  t.nbytes = 1;
  t.owner = buf;
  u8.set("byte", t);
  EXPECT_NE(writer_error(u8, {}, 64).find("byte: expected F32, F16, BF16"), std::string::npos);
  EXPECT_EQ(dir.list(), std::vector<std::string>{});  // nothing half-written left behind
}

}  // namespace
}  // namespace sdc
