// `sdc convert` end to end on the tiny-sd15 fixtures: LoRAs baked at each precision reproduce the
// fixture's unet_lora / text_encoder_lora outputs from the .gguf alone (no --model-config); an
// LCM-LoRA bake generates the txt2img_lcm_lora latents and image with no sampler flags (f32
// compute: the fixture's fp32 tolerance); a .gguf
// and its source with the same --lora give bit-identical latents; a bundled ControlNet keeps its
// weights; bad input is one line, exit 2, and leaves no file behind; the written file's model
// hash goes into the user's hash cache.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "backend/cpu/plan.h"
#include "common/feature_fixtures.h"
#include "common/fixtures.h"
#include "engine/hash_cache.h"
#include "graph/builders/builders.h"
#include "graph/tiny_model.h"
#include "io/gguf.h"
#include "io/image.h"
#include "io/open_file.h"
#include "io/safetensors.h"
#include "model/classify.h"
#include "model/compiled_model.h"
#include "model/model_loader.h"
#include "text/builtin_vocab.h"

namespace sdc::test {
namespace {

namespace fs = std::filesystem;

// `sdc convert -u model.safetensors --model-config diffusers ARGS… -o DIR/NAME.gguf`.
std::string convert(const TempDir& dir, const std::string& name,
                    const std::vector<std::string>& args) {
  std::vector<std::string> all{"convert", "-u", tiny("model.safetensors"), "--model-config",
                               tiny("diffusers")};
  all.insert(all.end(), args.begin(), args.end());
  const std::string out = dir.file(name + ".gguf");
  all.push_back("-o");
  all.push_back(out);
  const CommandResult r = run_sdc(all);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, out + "\n");
  return out;
}

std::unique_ptr<cpu::Plan> compile(const graph::Graph& g) {
  cpu::PlanOptions o;
  o.precision = cpu::Precision::F32;
  o.threads = 1;
  return cpu::Plan::compile(g, o);
}

template <typename T>
void set_input(T* dst, const std::vector<T>& values) {
  std::copy(values.begin(), values.end(), dst);
}

// The stderr line of a failed run: exactly one "sdc: " line, the last one.
std::string error_line(const CommandResult& r) {
  std::string last, line;
  int errors = 0;
  for (char c : r.err) {
    if (c != '\n') {
      line += c;
      continue;
    }
    if (line.rfind("sdc: ", 0) == 0) ++errors;
    last = line;
    line.clear();
  }
  EXPECT_EQ(errors, 1) << r.err;
  return last;
}

// ---- LoRA cases from the .gguf ---------------------------------------------------------------

struct LoraCase {
  const char* file;
  float scale;
};

TEST(Convert, BakedLorasReproduceTheFixtureAtEachPrecision) {
  TempDir dir;
  int unet_checked = 0, te_checked = 0;
  for (const LoraCase lc :
       {LoraCase{"lora-kohya.safetensors", 1.0f}, LoraCase{"lora-kohya.safetensors", 0.7f},
        LoraCase{"lora-peft.safetensors", 1.0f}, LoraCase{"lora-peft.safetensors", 0.7f}}) {
    char scale[16];
    std::snprintf(scale, sizeof scale, "%.1f", double(lc.scale));
    for (const char* type : {"f32", "f16", "bf16"}) {
      const std::string what = std::string(lc.file) + ":" + scale + " " + type;
      const std::string path = convert(dir, "m", {"-l", tiny(lc.file) + ":" + scale, "-t", type});
      // Everything from the file itself: no --model-config.
      const model::LoadedModel m = model::load_model(path, {});
      ASSERT_EQ(m.unet.num_heads, 8) << what;
      ASSERT_EQ(m.text_encoder.heads, 4) << what;
      const DType stored = *model::parse_precision_name(type);
      EXPECT_EQ(m.weights.get("model.diffusion_model.out.2.weight").dtype, stored);
      EXPECT_EQ(m.weights.get("first_stage_model.decoder.conv_in.weight").dtype, stored);
      const std::string column = std::string(type) == "f32" ? "fp32"
                                 : type[0] == 'f'           ? "fp16"
                                                            : "bf16";
      for (const auto& c : cases()["cases"]) {
        if (c.value("lora_file", "") != lc.file || c.value("lora_scale", 0.0f) != lc.scale)
          continue;
        const auto& t = c["tensors"];
        if (c["kind"] == "unet_lora") {
          const Shape s = ref_shape(t["sample"]);
          auto plan = compile(
              graph::build_unet(m.weights, m.unet, {int(s[0]), int(s[2]), int(s[3]), 77, false}));
          set_input(plan->input_f32("sample"), nchw_to_nhwc(ref_f32(t["sample"]), s));
          set_input(plan->input_f32("timestep"), {float(c["timestep"].get<int>())});
          set_input(plan->input_f32("context"), ref_f32(t["encoder_hidden_states"]));
          plan->run();
          const std::vector<float> eps =
              nhwc_to_nchw(plan->output("eps"), plan->output_shape("eps"));
          const double d = rel_max_diff(eps.data(), ref_f32(t["output"]));
          EXPECT_LE(d, tolerance("unet_lora", column)) << what;
          std::printf("unet_lora %-32s rel diff %.2e\n", what.c_str(), d);
          ++unet_checked;
        } else if (c["kind"] == "text_encoder_lora") {
          auto plan = compile(graph::build_text_encoder_both(m.weights, m.text_encoder, 1));
          const std::vector<int64_t> ids = ref_i64(t["input_ids"]);
          std::copy(ids.begin(), ids.end(), plan->input_i32("input_ids"));
          plan->run();
          const double tol = tolerance("text_encoder_lora", column);
          EXPECT_LE(
              rel_max_diff(plan->output("last_hidden_state"), ref_f32(t["last_hidden_state"])), tol)
              << what;
          EXPECT_LE(rel_max_diff(plan->output("penultimate_ln"), ref_f32(t["penultimate_ln"])), tol)
              << what;
          ++te_checked;
        }
      }
    }
  }
  EXPECT_EQ(unet_checked, 4 * 3);
  EXPECT_EQ(te_checked, 1 * 3);
}

// ---- metadata --------------------------------------------------------------------------------

TEST(Convert, MetadataRecordsSourcesLorasPrecisionsAndSizes) {
  TempDir dir;
  const std::string path = convert(
      dir, "m",
      {"-l", tiny("lora-kohya.safetensors") + ":0.7", "-t", "unet=bf16,vae=f32,text_encoder=f32",
       "-s", "64", "64", "96", "64", "-b", "2", "--name", "tiny-baked"});
  const io::TensorFile f = io::open_tensor_file(path);
  EXPECT_EQ(model::classify(f).kind, model::ModelKind::Compiled);
  const auto info = model::read_compiled_info(f);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->name, "tiny-baked");
  EXPECT_EQ(info->tool.rfind("sdc ", 0), 0u);
  EXPECT_EQ(info->sizes, (std::vector<std::pair<int, int>>{{64, 64}, {96, 64}}));
  EXPECT_EQ(info->batch, 2);
  EXPECT_EQ(info->precision.at("unet"), DType::BF16);
  EXPECT_EQ(info->precision.at("vae"), DType::F32);
  EXPECT_EQ(info->precision.at("text_encoder"), DType::F32);
  ASSERT_EQ(info->sources.size(), 1u);
  EXPECT_EQ(info->sources[0].role, "model");
  EXPECT_EQ(info->sources[0].name, "model.safetensors");
  EXPECT_EQ(info->sources[0].size, fs::file_size(tiny("model.safetensors")));
  EXPECT_EQ(info->sources[0].sha256,
            "d0be59dc33397bf0d3d05d69de9273dbe9ccf4b8c5be50e0a32b0f63f10bb2d1");
  ASSERT_EQ(info->loras.size(), 1u);
  EXPECT_EQ(info->loras[0].name, "lora-kohya.safetensors");
  EXPECT_EQ(info->loras[0].scale, 0.7f);
  EXPECT_EQ(info->loras[0].unet_modules, 277);
  EXPECT_EQ(info->loras[0].text_encoder_modules, 18);
  EXPECT_EQ(info->loras[0].sha256.size(), 64u);
  EXPECT_TRUE(info->defaults.empty());  // nothing says LCM
  EXPECT_EQ(info->tokenizer_vocab_json, text::builtin_clip_vocab_json());
  EXPECT_EQ(info->tokenizer_merges, text::builtin_clip_merges_txt());
  const io::GgufFile g = io::read_gguf(path);
  EXPECT_EQ(g.alignment, 64u);
  EXPECT_EQ(g.file.tensors.get("model.diffusion_model.out.2.weight").dtype, DType::BF16);
  EXPECT_EQ(g.file.tensors.get("first_stage_model.decoder.conv_in.weight").dtype, DType::F32);
  EXPECT_EQ(
      g.file.tensors.get("cond_stage_model.transformer.text_model.final_layer_norm.weight").dtype,
      DType::F32);
  for (const auto& [name, t] : g.file.tensors.all())
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % 64, 0u) << name;
  // `sdc inspect` shows the metadata, the megabyte tokenizer strings only by length.
  const CommandResult r = run_sdc({"inspect", path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("kind:     compiled"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("sdc.lora.name = [\"lora-kohya.safetensors\"]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("sdc.sizes = [64,64,96,64]"), std::string::npos) << r.out;
  EXPECT_NE(
      r.out.find("\"string_length\":" + std::to_string(text::builtin_clip_vocab_json().size())),
      std::string::npos)
      << r.out;
  EXPECT_LT(r.out.size(), 16000u);
}

TEST(Convert, SourcesOfADiffusersFolderAndOfAVae) {
  TempDir dir;
  CommandResult r = run_sdc({"convert", "-u", tiny("diffusers"), "-o", dir.file("f.gguf")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto info = model::read_compiled_info(io::open_tensor_file(dir.file("f.gguf")));
  std::set<std::string> names;
  for (const auto& s : info->sources) {
    EXPECT_EQ(s.role, "model");
    names.insert(s.name);
  }
  EXPECT_EQ(names, (std::set<std::string>{"diffusers/text_encoder/model.safetensors",
                                          "diffusers/unet/diffusion_pytorch_model.safetensors",
                                          "diffusers/vae/diffusion_pytorch_model.safetensors"}));
  EXPECT_EQ(info->name, "diffusers");
  const std::string vae = tiny("diffusers/vae/diffusion_pytorch_model.safetensors");
  const std::string path = convert(dir, "v", {"--vae", vae, "-t", "f32"});
  info = model::read_compiled_info(io::open_tensor_file(path));
  ASSERT_EQ(info->sources.size(), 2u);
  EXPECT_EQ(info->sources[1].role, "vae");
  EXPECT_EQ(info->sources[1].name, "diffusion_pytorch_model.safetensors");
  EXPECT_EQ(info->sources[1].size, fs::file_size(vae));
}

TEST(Convert, OutputFolderTakesTheNameAndTheModelsStem) {
  TempDir dir;
  CommandResult r = run_sdc({"convert", "-u", tiny("model.safetensors"), "--model-config",
                             tiny("diffusers"), "-o", dir.path()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, dir.file("model.gguf") + "\n");
  r = run_sdc({"convert", "-u", tiny("model.safetensors"), "--model-config", tiny("diffusers"),
               "--name", "other", "-o", dir.path() + "/"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(dir.list(), (std::vector<std::string>{"model.gguf", "other.gguf"}));
  // The default precision is f16.
  EXPECT_EQ(io::read_gguf(dir.file("model.gguf")).file.metadata["sdc.precision.unet"], "f16");
}

TEST(Convert, LcmDefaultsFromTheFileNameOrForcedOrNone) {
  TempDir dir;
  const std::string lcm = dir.file("my-LCM-lora.safetensors");
  fs::create_symlink(tiny("lora-kohya.safetensors"), lcm);
  auto defaults_of = [](const std::string& path) {
    return model::read_compiled_info(io::open_tensor_file(path))->defaults;
  };
  const auto by_name = defaults_of(convert(dir, "a", {"-l", lcm}));
  EXPECT_EQ(by_name.sampler, "lcm");
  EXPECT_EQ(by_name.steps, 4);
  EXPECT_EQ(by_name.cfg_scale, 1.0f);
  EXPECT_EQ(by_name.reason, "LCM-LoRA my-LCM-lora.safetensors (file name)");
  EXPECT_TRUE(defaults_of(convert(dir, "b", {"-l", lcm, "--defaults", "none"})).empty());
  EXPECT_TRUE(defaults_of(convert(dir, "c", {"-l", tiny("lora-kohya.safetensors")})).empty());
  const auto forced = defaults_of(convert(dir, "d", {"--defaults", "lcm"}));
  EXPECT_EQ(forced.sampler, "lcm");
  EXPECT_EQ(forced.reason, "--defaults lcm");
}

// A compiled file converts again (another precision) with no --model-config, keeping what it baked.
TEST(Convert, ACompiledFileConvertsAgainAndKeepsItsLoras) {
  TempDir dir;
  const std::string first = convert(
      dir, "first", {"-l", tiny("lora-kohya.safetensors"), "--defaults", "lcm", "-t", "f32"});
  const CommandResult r =
      run_sdc({"convert", "-u", first, "-t", "bf16", "-o", dir.file("second.gguf")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto info = model::read_compiled_info(io::open_tensor_file(dir.file("second.gguf")));
  ASSERT_EQ(info->loras.size(), 1u);
  EXPECT_EQ(info->loras[0].name, "lora-kohya.safetensors");
  EXPECT_EQ(info->defaults.sampler, "lcm");
  ASSERT_EQ(info->sources.size(), 1u);
  EXPECT_EQ(info->sources[0].name, "first.gguf");
  EXPECT_EQ(info->precision.at("unet"), DType::BF16);
  // Same weights, rounded.
  const io::GgufFile a = io::read_gguf(first), b = io::read_gguf(dir.file("second.gguf"));
  const TensorRef& wa = a.file.tensors.get("model.diffusion_model.out.2.weight");
  const TensorRef& wb = b.file.tensors.get("model.diffusion_model.out.2.weight");
  EXPECT_EQ(TensorRef::from_f32(wa.to_f32(), wa.shape, DType::BF16).to_f32(), wb.to_f32());
}

// A compiled file whose metadata is damaged: generate names the key in one line.
TEST(Convert, DamagedMetadataIsAOneLineError) {
  TempDir dir;
  const std::string path = convert(dir, "m", {"-t", "f16", "-s", "64", "64"});
  const io::GgufFile g = io::read_gguf(path);
  auto damaged = [&](const std::string& key, io::GgufValue value) {
    io::GgufMetadata kv = g.kv;
    int replaced = 0;
    for (auto& [k, v] : kv)
      if (k == key) {
        v = value;
        ++replaced;
      }
    EXPECT_EQ(replaced, 1) << key;
    const std::string out = dir.file("bad.gguf");
    io::write_gguf(out, g.file.tensors, kv, 64);
    return run_sdc({"generate", "-m", out, "-p", "x", "-W", "64", "-H", "64", "--steps", "1", "-o",
                    dir.file("x.png")});
  };
  CommandResult r =
      damaged("sdc.sizes", io::GgufValue::array(io::GgufType::I32, {io::GgufValue::i32(64)}));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(error_line(r).find("bad.gguf: sdc.sizes: expected an array of width, height pairs"),
            std::string::npos)
      << r.err;
  r = damaged("sdc.tokenizer.vocab_json", io::GgufValue::string("[1, 2]"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(error_line(r).find("sdc.tokenizer: vocab.json: expected a non-empty JSON object"),
            std::string::npos)
      << r.err;
  r = damaged("sdc.config.unet", io::GgufValue::string("{\"attention_head_dim\": 5}"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(error_line(r).find("UNet heads"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir.file("x.png")));
}

// ---- generating from the .gguf ---------------------------------------------------------------

std::vector<float> latents_of(const std::string& path) {
  return io::read_safetensors(path).tensors.get("latents").to_f32();
}

// sdc generate makes one image and exits: of a file's declared sizes it plans only the request's,
// and TAESD's decoder instead of the VAE's when TAESD decodes the image (text encoder, decoder,
// UNet: 3 either way, 4 if it planned both decoders).
TEST(Convert, GeneratePlansOnlyWhatItsOneImageNeeds) {
  TempDir dir;
  const std::string path = convert(dir, "two", {"-t", "f32", "-s", "64", "64", "128", "128"});
  const std::string taesd = test::feature_group("taesd").path("diffusers");
  const CommandResult vae = run_sdc({"generate", "-m", path, "-p", "x", "-W", "64", "-H", "64",
                                     "--steps", "1", "-o", dir.file("vae.png")});
  ASSERT_EQ(vae.exit_code, 0) << vae.err;
  EXPECT_NE(vae.err.find("planned 3 plans for the declared sizes"), std::string::npos) << vae.err;
  const CommandResult t =
      run_sdc({"generate", "-m", path, "-p", "x", "-W", "64", "-H", "64", "--steps", "1", "--taesd",
               taesd, "--decode-with", "taesd", "-o", dir.file("taesd.png")});
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_NE(t.err.find("planned 3 plans for the declared sizes"), std::string::npos) << t.err;
  // Without a TAESD to plan, the one line the pipeline gives, and no image.
  const CommandResult none =
      run_sdc({"generate", "-m", path, "-p", "x", "-W", "64", "-H", "64", "--steps", "1",
               "--decode-with", "taesd", "-o", dir.file("none.png")});
  EXPECT_EQ(none.exit_code, 2) << none.err;
  EXPECT_NE(error_line(none).find("--taesd"), std::string::npos) << none.err;
  EXPECT_FALSE(fs::exists(dir.file("none.png")));
}

TEST(Convert, LcmLoraBakeGeneratesTheFixtureWithNoSamplerFlags) {
  TempDir dir;
  const std::string path = convert(dir, "lcm",
                                   {"-l", tiny("lora-kohya.safetensors") + ":1.0", "-t", "f32",
                                    "--defaults", "lcm", "-s", "64", "64"});
  const auto& c = find_case("pipeline/txt2img_lcm_lora");
  const CommandResult r = run_sdc({"generate",
                                   "-m",
                                   path,
                                   "--compat",
                                   "diffusers",
                                   "-p",
                                   c["prompt"],
                                   "-W",
                                   "64",
                                   "-H",
                                   "64",
                                   "--seed",
                                   std::to_string(c["seed"].get<int>()),
                                   "--threads",
                                   "1",
                                   "--precision",
                                   "f32",
                                   "--save-latents",
                                   dir.file("lat.safetensors"),
                                   "-o",
                                   dir.file("img.png")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("planned 3 plans for the declared sizes"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("(4 steps)"), std::string::npos) << r.err;
  const std::vector<float> all = ref_f32(c["tensors"]["latents_after_each_step"]);
  const std::vector<float> last(all.end() - 4 * 8 * 8, all.end());
  const std::vector<float> got = latents_of(dir.file("lat.safetensors"));
  ASSERT_EQ(got.size(), last.size());
  const double d = rel_max_diff(got.data(), last);
  EXPECT_LE(d, tolerance("pipeline_latents"));
  std::printf("txt2img_lcm_lora from .gguf: latents rel diff %.2e\n", d);
  // The image: the reference rounds the same floats, so pixels differ by at most one level.
  const io::Image want = io::read_image(tiny("images/txt2img_lcm_lora.png"));
  const io::Image img = io::read_image(dir.file("img.png"));
  ASSERT_EQ(img.rgb.size(), want.rgb.size());
  int worst = 0;
  for (size_t i = 0; i < img.rgb.size(); ++i)
    worst = std::max(worst, std::abs(img.rgb[i] - want.rgb[i]));
  EXPECT_LE(worst, 1);
  // Parameters in the PNG: the recommended sampler was used.
  std::string params;
  for (const auto& [key, value] : io::read_png_text(dir.file("img.png")))
    if (key == "parameters") params = value;
  EXPECT_NE(params.find("Steps: 4, Sampler: LCM"), std::string::npos) << params;
  EXPECT_NE(params.find("CFG scale: 1"), std::string::npos) << params;
}

// Generates with `gguf_model` and with `source_flags` (checkpoint, LoRA or ControlNet given at run
// time), the same `common` flags for both; expects bit-identical latents and PNGs and returns the
// latents.
std::vector<float> expect_identical_runs(const TempDir& dir, const std::string& gguf_model,
                                         const std::vector<std::string>& source_flags,
                                         const std::vector<std::string>& common) {
  std::vector<std::string> a{"generate",        "-m", gguf_model,       "--save-latents",
                             dir.file("a.sft"), "-o", dir.file("a.png")};
  std::vector<std::string> b{"generate", "--save-latents", dir.file("b.sft"), "-o",
                             dir.file("b.png")};
  b.insert(b.end(), source_flags.begin(), source_flags.end());
  a.insert(a.end(), common.begin(), common.end());
  b.insert(b.end(), common.begin(), common.end());
  const CommandResult ra = run_sdc(a), rb = run_sdc(b);
  EXPECT_EQ(ra.exit_code, 0) << ra.err;
  EXPECT_EQ(rb.exit_code, 0) << rb.err;
  if (ra.exit_code != 0 || rb.exit_code != 0) return {};
  const std::vector<float> la = latents_of(dir.file("a.sft")), lb = latents_of(dir.file("b.sft"));
  EXPECT_EQ(la.size(), lb.size());
  if (la.size() == lb.size()) {
    EXPECT_EQ(std::memcmp(la.data(), lb.data(), la.size() * sizeof(float)), 0);
  }
  EXPECT_EQ(io::read_image(dir.file("a.png")).rgb, io::read_image(dir.file("b.png")).rgb);
  return la;
}

TEST(Convert, GgufAndSourceWithTheSameLoraGiveBitIdenticalLatents) {
  TempDir dir;
  const std::string path =
      convert(dir, "m", {"-l", tiny("lora-kohya.safetensors") + ":0.7", "-t", "f32"});
  const std::vector<std::string> common{"-p",          "a photo of a cat",
                                        "-n",          "blurry",
                                        "-W",          "64",
                                        "-H",          "64",
                                        "--sampler",   "ddim",
                                        "--steps",     "3",
                                        "--cfg-scale", "7.5",
                                        "--seed",      "42",
                                        "--threads",   "1",
                                        "--precision", "f32"};
  const std::vector<float> la =
      expect_identical_runs(dir, path,
                            {"-m", tiny("model.safetensors"), "--model-config", tiny("diffusers"),
                             "--lora", tiny("lora-kohya.safetensors") + ":0.7"},
                            common);
  EXPECT_EQ(la.size(), 256u);
}

// ---- ControlNet ------------------------------------------------------------------------------

TEST(Convert, BundledControlNetGeneratesTheSameImageAsTheSeparateFile) {
  // The controlnet_ddim pipeline from a .gguf with the ControlNet inside (no --control-net, no
  // --model-config) and from the checkpoint + ControlNet file: bit-identical at f32, and within
  // the pipeline tolerance of the fixture.
  TempDir dir;
  const std::string path = convert(dir, "cn", {"-c", tiny("controlnet.safetensors"), "-t", "f32"});
  const nlohmann::json& c = find_case("pipeline/controlnet_ddim");
  std::vector<std::string> common = case_args(c);
  // The fixture's pipeline is diffusers'.
  for (const char* flag :
       {"--compat", "diffusers", "--sampler", "ddim", "--precision", "f32", "--control-image"})
    common.push_back(flag);
  common.push_back(tiny("images/hint_64x64.png"));
  const std::vector<float> la =
      expect_identical_runs(dir, path,
                            {"-m", tiny("model.safetensors"), "--model-config", tiny("diffusers"),
                             "--control-net", tiny("controlnet.safetensors")},
                            common);
  ASSERT_FALSE(la.empty());
  const std::vector<float> all =
      ref_f32(c["tensors"]["latents_after_each_step"].get<std::string>());
  ASSERT_GE(all.size(), la.size());
  const std::vector<float> last(all.end() - std::ptrdiff_t(la.size()), all.end());
  EXPECT_LE(rel_max_diff(la.data(), last), tolerance("pipeline_latents"));
}

TEST(Convert, BundledControlNetKeepsItsWeights) {
  const io::TensorFile original = io::read_safetensors(tiny("controlnet.safetensors"));
  for (const char* source : {"controlnet.safetensors", "controlnet-diffusers"}) {
    TempDir dir;
    const std::string path = convert(dir, "cn", {"-c", tiny(source), "-t", "f32"});
    const io::GgufFile g = io::read_gguf(path);
    size_t n = 0;
    for (const auto& [name, want] : original.tensors.all()) {
      ASSERT_EQ(name.rfind("control_model.", 0), 0u) << name;
      const TensorRef* got = g.file.tensors.find(name);
      ASSERT_NE(got, nullptr) << source << ": " << name;
      ASSERT_EQ(got->shape, want.shape) << name;
      EXPECT_EQ(got->to_f32(), want.to_f32()) << source << ": " << name;
      ++n;
    }
    EXPECT_EQ(g.file.tensors.names_with_prefix("control_model.").size(), n);
    const model::LoadedModel m = model::load_model(path, {});
    ASSERT_TRUE(m.controlnet.has_value());
    EXPECT_EQ(m.controlnet->hint_channels, (std::vector<int>{16, 16, 32, 32}));
    EXPECT_EQ(m.controlnet->unet.num_heads, 8);
    const auto info = model::read_compiled_info(g.file);
    ASSERT_EQ(info->sources.size(), 2u);
    EXPECT_EQ(info->sources[1].role, "controlnet");
    EXPECT_EQ(info->sources[1].name, std::string(source) == "controlnet.safetensors"
                                         ? "controlnet.safetensors"
                                         : "diffusion_pytorch_model.safetensors");
    EXPECT_EQ(g.file.metadata["sdc.components"],
              nlohmann::json({"unet", "text_encoder", "vae", "controlnet"}));
  }
  // The ControlNet follows the UNet's precision unless named.
  TempDir dir;
  const std::string path =
      convert(dir, "cn", {"-c", tiny("controlnet.safetensors"), "-t", "unet=bf16"});
  const io::GgufFile g = io::read_gguf(path);
  EXPECT_EQ(g.file.tensors.get("control_model.zero_convs.0.0.weight").dtype, DType::BF16);
  EXPECT_EQ(g.file.tensors.get("first_stage_model.decoder.conv_in.weight").dtype, DType::F16);
  EXPECT_EQ(g.file.metadata["sdc.precision.controlnet"], "bf16");
}

// ---- bad input -------------------------------------------------------------------------------

// A kohya LoRA of one module: up [co, r], down [r, ci].
void write_lora(const std::string& path, const std::string& module, int64_t co, int64_t r_up,
                int64_t r_down, int64_t ci) {
  WeightMap m;
  m.set(module + ".lora_up.weight",
        TensorRef::from_f32(std::vector<float>(size_t(co * r_up), 0.01f), {co, r_up}, DType::F32));
  m.set(module + ".lora_down.weight",
        TensorRef::from_f32(std::vector<float>(size_t(r_down * ci), 0.01f), {r_down, ci},
                            DType::F32));
  m.set(module + ".alpha", TensorRef::from_f32({1.0f}, {}, DType::F32));
  io::write_safetensors(path, m);
}

// Runs convert into an empty folder and checks: exit 2, one "sdc: " line containing `expected`,
// and the folder still empty.
void expect_refused(const std::vector<std::string>& args, const std::string& expected,
                    const std::string& out_name = "out.gguf") {
  TempDir out;
  std::vector<std::string> all{"convert", "-u", tiny("model.safetensors"), "--model-config",
                               tiny("diffusers")};
  all.insert(all.end(), args.begin(), args.end());
  all.push_back("-o");
  all.push_back(out.file(out_name));
  const CommandResult r = run_sdc(all);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(error_line(r).find(expected), std::string::npos) << r.err;
  EXPECT_TRUE(out.list().empty());
}

TEST(Convert, LorasForOtherArchitecturesOrWithMismatchedRanksAreRefused) {
  TempDir dir;
  write_lora(dir.file("sdxl.safetensors"), "lora_te2_text_model_encoder_layers_0_self_attn_q_proj",
             32, 4, 4, 32);
  write_lora(dir.file("sd2.safetensors"),
             "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k", 32, 4, 4,
             1024);
  write_lora(dir.file("ranks.safetensors"),
             "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q", 32, 4, 8, 32);
  expect_refused({"-l", dir.file("sdxl.safetensors")}, "this LoRA is for SDXL, not SD1.5");
  expect_refused({"-l", dir.file("sd2.safetensors")}, "this LoRA is for SD2.x, not SD1.5");
  expect_refused({"-l", dir.file("ranks.safetensors")}, "ranks.safetensors");
  const CommandResult r =
      run_sdc({"convert", "-u", tiny("model.safetensors"), "--model-config", tiny("diffusers"),
               "-l", dir.file("ranks.safetensors"), "-o", dir.file("x.gguf")});
  EXPECT_NE(error_line(r).find("rank"), std::string::npos) << r.err;
}

TEST(Convert, BadArgumentsAreOneLineErrors) {
  expect_refused({"-l", tiny("lora-kohya.safetensors") + ":abc"}, "abc");
  expect_refused({"-t", "int4"},
                 "-t/--type: expected f32, f16 or bf16 (int8: the unet and vae "
                 "only), found \"int4\"");
  expect_refused({"-t", "text_encoder=int8"},
                 "-t/--type: expected f32, f16 or bf16 (int8: the "
                 "unet and vae only), found \"int8\"");
  expect_refused({"-t", "unet=bf16,clip=f32"}, "expected unet, text_encoder, vae or controlnet");
  expect_refused({"-s", "512", "512", "768"}, "-s/--sizes: expected W H pairs, found 3 numbers");
  expect_refused({"-s", "500", "512"}, "expected multiples of 8");
  expect_refused({"-b", "0"}, "-b/--batch: expected a batch size in [1, 64], found 0");
  expect_refused({"-v", "sdxl"}, "-v/--version: expected sd15");
  expect_refused({"--defaults", "turbo"}, "--defaults: expected auto, lcm or none");
  expect_refused({}, "expected a .gguf file or an existing directory", "out.bin");
  expect_refused({"-c", tiny("lora-kohya.safetensors")}, "expected a ControlNet");
  // A model that is a LoRA.
  TempDir out;
  const CommandResult r =
      run_sdc({"convert", "-u", tiny("lora-kohya.safetensors"), "-o", out.file("x.gguf")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(error_line(r).find("a LoRA"), std::string::npos) << r.err;
  EXPECT_TRUE(out.list().empty());
}

TEST(Convert, MissingOrUnwritableOutputFolders) {
  TempDir dir;
  CommandResult r = run_sdc({"convert", "-u", tiny("model.safetensors"), "--model-config",
                             tiny("diffusers"), "-o", dir.file("missing/x.gguf")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(error_line(r).find("expected an existing output directory, found " +
                               dir.file("missing") + " does not exist"),
            std::string::npos)
      << r.err;
  // A folder we may not write to (a read-only folder, or /sys where permissions cannot stop root).
  const std::string ro = dir.file("ro");
  fs::create_directory(ro);
  chmod(ro.c_str(), 0555);
  const std::string target = access(ro.c_str(), W_OK) == 0 ? "/sys/sdc-test.gguf" : ro + "/x.gguf";
  r = run_sdc({"convert", "-u", tiny("model.safetensors"), "--model-config", tiny("diffusers"),
               "-o", target});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(error_line(r).find("output folder: expected a writable directory"), std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(target));
  EXPECT_TRUE(fs::is_empty(ro));
  chmod(ro.c_str(), 0755);
}

// A full disk, simulated with a file-size limit: the write fails with EFBIG (AtomicFile ignores
// SIGXFSZ), the error is one line and no partial or temporary file remains.
TEST(Convert, AFullDiskLeavesNothingBehind) {
  TempDir io, out;
  const pid_t pid = fork();
  if (pid == 0) {
    const rlimit limit{1 << 20, 1 << 20};  // 1 MiB; the output is about 10 MB
    setrlimit(RLIMIT_FSIZE, &limit);
    const int e = open(io.file("stderr").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int o = open("/dev/null", O_WRONLY);
    dup2(e, 2);
    dup2(o, 1);
    std::vector<std::string> args{
        SDC_BINARY,       "convert",         "-u", tiny("model.safetensors"),
        "--model-config", tiny("diffusers"), "-o", out.file("x.gguf")};
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
  std::ifstream in(io.file("stderr"));
  CommandResult r;
  r.err.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  EXPECT_NE(error_line(r).find("write: expected all bytes written, found File too large"),
            std::string::npos)
      << r.err;
  EXPECT_TRUE(out.list().empty());
}

}  // namespace
}  // namespace sdc::test

namespace sdc::test {
namespace {

// Convert records the written file's model hash in the user's hash cache, so that the first
// generate from it does not read the whole file back to hash it.
TEST(ConvertCli, RecordsTheOutputsModelHash) {
  TempDir dir, cache;
  const char* old = std::getenv("XDG_CACHE_HOME");
  const std::string saved = old ? old : "";
  setenv("XDG_CACHE_HOME", cache.path().c_str(), 1);
  const std::string out = convert(dir, "hashed", {"-t", "f16"});
  if (old)
    setenv("XDG_CACHE_HOME", saved.c_str(), 1);
  else
    unsetenv("XDG_CACHE_HOME");
  const engine::HashCache hashes(cache.file("sdc/hashes.json"));
  EXPECT_EQ(hashes.lookup(out), engine::sha256_of_model_path(out));
  EXPECT_EQ(hashes.lookup(out).size(), 64u);
}

}  // namespace
}  // namespace sdc::test
