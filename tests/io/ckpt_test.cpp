// PyTorch zip checkpoints: the fixture .ckpt gives exactly the tensors of model.safetensors, the
// malicious fixture is refused without side effects, crafted archives exercise shared storages,
// offsets, strides, compression and alignment, and every bad input is refused with its reason.
#include <gtest/gtest.h>
#include <unistd.h>

#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "common/fixtures.h"
#include "io/ckpt.h"
#include "io/ckpt_builder.h"
#include "io/pickle_builder.h"
#include "io/safetensors.h"

namespace sdc {
namespace {

using test::PickleBuilder;
using Entry = test::ZipEntry;
using test::make_ckpt;
using test::write_zip;

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

template <class T>
std::string raw_bytes(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

std::string f32_iota(int n) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) v[size_t(i)] = float(i);
  return raw_bytes(v);
}

uint32_t crc32(const std::string& s) {
  uint32_t c = 0xffffffffu;
  for (unsigned char b : s) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
  }
  return ~c;
}

// A ZIP64 archive written field by field, as writers do for checkpoints over 4 GB: every size
// and offset lives in ZIP64 extra fields, and a ZIP64 end record stands before the classic one.
std::string zip64_archive(const std::vector<Entry>& entries) {
  std::string out, cd;
  auto le = [](std::string& s, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) s += char((v >> (8 * i)) & 0xff);
  };
  for (const Entry& e : entries) {
    const uint64_t offset = out.size();
    le(out, 0x04034b50, 4), le(out, 45, 2), le(out, 0, 2), le(out, 0, 2), le(out, 0, 4);
    le(out, crc32(e.data), 4), le(out, 0xffffffff, 4), le(out, 0xffffffff, 4);
    le(out, e.name.size(), 2), le(out, 20, 2);
    out += e.name;
    le(out, 1, 2), le(out, 16, 2), le(out, e.data.size(), 8), le(out, e.data.size(), 8);
    out += e.data;
    le(cd, 0x02014b50, 4), le(cd, 45, 2), le(cd, 45, 2), le(cd, 0, 2), le(cd, 0, 2), le(cd, 0, 4);
    le(cd, crc32(e.data), 4), le(cd, 0xffffffff, 4), le(cd, 0xffffffff, 4);
    le(cd, e.name.size(), 2), le(cd, 28, 2), le(cd, 0, 2), le(cd, 0, 2), le(cd, 0, 2), le(cd, 0, 4);
    le(cd, 0xffffffff, 4);
    cd += e.name;
    le(cd, 1, 2), le(cd, 24, 2), le(cd, e.data.size(), 8), le(cd, e.data.size(), 8);
    le(cd, offset, 8);
  }
  const uint64_t cd_offset = out.size(), record = cd_offset + cd.size();
  out += cd;
  le(out, 0x06064b50, 4), le(out, 44, 8), le(out, 45, 2), le(out, 45, 2), le(out, 0, 4);
  le(out, 0, 4), le(out, entries.size(), 8), le(out, entries.size(), 8), le(out, cd.size(), 8);
  le(out, cd_offset, 8);
  le(out, 0x07064b50, 4), le(out, 0, 4), le(out, record, 8), le(out, 1, 4);
  le(out, 0x06054b50, 4), le(out, 0, 2), le(out, 0, 2), le(out, 0xffff, 2), le(out, 0xffff, 2);
  le(out, 0xffffffff, 4), le(out, 0xffffffff, 4), le(out, 0, 2);
  return out;
}

std::string error_of(const std::string& path) {
  try {
    io::read_ckpt(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

std::vector<float> values(const TensorRef& t) {
  return t.to_f32();
}

// ---- the fixtures ----

TEST(Ckpt, FixtureGivesTheTensorsOfTheSafetensorsFile) {
  const io::TensorFile ck = io::read_ckpt(test::tiny("model.ckpt"));
  const io::TensorFile st = io::read_safetensors(test::tiny("model.safetensors"));
  EXPECT_EQ(ck.format, io::FileFormat::Ckpt);
  EXPECT_EQ(ck.path, test::tiny("model.ckpt"));
  EXPECT_EQ(ck.file_size, std::filesystem::file_size(test::tiny("model.ckpt")));
  ASSERT_EQ(ck.tensors.size(), st.tensors.size());
  for (const auto& [name, want] : st.tensors.all()) {
    const TensorRef* got = ck.tensors.find(name);
    ASSERT_NE(got, nullptr) << name;
    EXPECT_EQ(got->dtype, want.dtype) << name;
    EXPECT_EQ(got->shape, want.shape) << name;
    ASSERT_EQ(got->nbytes, want.nbytes) << name;
    EXPECT_EQ(std::memcmp(got->data, want.data, want.nbytes), 0) << name;
  }
  EXPECT_EQ(ck.metadata, (nlohmann::json{{"global_step", 470000}, {"epoch", 6}}));
}

TEST(Ckpt, FixtureTensorsAreViewsOfTheMappedFile) {
  const io::TensorFile ck = io::read_ckpt(test::tiny("model.ckpt"));
  const void* owner = nullptr;
  for (const auto& [name, t] : ck.tensors.all()) {
    // One shared owner (the mapping) for every tensor: nothing was copied. torch aligns each
    // stored entry to 64 bytes, and the views keep that.
    if (!owner) owner = t.owner.get();
    EXPECT_EQ(t.owner.get(), owner) << name;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % 64, 0u) << name;
  }
  EXPECT_NE(owner, nullptr);
}

TEST(Ckpt, MaliciousFixtureIsRefusedWithoutRunningAnything) {
  const std::string fixture = test::tiny("malicious.ckpt");
  test::TempDir cwd;
  char old[PATH_MAX];
  ASSERT_NE(getcwd(old, sizeof old), nullptr);
  ASSERT_EQ(chdir(cwd.path().c_str()), 0);
  const std::string msg = error_of(fixture);
  ASSERT_EQ(chdir(old), 0);
  EXPECT_EQ(msg, fixture + ": archive/data.pkl byte 196: GLOBAL: " + test::kAllowedGlobals +
                     ", found posix.system");
  EXPECT_TRUE(cwd.list().empty());
  EXPECT_FALSE(std::filesystem::exists(test::tiny("sdc-pwned-marker")));
  EXPECT_FALSE(std::filesystem::exists(std::string(old) + "/sdc-pwned-marker"));
}

// ---- crafted checkpoints that load ----

// One float storage "0" = [0, 1, ..., 11] seen through several views, and a long storage "1".
std::string views_pickle() {
  PickleBuilder p;
  p.empty_dict().mark();
  p.str("whole").tensor("FloatStorage", "0", 12, 0, {3, 4}, {4, 1});
  p.str("row1").tensor("FloatStorage", "0", 12, 4, {4}, {1});
  p.str("block").tensor("FloatStorage", "0", 12, 1, {2, 2}, {4, 1});
  p.str("transposed").tensor("FloatStorage", "0", 12, 0, {4, 3}, {1, 4});
  p.str("every4th").tensor("FloatStorage", "0", 12, 1, {3}, {4});
  p.str("expanded").tensor("FloatStorage", "0", 12, 2, {2, 3}, {0, 1});
  p.str("scalar").tensor("FloatStorage", "0", 12, 5, {}, {});
  p.str("empty").tensor("FloatStorage", "0", 12, 12, {0, 4}, {4, 1});
  p.str("param").global("torch._utils", "_rebuild_parameter").mark();
  p.tensor("FloatStorage", "0", 12, 8, {2, 2}, {2, 1})
      .boolean(true)
      .ordered_dict()
      .tuple()
      .reduce();
  p.str("steps").tensor("LongStorage", "1", 3, 0, {3}, {1});
  return p.setitems().done();
}

void expect_views(const io::TensorFile& f) {
  ASSERT_EQ(f.tensors.size(), 10u);
  EXPECT_EQ(values(f.tensors.get("whole", {3, 4})),
            (std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}));
  EXPECT_EQ(values(f.tensors.get("row1", {4})), (std::vector<float>{4, 5, 6, 7}));
  EXPECT_EQ(values(f.tensors.get("block", {2, 2})), (std::vector<float>{1, 2, 5, 6}));
  EXPECT_EQ(values(f.tensors.get("transposed", {4, 3})),
            (std::vector<float>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}));
  EXPECT_EQ(values(f.tensors.get("every4th", {3})), (std::vector<float>{1, 5, 9}));
  EXPECT_EQ(values(f.tensors.get("expanded", {2, 3})), (std::vector<float>{2, 3, 4, 2, 3, 4}));
  EXPECT_EQ(values(f.tensors.get("scalar", {})), (std::vector<float>{5}));
  EXPECT_EQ(f.tensors.get("empty", {0, 4}).nbytes, 0u);
  EXPECT_NE(f.tensors.get("empty").data, nullptr);
  EXPECT_EQ(values(f.tensors.get("param", {2, 2})), (std::vector<float>{8, 9, 10, 11}));
  const TensorRef& steps = f.tensors.get("steps", {3});
  EXPECT_EQ(steps.dtype, DType::I64);
  EXPECT_EQ(std::string(static_cast<const char*>(steps.data), steps.nbytes),
            raw_bytes(std::vector<int64_t>{10, -20, 1ll << 40}));
  for (const auto& [name, t] : f.tensors.all())
    if (t.dtype == DType::F32) {
      EXPECT_EQ(t.dtype, DType::F32) << name;
      EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % 4, 0u) << name;
    }
}

const std::vector<std::pair<std::string, std::string>> kViewStorages{
    {"0", f32_iota(12)}, {"1", raw_bytes(std::vector<int64_t>{10, -20, 1ll << 40})}};

TEST(Ckpt, SharedStorageOffsetsAndStrides) {
  test::TempDir dir;
  const io::TensorFile f = io::read_ckpt(make_ckpt(dir, views_pickle(), kViewStorages));
  expect_views(f);
  // Contiguous views of one storage point into it (zero-copy), at their offsets.
  const TensorRef& whole = f.tensors.get("whole");
  const auto* base = static_cast<const uint8_t*>(whole.data);
  EXPECT_EQ(f.tensors.get("row1").data, base + 4 * 4);
  EXPECT_EQ(f.tensors.get("scalar").data, base + 5 * 4);
  EXPECT_EQ(f.tensors.get("param").data, base + 8 * 4);
  EXPECT_EQ(f.tensors.get("row1").owner, whole.owner);
  // Non-contiguous views are materialised into their own buffers.
  EXPECT_NE(f.tensors.get("transposed").owner, whole.owner);
}

TEST(Ckpt, CompressedEntriesAreDecompressed) {
  test::TempDir dir;
  expect_views(io::read_ckpt(make_ckpt(dir, views_pickle(), kViewStorages, true)));
}

TEST(Ckpt, MisalignedStoredEntriesAreCopiedToAlignedMemory) {
  // libzip does not pad like torch does; folder names of several lengths move the data offset
  // through every alignment.
  for (const std::string folder : {"a", "ab", "abc", "abcd"}) {
    test::TempDir dir;
    expect_views(io::read_ckpt(make_ckpt(dir, views_pickle(), kViewStorages, false, folder)));
  }
}

TEST(Ckpt, Zip64Archive) {
  test::TempDir dir;
  std::vector<Entry> entries{{"big/data.pkl", views_pickle()}};
  for (const auto& [key, data] : kViewStorages) entries.push_back({"big/data/" + key, data});
  write_file(dir.file("z.ckpt"), zip64_archive(entries));
  expect_views(io::read_ckpt(dir.file("z.ckpt")));
}

TEST(Ckpt, StateDictWrapperAsLightningWritesIt) {
  // {'epoch': 3, 'global_step': 10, 'pytorch-lightning_version': '1.4.2', 'lr': 0.5,
  //  'state_dict': OrderedDict(w=..., b=...) with a _metadata attribute,
  //  'callbacks': {ModelCheckpoint: {'best_model_score': numpy scalar, 'dirpath': None}},
  //  'optimizer_states': [{'state': {0: {'exp_avg': tensor}}}], 'hparams': set(['x'])}
  PickleBuilder p;
  p.empty_dict().mark();
  p.str("epoch").integer(3).str("global_step").integer(10);
  p.str("pytorch-lightning_version")
      .str("1.4.2")
      .str("lr")
      .op('G')
      .raw(std::string("\x3f\xe0\0\0\0\0\0\0", 8));
  p.str("state_dict").ordered_dict().mark();
  p.str("model.w").tensor("HalfStorage", "0", 4, 0, {2, 2}, {2, 1});
  p.str("model.b").tensor("BFloat16Storage", "1", 2, 0, {2}, {1});
  p.str("model.mask").tensor("BoolStorage", "2", 3, 0, {3}, {1});
  p.setitems();
  p.empty_dict().str("_metadata").ordered_dict().mark().str("").empty_dict().str("version");
  p.integer(1).setitem().setitems().setitem().build();
  p.str("callbacks").empty_dict();
  p.global("pytorch_lightning.callbacks.model_checkpoint", "ModelCheckpoint").empty_dict();
  p.str("best_model_score").global("numpy.core.multiarray", "scalar");
  p.global("numpy", "dtype").mark().str("f8").boolean(false).boolean(true).tuple().reduce();
  p.mark()
      .integer(3)
      .str("<")
      .none()
      .none()
      .none()
      .integer(-1)
      .integer(-1)
      .integer(0)
      .tuple()
      .build();
  p.global("_codecs", "encode")
      .str(std::string("\0\0\0\0\0\0\xc3\xb0?", 9))
      .str("latin1")
      .op(0x86)
      .reduce();
  p.op(0x86).reduce().setitem().str("dirpath").none().setitem().setitem();
  p.str("optimizer_states")
      .empty_list()
      .empty_dict()
      .str("state")
      .empty_dict()
      .integer(0)
      .empty_dict();
  p.str("exp_avg").tensor("FloatStorage", "3", 4, 0, {2, 2}, {2, 1});
  p.setitem().setitem().setitem().append();
  p.str("hparams").global("builtins", "set").mark().str("x").op('l').op(0x85).reduce();
  p.setitems();
  const std::vector<std::pair<std::string, std::string>> storages{
      {"0", raw_bytes(std::vector<uint16_t>{0x3c00, 0x4000, 0x4200, 0xbc00})},  // 1 2 3 -1
      {"1", raw_bytes(std::vector<uint16_t>{0x3f80, 0xc000})},                  // 1 -2
      {"2", std::string("\1\0\1", 3)},
      {"3", f32_iota(4)}};
  test::TempDir dir;
  const io::TensorFile f = io::read_ckpt(make_ckpt(dir, p.done(), storages, false, "model"));
  ASSERT_EQ(f.tensors.size(), 3u);
  EXPECT_EQ(f.tensors.get("model.w", {2, 2}).dtype, DType::F16);
  EXPECT_EQ(values(f.tensors.get("model.w")), (std::vector<float>{1, 2, 3, -1}));
  EXPECT_EQ(f.tensors.get("model.b", {2}).dtype, DType::BF16);
  EXPECT_EQ(values(f.tensors.get("model.b")), (std::vector<float>{1, -2}));
  EXPECT_EQ(f.tensors.get("model.mask", {3}).dtype, DType::Bool);
  EXPECT_EQ(
      f.metadata,
      (nlohmann::json{
          {"epoch", 3}, {"global_step", 10}, {"pytorch-lightning_version", "1.4.2"}, {"lr", 0.5}}));
}

TEST(Ckpt, EmptyStateDict) {
  test::TempDir dir;
  const io::TensorFile f = io::read_ckpt(make_ckpt(dir, PickleBuilder().empty_dict().done(), {}));
  EXPECT_EQ(f.tensors.size(), 0u);
}

// ---- refused inputs ----

TEST(CkptBadInput, NotACheckpoint) {
  test::TempDir dir;
  write_file(dir.file("e.ckpt"), "");
  EXPECT_EQ(error_of(dir.file("e.ckpt")),
            dir.file("e.ckpt") + ": expected a PyTorch zip checkpoint, found an empty file");
  write_file(dir.file("t.ckpt"), "hello world");
  EXPECT_EQ(error_of(dir.file("t.ckpt")),
            dir.file("t.ckpt") +
                ": expected a PyTorch zip checkpoint (starting with PK), found other data");
}

TEST(CkptBadInput, LegacyFormat) {
  test::TempDir dir;
  // torch < 1.6: a pickled magic number (LONG1 0x1950a86a20f9469cfc6c) then more pickles.
  write_file(dir.file("old.pt"),
             std::string("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.", 15));
  EXPECT_EQ(error_of(dir.file("old.pt")),
            dir.file("old.pt") +
                ": legacy PyTorch format not supported; re-save with torch>=1.6 or convert to "
                "safetensors");
  std::string tar(1024, '\0');
  std::memcpy(&tar[0], "storages", 8);
  std::memcpy(&tar[257], "ustar", 5);
  write_file(dir.file("older.pt"), tar);
  EXPECT_EQ(error_of(dir.file("older.pt")),
            dir.file("older.pt") +
                ": legacy PyTorch format not supported; re-save with torch>=1.6 or convert to "
                "safetensors");
}

TEST(CkptBadInput, TruncatedFiles) {
  test::TempDir dir;
  const std::string whole = read_file(test::tiny("model.ckpt"));
  for (size_t keep : {whole.size() / 2, whole.size() - 1, size_t(100)}) {
    write_file(dir.file("cut.ckpt"), whole.substr(0, keep));
    EXPECT_EQ(error_of(dir.file("cut.ckpt")),
              dir.file("cut.ckpt") +
                  ": zip archive: expected a valid zip archive, found Not a zip archive")
        << keep;
  }
  // The end record survives but the entries before it are gone.
  const std::string mal = read_file(test::tiny("malicious.ckpt"));
  write_file(dir.file("cut.ckpt"), mal.substr(0, 100) + mal.substr(mal.size() - 400));
  EXPECT_EQ(error_of(dir.file("cut.ckpt")),
            dir.file("cut.ckpt") +
                ": zip archive: expected a valid zip archive, found Zip archive inconsistent");
}

TEST(CkptBadInput, TruncatedPickle) {
  test::TempDir dir;
  std::string pkl = views_pickle();
  pkl.resize(pkl.size() - 1);  // no STOP
  EXPECT_EQ(error_of(make_ckpt(dir, pkl, kViewStorages)),
            dir.file("c.ckpt") + ": archive/data.pkl byte " + std::to_string(pkl.size()) +
                ": expected STOP, found end of data (truncated pickle)");
}

TEST(CkptBadInput, DataPklMissingOrAmbiguous) {
  test::TempDir dir;
  write_zip(dir.file("a.ckpt"), {{"archive/version", "3\n"}, {"archive/data/0", "abcd"}});
  EXPECT_EQ(error_of(dir.file("a.ckpt")),
            dir.file("a.ckpt") +
                ": data.pkl: expected exactly one entry <folder>/data.pkl (a PyTorch checkpoint), "
                "found none among 2 entries (archive/version, archive/data/0)");
  const std::string pkl = PickleBuilder().empty_dict().done();
  write_zip(dir.file("b.ckpt"), {{"a/data.pkl", pkl}, {"b/data.pkl", pkl}});
  EXPECT_EQ(error_of(dir.file("b.ckpt")),
            dir.file("b.ckpt") +
                ": data.pkl: expected exactly one entry <folder>/data.pkl (a PyTorch checkpoint), "
                "found 2 (a/data.pkl, b/data.pkl)");
  write_file(dir.file("c.ckpt"), std::string("PK\5\6", 4) + std::string(18, '\0'));  // empty zip
  EXPECT_EQ(error_of(dir.file("c.ckpt")),
            dir.file("c.ckpt") +
                ": data.pkl: expected exactly one entry <folder>/data.pkl (a PyTorch checkpoint), "
                "found none among 0 entries");
}

TEST(CkptBadInput, ForbiddenGlobalInACraftedCheckpoint) {
  test::TempDir dir;
  PickleBuilder p;
  p.empty_dict().str("state_dict").empty_dict().setitem();
  const size_t at = p.bytes().size();
  p.global("builtins", "eval").str("1").op(0x85).reduce();
  EXPECT_EQ(error_of(make_ckpt(dir, p.done(), {})),
            dir.file("c.ckpt") + ": archive/data.pkl byte " + std::to_string(at) +
                ": GLOBAL: " + test::kAllowedGlobals + ", found builtins.eval");
}

TEST(CkptBadInput, HostilePickles) {
  test::TempDir dir;
  const std::string at = dir.file("c.ckpt") + ": archive/data.pkl byte ";
  // Deep MARK nesting is capped.
  EXPECT_EQ(error_of(make_ckpt(dir, PickleBuilder().bytes() + std::string(100000, '('), {})),
            at + "1002: MARK: expected at most 1000 nested MARKs, found more");
  // A million nested tuples load without recursion, but are no state dict.
  PickleBuilder deep;
  deep.empty_dict();
  for (int i = 0; i < 1000000; ++i) deep.op(0x85);
  EXPECT_EQ(error_of(make_ckpt(dir, deep.done(), {})),
            dir.file("c.ckpt") +
                ": archive/data.pkl: expected a dict (a state dict or {'state_dict': ...}), found "
                "tuple");
  // A memo index that was never stored.
  EXPECT_EQ(error_of(make_ckpt(dir, PickleBuilder().get(0xffffffff).done(), {})),
            at + "2: LONG_BINGET: expected a memo index stored by an earlier PUT, found "
                 "4294967295 (never stored)");
  // A string length past the end of the pickle.
  EXPECT_EQ(
      error_of(make_ckpt(dir, PickleBuilder().op('X').raw_u(1000000, 4).raw("ab").bytes(), {})),
      at + "2: BINUNICODE: expected a string of 1000000 bytes, found only 2 bytes left "
           "(truncated pickle)");
}

TEST(CkptBadInput, StoragesThatDoNotMatch) {
  test::TempDir dir;
  const std::string path = dir.file("c.ckpt");
  auto one = [](const char* type, const char* key, int64_t numel) {
    PickleBuilder p;
    p.empty_dict().str("w").tensor(type, key, numel, 0, {numel}, {1}).setitem();
    return p.done();
  };
  EXPECT_EQ(error_of(make_ckpt(dir, one("FloatStorage", "0", 12), {{"0", f32_iota(10)}})),
            path + ": archive/data/0: expected 48 bytes (12 x F32), found 40 bytes");
  EXPECT_EQ(error_of(make_ckpt(dir, one("FloatStorage", "7", 12), {{"0", f32_iota(12)}})),
            path +
                ": archive/data/7: expected the storage entry of a tensor, found none in the "
                "archive");
  PickleBuilder p;
  p.empty_dict().mark();
  p.str("a").tensor("FloatStorage", "0", 4, 0, {4}, {1});
  p.str("b").tensor("HalfStorage", "0", 8, 0, {8}, {1});
  EXPECT_EQ(error_of(make_ckpt(dir, p.setitems().done(), {{"0", f32_iota(4)}})),
            path +
                ": storage '0': expected the same dtype and size in every use (F32 x 4), found "
                "F16 x 8");
}

TEST(CkptBadInput, ValuesThatAreNotTensors) {
  test::TempDir dir;
  const std::string path = dir.file("c.ckpt");
  PickleBuilder a;
  a.empty_dict().str("state_dict").empty_dict().str("w").integer(3).setitem().setitem();
  EXPECT_EQ(error_of(make_ckpt(dir, a.done(), {})), path + ": w: expected a tensor, found int");
  PickleBuilder b;
  b.empty_dict().str("state_dict").integer(1).setitem();
  EXPECT_EQ(error_of(make_ckpt(dir, b.done(), {})),
            path + ": state_dict: expected a dict, found int");
  PickleBuilder c;
  c.empty_dict().str("cb").global("numpy", "dtype").str("f8").op(0x85).reduce().setitem();
  EXPECT_EQ(error_of(make_ckpt(dir, c.done(), {})),
            path + ": cb: expected a tensor, found object numpy.dtype");
  PickleBuilder d;
  d.empty_dict().integer(1).tensor("FloatStorage", "0", 1, 0, {1}, {1}).setitem();
  EXPECT_EQ(error_of(make_ckpt(dir, d.done(), {{"0", f32_iota(1)}})),
            path + ": archive/data.pkl: expected tensor names as strings, found int");
  EXPECT_EQ(error_of(make_ckpt(dir, PickleBuilder().empty_list().done(), {})),
            path +
                ": archive/data.pkl: expected a dict (a state dict or {'state_dict': ...}), "
                "found list");
}

TEST(CkptBadInput, ExpandedViewTooLarge) {
  test::TempDir dir;
  PickleBuilder p;
  p.empty_dict().str("big").tensor("FloatStorage", "0", 4, 0, {1 << 20, 1 << 10, 4}, {0, 0, 1});
  EXPECT_EQ(error_of(make_ckpt(dir, p.setitem().done(), {{"0", f32_iota(4)}})),
            dir.file("c.ckpt") +
                ": big: expected a view of at most 64 MiB when it repeats storage elements, found "
                "size [1048576, 1024, 4] stride [0, 0, 1] over 4 elements");
}

TEST(CkptBadInput, BigEndianStorages) {
  test::TempDir dir;
  write_zip(dir.file("be.ckpt"), {{"archive/data.pkl", PickleBuilder().empty_dict().done()},
                                  {"archive/byteorder", "big"}});
  EXPECT_EQ(error_of(dir.file("be.ckpt")),
            dir.file("be.ckpt") + ": archive/byteorder: expected little, found 'big'");
  write_zip(dir.file("le.ckpt"), {{"archive/data.pkl", PickleBuilder().empty_dict().done()},
                                  {"archive/byteorder", "little"}});
  EXPECT_EQ(error_of(dir.file("le.ckpt")), "no error");
}

TEST(CkptBadInput, CorruptCompressedData) {
  test::TempDir dir;
  // A deflated storage whose compressed bytes are damaged after the archive was written.
  const std::string path = make_ckpt(dir, views_pickle(), {{"0", f32_iota(12)}}, true);
  std::string bytes = read_file(path);
  const size_t name = bytes.find("archive/data/0");
  ASSERT_NE(name, std::string::npos);
  for (size_t i = name + 14; i < name + 20; ++i) bytes[i] = char(~bytes[i]);
  write_file(path, bytes);
  const std::string msg = error_of(path);
  EXPECT_EQ(msg.rfind(path + ": archive/data/0: expected valid compressed data, found ", 0), 0u)
      << msg;
}

}  // namespace
}  // namespace sdc
