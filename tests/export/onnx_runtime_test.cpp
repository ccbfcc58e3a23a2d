// The ONNX files `sdc convert --format onnx` writes, run by an independent runtime: ONNX Runtime
// (npm onnxruntime-node, CPU; tests/onnx/run_onnx_models.js) against the tiny-sd15 diffusers
// references and against sdc's own CPU backend on the same inputs, at the fixtures' f32
// tolerance — text encoder, UNet with and without ControlNet residuals, VAE decoder and encoder,
// ControlNet, each at two sizes through the symbolic dimensions, a --static export, an export
// with external data, LoRA-baked weights, and an f16 graph. Also Debian's python3-onnx checker
// (full check, strict shape inference) on every file. Both tools are installed by
// scripts/install-deps.sh; a missing tool fails these tests (it is not a skip).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "backend/cpu/plan.h"
#include "common/fixtures.h"
#include "graph/builders/builders.h"
#include "graph/tiny_model.h"
#include "io/safetensors.h"

namespace sdc {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::tiny;

// Runs a shell command line, returning (exit status, stdout + stderr).
std::pair<int, std::string> shell(const std::string& cmd) {
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return {-1, "popen failed"};
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

const std::string kTools =
    " (ONNX Runtime for Node and python3-onnx come from scripts/install-deps.sh)";

// One export of the tiny model into DIR/NAME with extra convert flags.
std::string export_tiny(const test::TempDir& dir, const std::string& name,
                        std::vector<std::string> flags) {
  std::vector<std::string> args{"convert",
                                "-u",
                                tiny("model.safetensors"),
                                "--model-config",
                                tiny("diffusers"),
                                "--format",
                                "onnx",
                                "-o",
                                dir.file(name)};
  args.insert(args.end(), flags.begin(), flags.end());
  const test::CommandResult r = test::run_sdc(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return dir.file(name);
}

// Builds the JSON spec run_onnx_models.js reads.
class Spec {
 public:
  explicit Spec(std::string own) : own_(std::move(own)) {}
  static json ref(const std::string& tensor, const char* dtype = "float32") {
    return {{"file", tiny("reference.safetensors")}, {"tensor", tensor}, {"dtype", dtype}};
  }
  json own(const std::string& tensor) const {
    return {{"file", own_}, {"tensor", tensor}, {"dtype", "float32"}};
  }
  static json values(const std::vector<double>& v, std::vector<int64_t> dims,
                     const char* dtype = "float32") {
    return {{"values", v}, {"dims", dims}, {"dtype", dtype}};
  }
  static json vs_ref(const std::string& tensor, double tol) {
    return {{"file", tiny("reference.safetensors")},
            {"tensor", tensor},
            {"tol", tol},
            {"label", "diffusers"}};
  }
  json vs_own(const std::string& tensor, double tol) const {
    return {{"file", own_}, {"tensor", tensor}, {"tol", tol}, {"label", "sdc"}};
  }
  void run(const std::string& label, const std::string& model, json inputs, json outputs) {
    runs_.push_back({{"label", label}, {"model", model}, {"inputs", inputs}, {"outputs", outputs}});
  }
  // Runs ONNX Runtime on every run; fails the test with the runtime's report.
  void check(const test::TempDir& dir) const {
    const std::string path = dir.file("spec.json");
    std::ofstream(path) << json{{"runs", runs_}}.dump(1);
    const auto [code, out] =
        shell("node " + std::string(SDC_SOURCE_DIR) + "/tests/onnx/run_onnx_models.js " + path);
    EXPECT_EQ(code, 0) << out << kTools;
    EXPECT_NE(out.find("all comparisons passed"), std::string::npos) << out;
    std::printf("%s", out.c_str());
  }

 private:
  std::string own_;
  json runs_ = json::array();
};

std::vector<double> ids_of(const std::vector<std::string>& tensors) {
  std::vector<double> out;
  for (const auto& t : tensors)
    for (int64_t id : test::ref_i64(t)) out.push_back(double(id));
  return out;
}

// ---- sdc's own outputs (CPU backend, f32) on the same inputs ------------------------------

std::unique_ptr<cpu::Plan> compile(const graph::Graph& g) {
  cpu::PlanOptions o;
  o.precision = cpu::Precision::F32;
  o.threads = 1;
  return cpu::Plan::compile(g, o);
}

// An NCHW tensor as a NHWC plan input.
void set_nchw(cpu::Plan& p, const std::string& name, const std::vector<float>& v, const Shape& s) {
  const std::vector<float> x = test::nchw_to_nhwc(v, s);
  std::copy(x.begin(), x.end(), p.input_f32(name));
}
void set(cpu::Plan& p, const std::string& name, const std::vector<float>& v) {
  std::copy(v.begin(), v.end(), p.input_f32(name));
}

// Smooth deterministic values in [lo, hi] (an image-like input no fixture has at this size).
std::vector<float> pattern(const Shape& s, float lo, float hi) {
  std::vector<float> v(size_t(shape_numel(s)));
  for (size_t i = 0; i < v.size(); ++i)
    v[i] = lo + (hi - lo) * 0.5f * (1.f + std::sin(0.37f * float(i % 997) + 0.011f * float(i)));
  return v;
}

class OwnOutputs {
 public:
  void add(const std::string& name, std::vector<float> v, Shape s) {
    store_.push_back(std::make_shared<std::vector<float>>(std::move(v)));
    map_.set(name, TensorRef::from_f32(*store_.back(), std::move(s), DType::F32));
  }
  // A plan output (NHWC or sequence) stored as the ONNX layout (NCHW for images).
  void add_output(const std::string& name, const cpu::Plan& p, const std::string& out) {
    const Shape& s = p.output_shape(out);
    std::vector<float> v(p.output(out), p.output(out) + shape_numel(s));
    if (s.size() == 4)
      add(name, test::nhwc_to_nchw(v.data(), s), {s[0], s[3], s[1], s[2]});
    else
      add(name, v, s);
  }
  void write(const std::string& path) { io::write_safetensors(path, map_); }

 private:
  WeightMap map_;
  std::vector<std::shared_ptr<std::vector<float>>> store_;
};

const std::vector<float>& lora_free(const std::string& t) {
  static std::map<std::string, std::vector<float>> cache;
  auto it = cache.find(t);
  if (it == cache.end()) it = cache.emplace(t, test::ref_f32(t)).first;
  return it->second;
}

// ---- the tests ---------------------------------------------------------------------------

TEST(OnnxRuntime, EveryComponentMatchesDiffusersAndSdcAtTwoSizes) {
  test::TempDir dir;
  const std::string plain = export_tiny(dir, "plain", {});
  const std::string control = export_tiny(dir, "control", {"-c", tiny("controlnet.safetensors")});
  const double tol = test::tolerance("unet");
  const std::string te = plain + "/text_encoder/text_encoder.onnx";
  const std::string unet = plain + "/unet/unet_fuse_1.onnx";
  const std::string cunet = control + "/unet/unet_fuse_1.onnx";
  const std::string cnet = control + "/controlnet/controlnet_1.onnx";
  const std::string dec = plain + "/vae_decoder/vae_decoder.onnx";
  const std::string enc = plain + "/vae_encoder/vae_encoder.onnx";

  // sdc's own outputs at the second sizes.
  const std::string own_path = dir.file("sdc.safetensors");
  OwnOutputs own;
  const auto& w = test::tiny_weights();
  {  // text encoder, batch 2
    auto p = compile(graph::build_text_encoder_both(w, test::tiny_text_encoder_params(), 2));
    const std::vector<double> ids =
        ids_of({"text_encoder/0/input_ids", "text_encoder/3/input_ids"});
    for (size_t i = 0; i < ids.size(); ++i) p->input_i32("input_ids")[i] = int32_t(ids[i]);
    p->run();
    own.add_output("te/last", *p, "last_hidden_state");
    own.add_output("te/penultimate", *p, "penultimate_ln");
  }
  const std::vector<float> lat812 = lora_free("unet/input/latent_8x12");
  const std::vector<float> ctx = lora_free("text_encoder/0/last_hidden_state");
  {  // UNet 8x12 at t=500
    auto p = compile(graph::build_unet(w, test::tiny_unet_params(), {1, 8, 12, 77, false}));
    set_nchw(*p, "sample", lat812, {1, 4, 8, 12});
    set(*p, "timestep", {500.f});
    set(*p, "context", ctx);
    p->run();
    own.add_output("unet/8x12", *p, "eps");
  }
  {  // VAE decoder at latent 8x12 (the ONNX graph divides by the scaling factor itself)
    auto p = compile(graph::build_vae_decoder(w, test::tiny_vae_params(), 1, 8, 12));
    std::vector<float> scaled = lat812;
    for (float& x : scaled) x *= 1.f / 0.18215f;
    set_nchw(*p, "latent", scaled, {1, 4, 8, 12});
    p->run();
    own.add_output("vae/decode", *p, "image");
  }
  const std::vector<float> image = pattern({1, 3, 64, 96}, -1.f, 1.f);
  own.add("in/image", image, {1, 3, 64, 96});
  {  // VAE encoder at 64x96
    auto p = compile(graph::build_vae_encoder(w, test::tiny_vae_params(), 1, 64, 96));
    set_nchw(*p, "image", image, {1, 3, 64, 96});
    p->run();
    own.add_output("vae/mean", *p, "mean");
    own.add_output("vae/logvar", *p, "logvar");
  }
  const std::vector<float> hint = pattern({1, 3, 64, 96}, 0.f, 1.f);
  own.add("in/hint", hint, {1, 3, 64, 96});
  {  // ControlNet at latent 8x12, scale 0.7, and the UNet with its residuals
    auto c = compile(graph::build_controlnet(test::tiny_controlnet_weights(),
                                             test::tiny_controlnet_params(), 1, 8, 12));
    set_nchw(*c, "sample", lat812, {1, 4, 8, 12});
    set(*c, "timestep", {500.f});
    set(*c, "context", ctx);
    set_nchw(*c, "hint", hint, {1, 3, 64, 96});
    set(*c, "scale", {0.7f});
    c->run();
    auto u = compile(graph::build_unet(w, test::tiny_unet_params(), {1, 8, 12, 77, true}));
    set_nchw(*u, "sample", lat812, {1, 4, 8, 12});
    set(*u, "timestep", {500.f});
    set(*u, "context", ctx);
    for (int i = 0; i <= 12; ++i) {
      const std::string from = i < 12 ? graph::controlnet_down_name(i) : graph::kControlNetMid;
      const std::string to = i < 12 ? graph::control_down_name(i) : graph::kControlMid;
      own.add_output("cn/" + to, *c, from);
      const Shape& s = c->output_shape(from);
      std::copy(c->output(from), c->output(from) + shape_numel(s), u->input_f32(to));
    }
    u->run();
    own.add_output("cunet/8x12", *u, "eps");
  }
  own.write(own_path);

  Spec spec(own_path);
  // Text encoder: the four prompts (batch 1) against diffusers, a batch of 2 against sdc.
  for (int i = 0; i < 4; ++i) {
    const std::string k = "text_encoder/" + std::to_string(i);
    spec.run(k, te, {{"input_ids", Spec::ref(k + "/input_ids", "int32")}},
             {{"last_hidden_state",
               {Spec::vs_ref(k + "/last_hidden_state", test::tolerance("text_encoder"))}},
              {"penultimate_hidden_state",
               {Spec::vs_ref(k + "/penultimate_ln", test::tolerance("text_encoder"))}}});
  }
  spec.run(
      "text_encoder batch 2", te,
      {{"input_ids", Spec::values(ids_of({"text_encoder/0/input_ids", "text_encoder/3/input_ids"}),
                                  {2, 77}, "int32")}},
      {{"last_hidden_state", {spec.vs_own("te/last", tol)}},
       {"penultimate_hidden_state", {spec.vs_own("te/penultimate", tol)}}});
  // UNet: every fixture case (8x8, 8x12, 16x16 at three timesteps; batch 2).
  for (const auto& c : test::cases()["cases"]) {
    if (c["kind"] != "unet") continue;
    const auto& t = c["tensors"];
    const Shape s = test::ref_shape(t["sample"]);
    std::vector<double> ts(size_t(s[0]), double(c["timestep"].get<int>()));
    json outputs = {{"out_sample", {Spec::vs_ref(t["output"], tol)}}};
    if (c["id"] == "unet/8x12/t500") outputs["out_sample"].push_back(spec.vs_own("unet/8x12", tol));
    spec.run(c["id"], unet,
             {{"sample", Spec::ref(t["sample"])},
              {"timestep", Spec::values(ts, {s[0]})},
              {"encoder_hidden_states", Spec::ref(t["encoder_hidden_states"])}},
             outputs);
  }
  // VAE: the fixture sizes against diffusers, a second size against sdc.
  spec.run("vae decode 8x8", dec, {{"latent", Spec::ref("vae/decode/latents")}},
           {{"image", {Spec::vs_ref("vae/decode/output", test::tolerance("vae_decode"))}}});
  spec.run("vae decode 8x12", dec, {{"latent", Spec::ref("unet/input/latent_8x12")}},
           {{"image", {spec.vs_own("vae/decode", tol)}}});
  spec.run("vae encode 64x64", enc, {{"image", Spec::ref("vae/encode/image")}},
           {{"mean", {Spec::vs_ref("vae/encode/mean", test::tolerance("vae_encode"))}},
            {"logvar", {Spec::vs_ref("vae/encode/logvar", test::tolerance("vae_encode"))}}});
  spec.run(
      "vae encode 64x96", enc, {{"image", spec.own("in/image")}},
      {{"mean", {spec.vs_own("vae/mean", tol)}}, {"logvar", {spec.vs_own("vae/logvar", tol)}}});
  // ControlNet and the UNet with its residuals: both fixture scales, and 8x12 against sdc.
  for (const char* scale : {"1.0", "0.5"}) {
    const std::string k = std::string("controlnet/scale") + scale;
    const json base = {{"sample", Spec::ref("unet/input/latent_8x8")},
                       {"timestep", Spec::values({500}, {1})},
                       {"encoder_hidden_states", Spec::ref("text_encoder/0/last_hidden_state")}};
    json cin = base, outs = json::object(), uin = base;
    cin["hint"] = Spec::ref("controlnet/hint");
    cin["scale"] = Spec::values({std::stod(scale)}, {1});
    for (int i = 0; i <= 12; ++i) {
      char ref[64];
      if (i < 12)
        std::snprintf(ref, sizeof ref, "%s/down_residual_%02d", k.c_str(), i);
      else
        std::snprintf(ref, sizeof ref, "%s/mid_residual", k.c_str());
      const std::string name = i < 12 ? graph::control_down_name(i) : graph::kControlMid;
      outs[name] = {Spec::vs_ref(ref, test::tolerance("controlnet"))};
      uin[name] = Spec::ref(ref);
    }
    spec.run(k, cnet, cin, outs);
    spec.run(k + " unet", cunet, uin,
             {{"out_sample", {Spec::vs_ref(k + "/unet_output", test::tolerance("controlnet"))}}});
  }
  {
    json cin = {{"sample", Spec::ref("unet/input/latent_8x12")},
                {"timestep", Spec::values({500}, {1})},
                {"encoder_hidden_states", Spec::ref("text_encoder/0/last_hidden_state")},
                {"hint", spec.own("in/hint")},
                {"scale", Spec::values({0.7}, {1})}};
    json outs = json::object(),
         uin = {{"sample", Spec::ref("unet/input/latent_8x12")},
                {"timestep", Spec::values({500}, {1})},
                {"encoder_hidden_states", Spec::ref("text_encoder/0/last_hidden_state")}};
    for (int i = 0; i <= 12; ++i) {
      const std::string name = i < 12 ? graph::control_down_name(i) : graph::kControlMid;
      outs[name] = {spec.vs_own("cn/" + name, tol)};
      uin[name] = spec.own("cn/" + name);
    }
    spec.run("controlnet 8x12", cnet, cin, outs);
    spec.run("controlnet 8x12 unet", cunet, uin,
             {{"out_sample", {spec.vs_own("cunet/8x12", tol)}}});
  }
  spec.check(dir);
}

TEST(OnnxRuntime, StaticExternalDataLoraAndF16Exports) {
  test::TempDir dir;
  const std::string fixed = export_tiny(dir, "static", {"--static", "-s", "96", "64"});
  const std::string ext = export_tiny(dir, "ext", {"--external-data"});
  const std::string lora =
      export_tiny(dir, "lora", {"-l", tiny("lora-kohya.safetensors"), "--defaults", "none"});
  const std::string half = export_tiny(dir, "f16", {"-t", "f16"});
  ASSERT_TRUE(fs::exists(ext + "/unet/unet_fuse_1.onnx.data"));
  const double tol = test::tolerance("unet");
  Spec spec(dir.file("unused"));
  auto unet_case = [&](const std::string& label, const std::string& model, const std::string& id,
                       const std::string& out_ref, double t) {
    const auto& c = test::find_case(id);
    const auto& tn = c["tensors"];
    spec.run(label, model,
             {{"sample", Spec::ref(tn["sample"])},
              {"timestep", Spec::values({double(c["timestep"].get<int>())}, {1})},
              {"encoder_hidden_states", Spec::ref(tn["encoder_hidden_states"])}},
             {{"out_sample", {Spec::vs_ref(out_ref, t)}}});
  };
  for (const char* t : {"t999", "t1"}) {
    const std::string id = std::string("unet/8x12/") + t;
    unet_case("static " + id, fixed + "/unet/unet_fuse_1.onnx", id, id + "/output", tol);
  }
  unet_case("external data unet/16x16/t500", ext + "/unet/unet_fuse_1.onnx", "unet/16x16/t500",
            "unet/16x16/t500/output", tol);
  spec.run("external data vae decode", ext + "/vae_decoder/vae_decoder.onnx",
           {{"latent", Spec::ref("vae/decode/latents")}},
           {{"image", {Spec::vs_ref("vae/decode/output", test::tolerance("vae_decode"))}}});
  unet_case("kohya LoRA baked", lora + "/unet/unet_fuse_1.onnx", "lora/kohya/scale1.0/unet",
            "lora/kohya/scale1.0/unet_output", test::tolerance("unet_lora"));
  spec.run("kohya LoRA baked text encoder", lora + "/text_encoder/text_encoder.onnx",
           {{"input_ids", Spec::ref("text_encoder/0/input_ids", "int32")}},
           {{"last_hidden_state",
             {Spec::vs_ref("lora/kohya/scale1.0/te_last_hidden_state",
                           test::tolerance("text_encoder_lora"))}}});
  // f16 weights and activations (norms and softmax in f32): within the fp16-weights column.
  unet_case("f16 unet/16x16/t500", half + "/unet/unet_fuse_1.onnx", "unet/16x16/t500",
            "unet/16x16/t500/output", test::tolerance("unet", "fp16"));
  spec.run("f16 text encoder", half + "/text_encoder/text_encoder.onnx",
           {{"input_ids", Spec::ref("text_encoder/1/input_ids", "int32")}},
           {{"last_hidden_state",
             {Spec::vs_ref("text_encoder/1/last_hidden_state",
                           test::tolerance("text_encoder", "fp16"))}}});
  spec.run("f16 vae decode", half + "/vae_decoder/vae_decoder.onnx",
           {{"latent", Spec::ref("vae/decode/latents")}},
           {{"image", {Spec::vs_ref("vae/decode/output", test::tolerance("vae_decode", "fp16"))}}});
  spec.check(dir);
}

TEST(OnnxChecker, EveryFilePassesFullCheckWithShapeInference) {
  test::TempDir dir;
  std::vector<std::string> files;
  for (const auto& [name, flags] : std::vector<std::pair<std::string, std::vector<std::string>>>{
           {"symbolic", {"-c", tiny("controlnet.safetensors")}},
           {"static", {"-c", tiny("controlnet.safetensors"), "--static", "-s", "96", "64"}},
           {"f16", {"-c", tiny("controlnet.safetensors"), "-t", "f16"}},
           {"ext", {"--external-data", "--controlnet-inputs"}}}) {
    const std::string out = export_tiny(dir, name, flags);
    for (const auto& e : fs::recursive_directory_iterator(out))
      if (e.path().extension() == ".onnx") files.push_back(e.path().string());
  }
  ASSERT_EQ(files.size(), 5u + 5u + 5u + 4u);
  std::string cmd = "/usr/bin/python3 " + std::string(SDC_SOURCE_DIR) + "/tests/onnx/check_onnx.py";
  for (const auto& f : files) cmd += " " + f;
  const auto [code, out] = shell(cmd);
  EXPECT_EQ(code, 0) << out << kTools;
  std::printf("%s", out.c_str());
}

}  // namespace
}  // namespace sdc
