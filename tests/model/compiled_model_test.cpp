// The compiled-model machinery under `sdc convert`: SHA-256, the streaming GGUF writer, the
// diffusers configs and sdc.* metadata written and read back, the fused LoRA merge (bit-identical
// to merge_lora), and export_gguf (streamed merge + cast equal to merge_lora + cast; a failure
// in the middle leaves no file).
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <random>

#include "common/error.h"
#include "common/fixtures.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "io/sha256.h"
#include "model/compiled_model.h"
#include "model/gguf_export.h"
#include "model/infer_hparams.h"
#include "model/lora_fused_merge.h"
#include "model/lora_merger.h"
#include "model/model_loader.h"

namespace sdc::model {
namespace {

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// ---- SHA-256 ---------------------------------------------------------------------------------

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(io::sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(io::sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // Two blocks, fed in pieces.
  io::Sha256 h;
  const std::string msg = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  h.update(msg.data(), 10);
  h.update(msg.data() + 10, msg.size() - 10);
  EXPECT_EQ(h.hex_digest(), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256, FileEqualsBytesAndMissingFileIsAnError) {
  test::TempDir dir;
  std::string big(5 << 20, '\0');  // more than one 4 MiB read block
  for (size_t i = 0; i < big.size(); ++i) big[i] = char(i * 131 + (i >> 9));
  std::ofstream(dir.file("f.bin"), std::ios::binary).write(big.data(), std::streamsize(big.size()));
  EXPECT_EQ(io::sha256_file(dir.file("f.bin")), io::sha256_hex(big));
  EXPECT_NE(error_of([&] { io::sha256_file(dir.file("nope")); }).find("nope"), std::string::npos);
}

// ---- GgufWriter ------------------------------------------------------------------------------

TEST(GgufWriter, StreamsTensorsThatReadBack) {
  test::TempDir dir;
  const std::vector<float> a{1, 2, 3, 4, 5, 6};
  const std::vector<uint16_t> b{0x3c00, 0xc000, 0x7bff};
  {
    io::GgufWriter w(dir.file("m.gguf"), {{"a", DType::F32, {2, 3}}, {"b", DType::F16, {3}}},
                     {{"x", io::GgufValue::string("y")}}, 64);
    EXPECT_EQ(w.written(), 0u);
    w.write_tensor(a.data(), a.size() * 4);
    w.write_tensor(b.data(), b.size() * 2);
    w.commit();
    EXPECT_EQ(w.file_size(), std::filesystem::file_size(dir.file("m.gguf")));
  }
  const io::GgufFile g = io::read_gguf(dir.file("m.gguf"));
  EXPECT_EQ(g.alignment, 64u);
  EXPECT_EQ(g.file.tensors.get("a").shape, (Shape{2, 3}));
  EXPECT_EQ(g.file.tensors.get("a").to_f32(), a);
  EXPECT_EQ(g.file.tensors.get("b").to_f32(), (std::vector<float>{1, -2, 65504}));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(g.file.tensors.get("b").data) % 64,
            reinterpret_cast<uintptr_t>(g.file.tensors.get("a").data) % 64);
  EXPECT_EQ(g.file.metadata["x"], "y");
}

TEST(GgufWriter, WrongSizesAndUnfinishedFilesLeaveNothing) {
  test::TempDir dir;
  const std::vector<float> a(6, 1.0f);
  {
    io::GgufWriter w(dir.file("m.gguf"), {{"a", DType::F32, {2, 3}}, {"b", DType::F32, {2}}}, {});
    EXPECT_NE(
        error_of([&] { w.write_tensor(a.data(), 5 * 4); }).find("a: expected 24 bytes, found 20"),
        std::string::npos);
    w.write_tensor(a.data(), 24);
    EXPECT_NE(error_of([&] { w.commit(); }).find("expected 2 tensors written, found 1"),
              std::string::npos);
    EXPECT_EQ(dir.list().size(), 1u);  // the temporary file, until the writer goes
  }
  EXPECT_TRUE(dir.list().empty());
  EXPECT_NE(
      error_of([&] {
        io::GgufWriter(dir.file("d.gguf"), {{"a", DType::F32, {1}}, {"a", DType::F32, {1}}}, {});
      }).find("tensor a: expected unique tensor names"),
      std::string::npos);
  EXPECT_NE(error_of([&] { io::GgufWriter(dir.file("x/d.gguf"), {}, {}); }).find("does not exist"),
            std::string::npos);
  EXPECT_TRUE(dir.list().empty());
}

// ---- configs and metadata --------------------------------------------------------------------

LoadedModel tiny_model() {
  LoadOptions o;
  o.model_config_dir = test::tiny("diffusers");
  return load_model(test::tiny("model.safetensors"), o);
}

TEST(CompiledModel, DiffusersConfigsGiveBackTheHyperParameters) {
  const LoadedModel m = tiny_model();
  ASSERT_EQ(m.unet.num_heads, 8);
  ASSERT_EQ(m.text_encoder.heads, 4);
  // Start from what the shapes alone say (SD1.5 defaults elsewhere), apply the written config.
  UNetParams u = infer_unet_params(m.weights);
  u.num_heads = 1;
  u.resnet_eps = 0.5f;
  apply_unet_config(u, diffusers_config(m.unet), "config");
  EXPECT_EQ(to_json(u), to_json(m.unet));
  EXPECT_EQ(u.resnet_eps, m.unet.resnet_eps);
  TextEncoderParams t = infer_text_encoder_params(m.weights);
  apply_text_encoder_config(t, diffusers_config(m.text_encoder), "config");
  EXPECT_EQ(to_json(t), to_json(m.text_encoder));
  EXPECT_EQ(t.layer_norm_eps, m.text_encoder.layer_norm_eps);
  VaeParams v = infer_vae_params(m.weights);
  v.scaling_factor = 1;
  apply_vae_config(v, diffusers_config(m.vae), "config");
  EXPECT_EQ(to_json(v), to_json(m.vae));
  // Readable numbers: 1e-05, not 9.999999747378752e-06.
  EXPECT_EQ(diffusers_config(m.text_encoder)["layer_norm_eps"].dump(), "1e-05");
  EXPECT_EQ(diffusers_config(m.unet)["up_block_types"][0], "UpBlock2D");
  EXPECT_EQ(diffusers_config(m.unet)["down_block_types"][3], "DownBlock2D");
}

CompiledInfo sample_info() {
  CompiledInfo info;
  info.tool = "sdc test";
  info.name = "tiny";
  info.precision = {{"unet", DType::BF16}, {"text_encoder", DType::F32}, {"vae", DType::F16}};
  info.sizes = {{512, 512}, {768, 512}};
  info.batch = 2;
  info.sources = {{"model", "model.safetensors", 123, std::string(64, 'a')}};
  info.loras = {{"lcm.safetensors", std::string(64, 'b'), "kohya LoRA", 0.7f, 277, 18}};
  info.defaults = {"lcm", "", 4, 1.0f, "LCM-LoRA lcm.safetensors (file name)"};
  info.tokenizer_vocab_json = "{\"a\": 0}";
  info.tokenizer_merges = "#version: 0.2\n";
  return info;
}

io::TensorFile metadata_file(const io::GgufMetadata& kv) {
  io::TensorFile f;
  f.path = "m.gguf";
  f.format = io::FileFormat::Gguf;
  f.metadata = nlohmann::json::object();
  for (const auto& [k, v] : kv) f.metadata[k] = v.to_json();
  return f;
}

TEST(CompiledModel, MetadataRoundTripsThroughAFile) {
  const LoadedModel m = tiny_model();
  CompiledInfo info = sample_info();
  info.vae_compute = "int8";
  test::TempDir dir;
  WeightMap one;
  one.set("model.diffusion_model.out.2.bias", m.weights.get("model.diffusion_model.out.2.bias"));
  io::write_gguf(dir.file("m.gguf"), one, compiled_metadata(info, m));
  const io::TensorFile f = io::read_gguf(dir.file("m.gguf")).file;
  EXPECT_EQ(f.metadata["general.architecture"], "stable-diffusion");
  EXPECT_EQ(f.metadata["general.name"], "tiny");
  EXPECT_EQ(f.metadata["general.alignment"], 64);
  EXPECT_EQ(f.metadata["sdc.sizes"], nlohmann::json({512, 512, 768, 512}));
  EXPECT_EQ(f.metadata["sdc.precision.unet"], "bf16");
  EXPECT_EQ(f.metadata["sdc.components"], nlohmann::json({"unet", "text_encoder", "vae"}));
  const auto back = read_compiled_info(f);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->version, kCompiledFormatVersion);
  EXPECT_EQ(back->tool, "sdc test");
  EXPECT_EQ(back->name, "tiny");
  EXPECT_EQ(back->precision, info.precision);
  EXPECT_EQ(back->sizes, info.sizes);
  EXPECT_EQ(back->batch, 2);
  ASSERT_EQ(back->sources.size(), 1u);
  EXPECT_EQ(back->sources[0].name, "model.safetensors");
  EXPECT_EQ(back->sources[0].size, 123u);
  EXPECT_EQ(back->sources[0].sha256, std::string(64, 'a'));
  ASSERT_EQ(back->loras.size(), 1u);
  EXPECT_EQ(back->loras[0].scale, 0.7f);
  EXPECT_EQ(back->loras[0].unet_modules, 277);
  EXPECT_EQ(back->loras[0].text_encoder_modules, 18);
  EXPECT_EQ(back->loras[0].format, "kohya LoRA");
  EXPECT_EQ(back->defaults.sampler, "lcm");
  EXPECT_EQ(back->defaults.steps, 4);
  EXPECT_EQ(back->defaults.cfg_scale, 1.0f);
  EXPECT_EQ(back->defaults.reason, info.defaults.reason);
  EXPECT_EQ(back->tokenizer_vocab_json, info.tokenizer_vocab_json);
  EXPECT_EQ(back->tokenizer_merges, info.tokenizer_merges);
  EXPECT_EQ(back->unet_compute, "");
  EXPECT_EQ(back->vae_compute, "int8");
  // The loader reads the configs back: no --model-config needed.
  const ConfigSet configs = configs_of(f);
  EXPECT_EQ(configs.at("unet").first["attention_head_dim"], 8);
  EXPECT_EQ(configs.at("text_encoder").first["num_attention_heads"], 4);
}

TEST(CompiledModel, NotCompiledGivesNothing) {
  io::TensorFile f;
  f.format = io::FileFormat::Gguf;
  f.metadata = {{"general.architecture", "llama"}};
  EXPECT_FALSE(read_compiled_info(f).has_value());
  f.format = io::FileFormat::Safetensors;
  f.metadata = {{"sdc.version", 1}};
  EXPECT_FALSE(read_compiled_info(f).has_value());
}

TEST(CompiledModel, MalformedMetadataNamesTheKey) {
  const LoadedModel m = tiny_model();
  const io::GgufMetadata good = compiled_metadata(sample_info(), m);
  auto with = [&](const std::string& key, const nlohmann::json& value) {
    io::TensorFile f = metadata_file(good);
    if (value.is_null())
      f.metadata.erase(key);
    else
      f.metadata[key] = value;
    return error_of([&] { read_compiled_info(f); });
  };
  EXPECT_EQ(with("sdc.version", 2),
            "m.gguf: sdc.version: expected format version 1 or older (convert it again with this "
            "sdc), found 2");
  EXPECT_EQ(with("sdc.sizes", nlohmann::json({512, 512, 768})),
            "m.gguf: sdc.sizes: expected an array of width, height pairs, found 3 numbers");
  EXPECT_NE(with("sdc.sizes", nlohmann::json({512, -8})).find("sdc.sizes: expected an integer"),
            std::string::npos);
  EXPECT_NE(
      with("sdc.defaults.steps", 0).find("sdc.defaults.steps: expected an integer in [1, 1000]"),
      std::string::npos);
  EXPECT_NE(with("sdc.defaults.cfg_scale", "high")
                .find("sdc.defaults.cfg_scale: expected a finite number"),
            std::string::npos);
  EXPECT_NE(with("sdc.precision.unet", "int4").find("expected f32, f16 or bf16"),
            std::string::npos);
  EXPECT_EQ(with("sdc.compute.unet", "int4"),
            "m.gguf: sdc.compute.unet: expected \"int8\", found \"int4\"");
  EXPECT_EQ(with("sdc.compute.vae", "fp8"),
            "m.gguf: sdc.compute.vae: expected \"int8\", found \"fp8\"");
  EXPECT_NE(with("sdc.lora.scale", nullptr).find("sdc.lora.scale: expected an array of 1 entries"),
            std::string::npos);
  EXPECT_NE(
      with("sdc.source.sha256", nlohmann::json::array())
          .find("sdc.source.sha256: expected an array of 1 entries (one per source), found 0"),
      std::string::npos);
  EXPECT_NE(with("sdc.tokenizer.merges", nullptr).find("sdc.tokenizer.merges: expected the merges"),
            std::string::npos);
  EXPECT_NE(with("general.name", 5).find("general.name: expected a string"), std::string::npos);
}

TEST(CompiledModel, LcmLoraEvidenceFromMetadataOrFileName) {
  LoraFile f;
  f.path = "/x/add-detail.safetensors";
  f.metadata = {{"ss_network_module", "networks.lora"}, {"ss_network_dim", "64"}};
  EXPECT_EQ(lcm_lora_evidence(f), "");
  f.metadata["ss_output_name"] = "LCM-LoRA-sdv1-5";
  EXPECT_EQ(lcm_lora_evidence(f), "LCM-LoRA add-detail.safetensors (metadata ss_output_name)");
  f.metadata = {{"format", "pt"}};
  f.path = "/x/pytorch_lora_weights_lcm_sd15.safetensors";
  EXPECT_EQ(lcm_lora_evidence(f), "LCM-LoRA pytorch_lora_weights_lcm_sd15.safetensors (file name)");
  // The fixture LoRAs say nothing of LCM.
  EXPECT_EQ(lcm_lora_evidence(load_lora(test::tiny("lora-kohya.safetensors"))), "");
  EXPECT_EQ(lcm_lora_evidence(load_lora(test::tiny("lora-peft.safetensors"))), "");
}

// ---- fused LoRA merge ------------------------------------------------------------------------

// The f32 values merge_lora's apply_lora_module gives, and the fused kernels' (SIMD and portable).
void expect_fused_identical(const std::vector<float>& w0, const Shape& shape, const LoraModule& m,
                            float scale, const std::string& what) {
  std::vector<float> want = w0;
  apply_lora_module(want, shape, m, scale, "lora", what);
  for (bool simd : {true, false}) {
    std::vector<float> got = w0;
    ASSERT_TRUE(fused_lora_merge(got, m, scale, simd)) << what;
    EXPECT_TRUE(same_bits(got, want)) << what << (simd ? " (SIMD)" : " (portable)");
  }
}

TEST(FusedLoraMerge, BitIdenticalToMergeLoraOnTheFixtures) {
  const io::TensorFile model = io::read_safetensors(test::tiny("model.safetensors"));
  const LoraTargets targets(model.tensors);
  for (const char* file : {"lora-kohya.safetensors", "lora-peft.safetensors"}) {
    const LoraFile lora = load_lora(test::tiny(file));
    const auto matches = match_lora(model.tensors, targets, lora, false);
    ASSERT_EQ(matches.size(), 295u);
    for (float scale : {1.0f, 0.7f})
      for (const LoraMatch& match : matches) {
        const TensorRef& w = model.tensors.get(match.weight);
        ASSERT_TRUE(fused_merge_applies(*match.module));
        expect_fused_identical(w.to_f32(), w.shape, *match.module, scale, match.weight);
      }
  }
}

// A kohya module with random parts: up [co, r(, 1, 1)], down [r, ci(, kh, kw)].
struct RandomModule {
  WeightMap parts;
  LoraFile file;
};

LoraModule random_module(int64_t co, int64_t ci, int64_t r, int kernel, float alpha,
                         std::mt19937& rng, WeightMap& keep) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  auto make = [&](const Shape& s) {
    std::vector<float> v(size_t(shape_numel(s)));
    for (float& x : v) x = dist(rng);
    return TensorRef::from_f32(v, s, DType::F32);
  };
  const bool conv = kernel > 0;
  keep.set("lora_unet_x.lora_up.weight", make(conv ? Shape{co, r, 1, 1} : Shape{co, r}));
  keep.set("lora_unet_x.lora_down.weight",
           make(conv ? Shape{r, ci, kernel, kernel} : Shape{r, ci}));
  keep.set("lora_unet_x.alpha", TensorRef::from_f32({alpha}, {}, DType::F32));
  io::TensorFile tf;
  tf.path = "random.safetensors";
  tf.tensors = keep;
  LoraFile f = parse_lora(tf);
  EXPECT_EQ(f.modules.size(), 1u);
  return f.modules.at(0);
}

TEST(FusedLoraMerge, BitIdenticalOnRaggedShapesRanksAndAlphas) {
  std::mt19937 rng(7);
  struct Case {
    int64_t co, ci, r;
    int kernel;
    float alpha;
  };
  // Columns not a multiple of 16 or 64, rows not a multiple of 4, rank 1 and 64, alpha = rank.
  for (const Case& c :
       {Case{5, 37, 3, 0, 1.5f}, Case{64, 320, 64, 0, 64.0f}, Case{33, 7, 4, 3, 2.0f},
        Case{130, 100, 16, 1, 8.0f}, Case{1, 1, 1, 0, 0.25f}, Case{7, 1000, 64, 0, 32.0f}}) {
    WeightMap keep;
    const LoraModule m = random_module(c.co, c.ci, c.r, c.kernel, c.alpha, rng, keep);
    const Shape shape = c.kernel ? Shape{c.co, c.ci, c.kernel, c.kernel} : Shape{c.co, c.ci};
    std::vector<float> w(size_t(shape_numel(shape)));
    std::normal_distribution<float> dist(0.0f, 0.1f);
    for (float& x : w) x = dist(rng);
    for (float scale : {1.0f, 0.7f, -1.3f})
      expect_fused_identical(w, shape, m, scale, shape_str(shape) + " rank " + std::to_string(c.r));
  }
}

TEST(FusedLoraMerge, LeavesOtherKindsToMergeLora) {
  std::mt19937 rng(1);
  WeightMap keep;
  LoraModule m = random_module(4, 4, 2, 0, 2.0f, rng, keep);
  m.dora = DoraAxis::Output;
  std::vector<float> w(16, 1.0f);
  EXPECT_FALSE(fused_lora_merge(w, m, 1.0f));
  EXPECT_EQ(w, std::vector<float>(16, 1.0f));
}

// ---- export_gguf -----------------------------------------------------------------------------

TEST(ExportGguf, ComponentTypes) {
  ComponentTypes t;
  t.unet = DType::BF16;
  t.text_encoder = DType::F32;
  t.vae = DType::F16;
  t.controlnet = DType::F32;
  EXPECT_EQ(t.for_tensor("model.diffusion_model.out.2.weight", DType::F16), DType::BF16);
  EXPECT_EQ(
      t.for_tensor("cond_stage_model.transformer.text_model.final_layer_norm.weight", DType::F16),
      DType::F32);
  EXPECT_EQ(t.for_tensor("first_stage_model.decoder.conv_in.bias", DType::F32), DType::F16);
  EXPECT_EQ(t.for_tensor("control_model.zero_convs.0.0.weight", DType::F16), DType::F32);
  EXPECT_EQ(t.for_tensor("model.diffusion_model.something", DType::I64), DType::I64);
}

// Streamed export with two LoRAs equals merge_loras on the whole map, then cast — bit for bit.
TEST(ExportGguf, StreamedMergeAndCastEqualMergeLoraThenCast) {
  const io::TensorFile model = io::read_safetensors(test::tiny("model-fp16.safetensors"));
  const LoraTargets targets(model.tensors);
  const LoraFile kohya = load_lora(test::tiny("lora-kohya.safetensors"));
  const LoraFile peft = load_lora(test::tiny("lora-peft.safetensors"));
  WeightMap merged = model.tensors;
  merge_lora(merged, targets, kohya, 0.7f);
  merge_lora(merged, targets, peft, -0.2f);
  LoraReport rk, rp;
  const std::vector<LoraBake> bakes{
      prepare_lora_bake(model.tensors, targets, kohya, 0.7f, false, rk),
      prepare_lora_bake(model.tensors, targets, peft, -0.2f, false, rp)};
  EXPECT_EQ(rk.unet_modules, 277);
  EXPECT_EQ(rk.text_encoder_modules, 18);
  EXPECT_EQ(rk.summary(), "lora-kohya.safetensors: 277 UNet modules, 18 text-encoder modules");
  test::TempDir dir;
  for (DType type : {DType::F32, DType::F16, DType::BF16}) {
    ComponentTypes types;
    types.unet = types.vae = types.text_encoder = types.controlnet = type;
    ExportOptions options;
    options.threads = 2;
    size_t calls = 0;
    options.on_tensor = [&](size_t done, size_t total) {
      EXPECT_EQ(done, ++calls);
      EXPECT_EQ(total, model.tensors.size());
    };
    const std::string path = dir.file(std::string(dtype_name(type)) + ".gguf");
    const ExportResult r = export_gguf(path, model.tensors, bakes, types, {}, options);
    EXPECT_EQ(r.tensors, model.tensors.size());
    EXPECT_EQ(r.merged, 295u);
    EXPECT_EQ(calls, model.tensors.size());
    EXPECT_EQ(r.bytes, std::filesystem::file_size(path));
    const io::GgufFile g = io::read_gguf(path);
    ASSERT_EQ(g.file.tensors.size(), merged.size());
    for (const auto& [name, want] : merged.all()) {
      const TensorRef& got = g.file.tensors.get(name);
      ASSERT_EQ(got.dtype, type) << name;
      ASSERT_EQ(got.shape, want.shape) << name;
      const TensorRef expect = TensorRef::from_f32(want.to_f32(), want.shape, type);
      ASSERT_EQ(got.nbytes, expect.nbytes) << name;
      EXPECT_EQ(std::memcmp(got.data, expect.data, got.nbytes), 0) << name;
    }
  }
}

// A tensor that fails half way (here a LoRA part that does not fit) stops the export: the error
// comes out and neither the file nor its temporary file remains.
TEST(ExportGguf, AFailureHalfWayLeavesNothing) {
  const io::TensorFile model = io::read_safetensors(test::tiny("model.safetensors"));
  const LoraTargets targets(model.tensors);
  const LoraFile kohya = load_lora(test::tiny("lora-kohya.safetensors"));
  LoraReport report;
  LoraBake bake = prepare_lora_bake(model.tensors, targets, kohya, 1.0f, false, report);
  // Point the last module at a weight of another shape.
  bake.matches.back().weight = "model.diffusion_model.out.2.weight";
  test::TempDir dir;
  ExportOptions options;
  options.threads = 2;
  const std::string err = error_of([&] {
    export_gguf(dir.file("m.gguf"), model.tensors, {bake}, ComponentTypes{}, {}, options);
  });
  EXPECT_NE(err.find("fused merge"), std::string::npos) << err;
  EXPECT_TRUE(dir.list().empty());
}

// The progress callback may stop the export (`sdc convert` does on SIGINT/SIGTERM): the workers
// are joined, the error comes out, nothing remains.
TEST(ExportGguf, AProgressCallbackThatThrowsStopsTheExport) {
  const io::TensorFile model = io::read_safetensors(test::tiny("model.safetensors"));
  const LoraTargets targets(model.tensors);
  const LoraFile kohya = load_lora(test::tiny("lora-kohya.safetensors"));
  LoraReport report;
  const LoraBake bake = prepare_lora_bake(model.tensors, targets, kohya, 1.0f, false, report);
  test::TempDir dir;
  ExportOptions options;
  options.threads = 2;
  options.on_tensor = [](size_t done, size_t) {
    if (done == 100) throw Error("m.gguf: interrupted; nothing written");
  };
  EXPECT_EQ(error_of([&] {
              export_gguf(dir.file("m.gguf"), model.tensors, {bake}, ComponentTypes{}, {}, options);
            }),
            "m.gguf: interrupted; nothing written");
  EXPECT_TRUE(dir.list().empty());
}

TEST(ExportGguf, NonFiniteScaleIsRefused) {
  const io::TensorFile model = io::read_safetensors(test::tiny("model.safetensors"));
  const LoraTargets targets(model.tensors);
  const LoraFile kohya = load_lora(test::tiny("lora-kohya.safetensors"));
  LoraReport report;
  EXPECT_NE(error_of([&] {
              prepare_lora_bake(model.tensors, targets, kohya, NAN, false, report);
            }).find("scale: expected a finite number"),
            std::string::npos);
}

}  // namespace
}  // namespace sdc::model
