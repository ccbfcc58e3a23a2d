// TAESD's .pth twins (taesd_decoder.pth / taesd_encoder.pth, what A1111 downloads): the fixture's
// safetensors weights written as torch.save(state_dict) writes them, read back through --taesd's
// entry point (the folder and the file) bit for bit, decoded and encoded like the safetensors
// files, in f32 and f16; a missing key, a forbidden global and a truncated zip are refused.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>

#include "common/dtype.h"
#include "common/error.h"
#include "common/feature_fixtures.h"
#include "common/fixtures.h"
#include "io/ckpt_builder.h"
#include "io/pickle_builder.h"
#include "io/safetensors.h"
#include "model/model_loader.h"
#include "model/taesd_file.h"
#include "pipeline/plan_cache.h"
#include "pipeline/taesd_codec.h"
#include "pipeline/taesd_fixture.h"

namespace sdc {
namespace {
namespace fs = std::filesystem;

const test::FeatureGroup& group() {
  return test::taesd_group();
}

constexpr double kNetworkTol = test::kTaesdNetworkTol;

// data.pkl as torch.save(module.state_dict()) writes it with protocol 2: an OrderedDict of
// _rebuild_tensor_v2 calls on persistent storages "0", "1", ..., every object memoised (a repeated
// global or shared string is a BINGET), then BUILD with the state dict's _metadata attribute.
// When `poison` names a key, its value is posix.system("touch sdc-pwned") instead, and
// `poison_at` gets the offset of that GLOBAL.
class StateDictPickle {
 public:
  std::string write(const WeightMap& tensors, const char* storage_type,
                    const std::string& poison = "", size_t* poison_at = nullptr) {
    global("collections", "OrderedDict");
    p_.empty_tuple().reduce();
    put();
    p_.mark();
    int key = 0;
    for (const auto& [name, t] : tensors.all()) {
      str(name);
      if (name == poison) {
        if (poison_at) *poison_at = p_.bytes().size();
        global("posix", "system");
        str("touch sdc-pwned");
        p_.op(0x85);  // TUPLE1
        put();
        p_.reduce();
        put();
        continue;
      }
      tensor(t, storage_type, std::to_string(key++));
    }
    p_.setitems();
    // _metadata: {"": {"version": 1}, "1": {"version": 1}, "3.conv.0": ...}, one per module.
    p_.empty_dict();
    put();
    str("_metadata");
    global("collections", "OrderedDict");
    p_.empty_tuple().reduce();
    put();
    p_.mark();
    std::vector<std::string> modules{""};
    for (const auto& [name, t] : tensors.all())
      for (size_t dot = name.find('.'); dot != std::string::npos; dot = name.find('.', dot + 1))
        if (std::find(modules.begin(), modules.end(), name.substr(0, dot)) == modules.end())
          modules.push_back(name.substr(0, dot));
    for (const std::string& m : modules) {
      str(m);
      p_.empty_dict();
      put();
      shared_str("version");
      p_.integer(1).setitem();
    }
    p_.setitems().setitem().build();
    return p_.done();
  }

 private:
  void put() { p_.put(next_++); }
  void memoised(const std::string& id, const std::function<void()>& emit) {
    if (auto it = memo_.find(id); it != memo_.end()) {
      p_.get(it->second);
      return;
    }
    emit();
    memo_[id] = next_;
    put();
  }
  void global(const std::string& module, const std::string& name) {
    memoised("global " + module + "." + name, [&] { p_.global(module, name); });
  }
  void shared_str(const std::string& s) {
    memoised("str " + s, [&] { p_.str(s); });
  }
  void str(const std::string& s) {
    p_.str(s);
    put();
  }
  // Protocol 2 tuples: TUPLE1..3 for up to three items, MARK ... TUPLE beyond.
  void int_tuple(const Shape& v) {
    if (v.empty()) {
      p_.empty_tuple();
      return;
    }
    if (v.size() > 3) p_.mark();
    for (int64_t x : v) p_.integer(x);
    if (v.size() > 3)
      p_.tuple();
    else
      p_.op(uint8_t(0x84 + v.size()));
    put();
  }
  void tensor(const TensorRef& t, const char* storage_type, const std::string& key) {
    Shape stride(t.shape.size());
    int64_t s = 1;
    for (size_t i = t.shape.size(); i-- > 0;) {
      stride[i] = s;
      s *= t.shape[i];
    }
    global("torch._utils", "_rebuild_tensor_v2");
    p_.mark();
    p_.mark();  // persistent id ('storage', torch.<Type>Storage, key, 'cpu', numel)
    shared_str("storage");
    global("torch", storage_type);
    str(key);
    shared_str("cpu");
    p_.integer(shape_numel(t.shape)).tuple();
    put();
    p_.persid();
    p_.integer(0);
    int_tuple(t.shape);
    int_tuple(stride);
    p_.boolean(false);
    global("collections", "OrderedDict");
    p_.empty_tuple().reduce();
    put();
    p_.tuple();
    put();
    p_.reduce();
    put();
  }

  test::PickleBuilder p_;
  uint32_t next_ = 0;
  std::map<std::string, uint32_t> memo_;
};

// `tensors` saved as torch.save does to `path`: the archive folder is the file's stem, stored
// (not deflated) entries with each storage aligned to 64 bytes, byteorder and version records.
void write_pth(const std::string& path, const WeightMap& tensors, const char* storage_type,
               const std::string& poison = "", size_t* poison_at = nullptr) {
  const std::string folder = fs::path(path).stem().string();
  std::vector<test::ZipEntry> entries{
      {folder + "/data.pkl", StateDictPickle().write(tensors, storage_type, poison, poison_at)},
      {folder + "/byteorder", "little"}};
  int key = 0;
  for (const auto& [name, t] : tensors.all()) {
    if (name == poison) continue;
    entries.push_back({folder + "/data/" + std::to_string(key++),
                       std::string(static_cast<const char*>(t.data), t.nbytes), false, 64});
  }
  entries.push_back({folder + "/version", "3\n"});
  entries.push_back({folder + "/.data/serialization_id", "1234567890123456789012345678901234"});
  test::write_zip(path, entries);
}

// The same tensors in f16: the bytes of each stay alive in `keep`.
WeightMap to_f16(const WeightMap& f32, std::vector<std::vector<uint16_t>>& keep) {
  WeightMap out;
  for (const auto& [name, t] : f32.all()) {
    const std::vector<float> v = t.to_f32();
    std::vector<uint16_t>& h = keep.emplace_back(v.size());
    for (size_t i = 0; i < v.size(); ++i) h[i] = f32_to_f16(v[i]);
    TensorRef r;
    r.dtype = DType::F16;
    r.shape = t.shape;
    r.data = h.data();
    r.nbytes = h.size() * 2;
    out.set(name, r);
  }
  return out;
}

using test::taesd_only;

std::string error_of(const std::string& path) {
  WeightMap into;
  try {
    model::load_taesd(path, into, "--taesd");
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

// Every tensor under `prefix` in `got` equals the one in `want`: dtype, shape and bytes.
void expect_same_tensors(const WeightMap& got, const std::string& prefix, const WeightMap& want,
                         const std::string& form) {
  EXPECT_EQ(got.names_with_prefix(prefix).size(), want.size()) << form;
  for (const auto& [name, w] : want.all()) {
    const TensorRef* g = got.find(prefix + name);
    ASSERT_NE(g, nullptr) << form << " " << name;
    EXPECT_EQ(g->dtype, w.dtype) << form << " " << name;
    EXPECT_EQ(g->shape, w.shape) << form << " " << name;
    ASSERT_EQ(g->nbytes, w.nbytes) << form << " " << name;
    EXPECT_EQ(std::memcmp(g->data, w.data, w.nbytes), 0) << form << " " << name;
  }
}

// Every decode case (one image at a time), outputs concatenated.
std::vector<float> decode_all(const model::LoadedModel& m) {
  pipeline::PlanCache plans(m, {});
  std::vector<float> all;
  for (const auto& c : group().cases["cases"]) {
    if (c["kind"] != "taesd_decode") continue;
    const Shape s = c["latent_shape"].get<Shape>();
    const std::vector<float> latents = group().f32(c["tensors"]["latents"]);
    const size_t per_latent = size_t(s[1] * s[2] * s[3]);
    for (int64_t b = 0; b < s[0]; ++b) {
      const std::vector<float> out = pipeline::taesd_decode(
          plans, std::span<const float>(latents).subspan(size_t(b) * per_latent, per_latent),
          int(s[2]), int(s[3]));
      all.insert(all.end(), out.begin(), out.end());
    }
  }
  return all;
}

std::vector<float> encode_all(const model::LoadedModel& m) {
  pipeline::PlanCache plans(m, {});
  std::vector<float> all;
  for (const auto& c : group().cases["cases"]) {
    if (c["kind"] != "taesd_encode") continue;
    const std::vector<float> out = pipeline::taesd_encode(plans, group().f32(c["tensors"]["image"]),
                                                          int(c["height"]), int(c["width"]));
    all.insert(all.end(), out.begin(), out.end());
  }
  return all;
}

// The fixture's expected outputs, concatenated in the same order.
std::vector<float> reference_all(const char* kind, const char* tensor) {
  std::vector<float> all;
  for (const auto& c : group().cases["cases"]) {
    if (c["kind"] != kind) continue;
    const std::vector<float> ref = group().f32(c["tensors"][tensor]);
    all.insert(all.end(), ref.begin(), ref.end());
  }
  return all;
}

struct Fixture {
  io::TensorFile dec = io::read_safetensors(group().path("taesd_decoder.safetensors"));
  io::TensorFile enc = io::read_safetensors(group().path("taesd_encoder.safetensors"));
};

TEST(TaesdPth, FixtureIsF32) {
  const Fixture f;
  for (const auto* file : {&f.dec, &f.enc})
    for (const auto& [name, t] : file->tensors.all()) EXPECT_EQ(t.dtype, DType::F32) << name;
}

TEST(TaesdPth, F32PthGivesTheSafetensorsTensorsAndOutputs) {
  const Fixture f;
  test::TempDir dir;
  write_pth(dir.file("taesd_decoder.pth"), f.dec.tensors, "FloatStorage");
  write_pth(dir.file("taesd_encoder.pth"), f.enc.tensors, "FloatStorage");

  // The folder (A1111's models/VAE-taesd/ holding the .pth pair) and the decoder file itself.
  const model::LoadedModel folder = taesd_only(dir.path());
  ASSERT_TRUE(folder.taesd.decoder && folder.taesd.encoder);
  expect_same_tensors(folder.weights, model::kTaesdDecoderPrefix, f.dec.tensors, "folder");
  expect_same_tensors(folder.weights, model::kTaesdEncoderPrefix, f.enc.tensors, "folder");
  const model::LoadedModel file = taesd_only(dir.file("taesd_decoder.pth"));
  ASSERT_TRUE(file.taesd.decoder);
  EXPECT_FALSE(file.taesd.encoder);
  expect_same_tensors(file.weights, model::kTaesdDecoderPrefix, f.dec.tensors, "file");
  // torch's 64-byte alignment makes every tensor a view of the mapped file, as with real files.
  for (const auto& n : file.weights.names_with_prefix(model::kTaesdDecoderPrefix))
    EXPECT_EQ(reinterpret_cast<uintptr_t>(file.weights.get(n).data) % 64, 0u) << n;

  // Decode and encode exactly as from the safetensors pair, and within the fixture's tolerance.
  const model::LoadedModel st = taesd_only(group().dir);
  const std::vector<float> dec_st = decode_all(st), enc_st = encode_all(st);
  const std::vector<float> dec_pth = decode_all(folder), enc_pth = encode_all(folder);
  EXPECT_EQ(dec_pth, dec_st);
  EXPECT_EQ(enc_pth, enc_st);
  EXPECT_EQ(decode_all(file), dec_st);
  const std::vector<float> dec_ref = reference_all("taesd_decode", "output");
  const std::vector<float> enc_ref = reference_all("taesd_encode", "latents");
  ASSERT_EQ(dec_pth.size(), dec_ref.size());
  ASSERT_EQ(enc_pth.size(), enc_ref.size());
  EXPECT_LE(test::rel_max_diff(dec_pth.data(), dec_ref), kNetworkTol);
  EXPECT_LE(test::rel_max_diff(enc_pth.data(), enc_ref), kNetworkTol);
}

TEST(TaesdPth, F16PthGivesTheF16SafetensorsTensorsAndOutputs) {
  const Fixture f;
  std::vector<std::vector<uint16_t>> keep;
  const WeightMap dec16 = to_f16(f.dec.tensors, keep), enc16 = to_f16(f.enc.tensors, keep);
  test::TempDir pth, st;
  write_pth(pth.file("taesd_decoder.pth"), dec16, "HalfStorage");
  write_pth(pth.file("taesd_encoder.pth"), enc16, "HalfStorage");
  io::write_safetensors(st.file("taesd_decoder.safetensors"), dec16);
  io::write_safetensors(st.file("taesd_encoder.safetensors"), enc16);

  const model::LoadedModel from_pth = taesd_only(pth.path());
  ASSERT_TRUE(from_pth.taesd.decoder && from_pth.taesd.encoder);
  expect_same_tensors(from_pth.weights, model::kTaesdDecoderPrefix, dec16, "f16 folder");
  expect_same_tensors(from_pth.weights, model::kTaesdEncoderPrefix, enc16, "f16 folder");
  const model::LoadedModel file = taesd_only(pth.file("taesd_encoder.pth"));
  ASSERT_TRUE(file.taesd.encoder);
  expect_same_tensors(file.weights, model::kTaesdEncoderPrefix, enc16, "f16 file");

  const model::LoadedModel from_st = taesd_only(st.path());
  const std::vector<float> dec = decode_all(from_pth), enc = encode_all(from_pth);
  EXPECT_EQ(dec, decode_all(from_st));
  EXPECT_EQ(enc, encode_all(from_st));
  EXPECT_EQ(encode_all(file), enc);
  // Rounding the weights to f16 moves the outputs only a little (a sanity bound, not a tolerance
  // the fixture states for f16 TAESD weights).
  EXPECT_LE(test::rel_max_diff(dec.data(), reference_all("taesd_decode", "output")), 1e-2);
  EXPECT_LE(test::rel_max_diff(enc.data(), reference_all("taesd_encode", "latents")), 1e-2);
}

TEST(TaesdPth, MissingKeyIsRefusedNamingFileAndKey) {
  const Fixture f;
  test::TempDir dir;
  WeightMap partial = f.dec.tensors;
  partial.erase("19.bias");
  const std::string path = dir.file("taesd_decoder.pth");
  write_pth(path, partial, "FloatStorage");
  EXPECT_EQ(error_of(dir.path()),
            path + ": 19.bias: expected a tensor of the TAESD decoder [3], found missing");
  EXPECT_EQ(error_of(path),
            path + ": 19.bias: expected a tensor of the TAESD decoder [3], found missing");
}

TEST(TaesdPth, ForbiddenGlobalIsRefusedAndNothingRuns) {
  const Fixture f;
  test::TempDir dir, cwd;
  const std::string path = dir.file("taesd_encoder.pth");
  size_t at = 0;
  write_pth(path, f.enc.tensors, "FloatStorage", "3.conv.2.weight", &at);
  ASSERT_GT(at, 0u);
  char old[PATH_MAX];
  ASSERT_NE(getcwd(old, sizeof old), nullptr);
  ASSERT_EQ(chdir(cwd.path().c_str()), 0);
  const std::string by_folder = error_of(dir.path()), by_file = error_of(path);
  ASSERT_EQ(chdir(old), 0);
  const std::string want = path + ": taesd_encoder/data.pkl byte " + std::to_string(at) +
                           ": GLOBAL: " + test::kAllowedGlobals + ", found posix.system";
  EXPECT_EQ(by_folder, want);
  EXPECT_EQ(by_file, want);
  EXPECT_TRUE(cwd.list().empty());
  EXPECT_FALSE(fs::exists(dir.file("sdc-pwned")));
  EXPECT_FALSE(fs::exists(std::string(old) + "/sdc-pwned"));
}

TEST(TaesdPth, TruncatedZipIsRefused) {
  const Fixture f;
  test::TempDir dir;
  const std::string path = dir.file("taesd_decoder.pth");
  write_pth(path, f.dec.tensors, "FloatStorage");
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() / 2);
  EXPECT_EQ(error_of(dir.path()),
            path + ": zip archive: expected a valid zip archive, found Not a zip archive");
  EXPECT_EQ(error_of(path),
            path + ": zip archive: expected a valid zip archive, found Not a zip archive");
}

}  // namespace
}  // namespace sdc
