// Golden tests of the graph builders run by the CPU backend against the tiny-sd15 references
// (diffusers/transformers outputs): text encoder, UNet (three sizes, three timesteps, batch 2),
// VAE decode/encode, ControlNet residuals and the UNet with them — at f32 within the fixtures'
// fp32 tolerance, with bf16 matmuls within the bf16 column, and the UNet/ControlNet W8A8 within
// sdc's own int8 bound (kInt8Tol; the fixture has no int8 column). Fixture tensors are NCHW; graphs
// are NHWC, so tests transpose at the boundary.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>

#include "backend/cpu/plan.h"
#include "backend/cpu/prepacked_weights.h"
#include "graph/builders/builders.h"
#include "pipeline/plan_cache.h"
#include "tiny_model.h"

namespace sdc::graph {
namespace {

using cpu::Plan;
using cpu::Precision;
using test::nchw_to_nhwc;
using test::ref_f32;
using test::ref_shape;

// Tiny graphs run on one thread (fast on a loaded machine: no spinning workers); the f32 UNet
// sweep uses all cores so multi-threaded kernels are checked against the references too.
// denoiser: the UNet/ControlNet options generation compiles with (bf16 residual sums).
std::unique_ptr<Plan> compile(const Graph& g, Precision p, int threads = 1, bool denoiser = false) {
  cpu::PlanOptions o;
  o.precision = p;
  o.threads = threads;
  return Plan::compile(g, denoiser ? pipeline::denoiser_options(o) : o);
}

void set_input(Plan& plan, const std::string& name, const std::vector<float>& values) {
  std::copy(values.begin(), values.end(), plan.input_f32(name));
}

// Reference image-like tensor (NCHW) as NHWC values.
std::vector<float> ref_nhwc(const std::string& name) {
  return nchw_to_nhwc(ref_f32(name), ref_shape(name));
}

// max|out - ref| / max|ref| of an NHWC output against an NCHW reference.
double diff_nchw(const Plan& plan, const std::string& output, const std::string& ref) {
  const Shape& s = plan.output_shape(output);
  const Shape r = ref_shape(ref);
  EXPECT_EQ(s, (Shape{r[0], r[2], r[3], r[1]})) << output;
  const std::vector<float> out = test::nhwc_to_nchw(plan.output(output), s);
  return test::rel_max_diff(out.data(), ref_f32(ref));
}

double diff_seq(const Plan& plan, const std::string& output, const std::string& ref) {
  EXPECT_EQ(plan.output_shape(output), ref_shape(ref)) << output;
  return test::rel_max_diff(plan.output(output), ref_f32(ref));
}

std::vector<float> timesteps(const std::string& ref, int batch) {
  const std::vector<int64_t> t = test::ref_i64(ref);
  std::vector<float> out(static_cast<size_t>(batch));
  for (int i = 0; i < batch; ++i) out[size_t(i)] = float(t.size() == 1 ? t[0] : t[size_t(i)]);
  return out;
}

const char* column(Precision p) {
  return p == Precision::F32 ? "fp32" : p == Precision::BF16 ? "bf16" : "int8";
}

// The fixture has no int8 column: sdc's own bound for the W8A8 UNet/ControlNet on this model
// (max|Δ| / max|ref| measured 0.045–0.061), loose enough for rounding, tight enough that a wrong
// scale, zero point or layout (errors of order 1) fails.
constexpr double kInt8Tol = 0.2;

double tolerance_for(const std::string& kind, Precision p) {
  return p == Precision::INT8 ? kInt8Tol : test::tolerance(kind, column(p));
}

// ---- text encoder -------------------------------------------------------------------------

void text_encoder_cases(Precision precision) {
  const Graph both =
      build_text_encoder_both(test::tiny_weights(), test::tiny_text_encoder_params(), 1);
  const Graph skip2 =
      build_text_encoder(test::tiny_weights(), test::tiny_text_encoder_params(), 1, 2);
  auto p_both = compile(both, precision);
  auto p_skip2 = compile(skip2, precision);
  const double tol = test::tolerance("text_encoder", column(precision));
  int cases = 0;
  for (const auto& c : test::cases()["cases"]) {
    if (c["kind"] != "text_encoder") continue;
    ++cases;
    const auto& t = c["tensors"];
    const std::vector<int64_t> ids = test::ref_i64(t["input_ids"]);
    ASSERT_EQ(ids.size(), 77u);
    for (Plan* p : {p_both.get(), p_skip2.get()}) {
      std::copy(ids.begin(), ids.end(), p->input_i32("input_ids"));
      p->run();
    }
    const std::string id = c["id"];
    EXPECT_LE(diff_seq(*p_both, "last_hidden_state", t["last_hidden_state"]), tol) << id;
    EXPECT_LE(diff_seq(*p_both, "penultimate_ln", t["penultimate_ln"]), tol) << id;
    EXPECT_LE(diff_seq(*p_skip2, "last_hidden_state", t["penultimate_ln"]), tol) << id;
  }
  EXPECT_EQ(cases, 4);
}

TEST(GoldenTextEncoder, AllPromptsBothOutputsF32) {
  text_encoder_cases(Precision::F32);
}
TEST(GoldenTextEncoder, AllPromptsBothOutputsBF16) {
  if (!cpu::precision_available(cpu::Precision::BF16))
    GTEST_SKIP() << "no AVX-512: bf16 plans are refused here";
  text_encoder_cases(Precision::BF16);
}

TEST(GoldenTextEncoder, BatchOfFourMatchesEachRow) {
  const Graph g = build_text_encoder(test::tiny_weights(), test::tiny_text_encoder_params(), 4);
  auto plan = compile(g, Precision::F32);
  for (int i = 0; i < 4; ++i) {
    const std::vector<int64_t> ids =
        test::ref_i64("text_encoder/" + std::to_string(i) + "/input_ids");
    std::copy(ids.begin(), ids.end(), plan->input_i32("input_ids") + 77 * i);
  }
  plan->run();
  for (int i = 0; i < 4; ++i) {
    const std::vector<float> ref =
        ref_f32("text_encoder/" + std::to_string(i) + "/last_hidden_state");
    EXPECT_LE(test::rel_max_diff(plan->output("last_hidden_state") + 77 * 32 * i, ref),
              test::tolerance("text_encoder"))
        << i;
  }
}

// ---- UNet ---------------------------------------------------------------------------------

void unet_cases(Precision precision, bool all_timesteps, int threads) {
  const double tol = tolerance_for("unet", precision);
  std::map<std::string, std::unique_ptr<Plan>> plans;  // per sample shape
  int cases = 0;
  for (const auto& c : test::cases()["cases"]) {
    if (c["kind"] != "unet") continue;
    const std::string id = c["id"];
    if (!all_timesteps && c["timestep"] != 500) continue;
    ++cases;
    const auto& t = c["tensors"];
    const Shape s = ref_shape(t["sample"]);  // [N, 4, h, w]
    const std::string key = shape_str(s);
    if (!plans.count(key)) {
      UNetShape us{int(s[0]), int(s[2]), int(s[3]), 77, false};
      plans[key] = compile(build_unet(test::tiny_weights(), test::tiny_unet_params(), us),
                           precision, threads, true);
    }
    Plan& plan = *plans[key];
    set_input(plan, "sample", ref_nhwc(t["sample"]));
    set_input(plan, "timestep", timesteps(t["timestep"], int(s[0])));
    set_input(plan, "context", ref_f32(t["encoder_hidden_states"]));
    plan.run();
    const double d = diff_nchw(plan, "eps", t["output"]);
    EXPECT_LE(d, tol) << id;
    std::printf("%-18s %s rel diff %.2e\n", id.c_str(), column(precision), d);
  }
  EXPECT_EQ(cases, all_timesteps ? 10 : 4);
}

TEST(GoldenUNet, AllSizesTimestepsAndBatchTwoF32) {
  unet_cases(Precision::F32, true, 2);
}
TEST(GoldenUNet, AllSizesAtT500BF16) {
  if (!cpu::precision_available(cpu::Precision::BF16))
    GTEST_SKIP() << "no AVX-512: bf16 plans are refused here";
  unet_cases(Precision::BF16, false, 1);
}
TEST(GoldenUNet, AllSizesAtT500Int8) {
  if (!cpu::isa_has_int8_dot()) GTEST_SKIP() << "no VNNI: int8 plans are refused here";
  unet_cases(Precision::INT8, false, 1);
}

// ---- VAE ----------------------------------------------------------------------------------

void vae_decode_case(Precision precision) {
  const auto& t = test::find_case("vae/decode")["tensors"];
  // decoder_input = latents / scaling_factor: the graph's input.
  const std::vector<float> latents = ref_f32(t["latents"]), input = ref_f32(t["decoder_input"]);
  for (size_t i = 0; i < latents.size(); ++i)
    ASSERT_NEAR(input[i], latents[i] / 0.18215f, 1e-5f * std::fabs(input[i]) + 1e-6f);
  const Shape s = ref_shape(t["decoder_input"]);
  const Graph g = build_vae_decoder(test::tiny_weights(), test::tiny_vae_params(), int(s[0]),
                                    int(s[2]), int(s[3]));
  auto plan = compile(g, precision);
  set_input(*plan, "latent", ref_nhwc(t["decoder_input"]));
  plan->run();
  const double d = diff_nchw(*plan, "image", t["output"]);
  EXPECT_LE(d, test::tolerance("vae_decode", column(precision)));
  std::printf("vae/decode %s rel diff %.2e\n", column(precision), d);
}

void vae_encode_case(Precision precision) {
  const auto& t = test::find_case("vae/encode")["tensors"];
  const Shape s = ref_shape(t["image"]);
  const Graph g = build_vae_encoder(test::tiny_weights(), test::tiny_vae_params(), int(s[0]),
                                    int(s[2]), int(s[3]));
  auto plan = compile(g, precision);
  set_input(*plan, "image", ref_nhwc(t["image"]));
  plan->run();
  const double tol = test::tolerance("vae_encode", column(precision));
  EXPECT_LE(diff_nchw(*plan, "mean", t["mean"]), tol);
  EXPECT_LE(diff_nchw(*plan, "logvar", t["logvar"]), tol);
  // std = exp(0.5 * clamp(logvar, -30, 20)), what the pipeline computes from the graph's output.
  const Shape& ls = plan->output_shape("logvar");
  std::vector<float> std_nchw = test::nhwc_to_nchw(plan->output("logvar"), ls);
  for (float& v : std_nchw) v = std::exp(0.5f * std::clamp(v, -30.f, 20.f));
  EXPECT_LE(test::rel_max_diff(std_nchw.data(), ref_f32(t["std"])), tol);
}

TEST(GoldenVae, DecodeF32) {
  vae_decode_case(Precision::F32);
}
TEST(GoldenVae, DecodeBF16) {
  if (!cpu::precision_available(cpu::Precision::BF16))
    GTEST_SKIP() << "no AVX-512: bf16 plans are refused here";
  vae_decode_case(Precision::BF16);
}
TEST(GoldenVae, EncodeF32) {
  vae_encode_case(Precision::F32);
}
TEST(GoldenVae, EncodeBF16) {
  if (!cpu::precision_available(cpu::Precision::BF16))
    GTEST_SKIP() << "no AVX-512: bf16 plans are refused here";
  vae_encode_case(Precision::BF16);
}

// ---- ControlNet ---------------------------------------------------------------------------

std::string residual_ref(const nlohmann::json& t, int i) {
  char key[32];
  std::snprintf(key, sizeof key, "down_residual_%02d", i);
  return t[key];
}

void controlnet_cases(Precision precision) {
  const double tol = tolerance_for("controlnet", precision);
  const Shape s = ref_shape("unet/input/latent_8x8");
  const int h = int(s[2]), w = int(s[3]);
  auto cn = compile(
      build_controlnet(test::tiny_controlnet_weights(), test::tiny_controlnet_params(), 1, h, w),
      precision, 1, true);
  auto unet = compile(
      build_unet(test::tiny_weights(), test::tiny_unet_params(), UNetShape{1, h, w, 77, true}),
      precision, 1, true);
  auto plain = compile(
      build_unet(test::tiny_weights(), test::tiny_unet_params(), UNetShape{1, h, w, 77, false}),
      precision, 1, true);
  int cases = 0;
  for (const auto& c : test::cases()["cases"]) {
    if (c["kind"] != "controlnet") continue;
    ++cases;
    const std::string id = c["id"];
    const auto& t = c["tensors"];
    const std::vector<float> sample = ref_nhwc(t["sample"]),
                             ctx = ref_f32(t["encoder_hidden_states"]);
    const std::vector<float> ts = timesteps(t["timestep"], 1);
    set_input(*cn, "sample", sample);
    set_input(*cn, "timestep", ts);
    set_input(*cn, "context", ctx);
    set_input(*cn, "hint", ref_nhwc(t["hint"]));
    set_input(*cn, "scale", {c["conditioning_scale"].get<float>()});
    cn->run();
    for (int i = 0; i < 12; ++i)
      EXPECT_LE(diff_nchw(*cn, controlnet_down_name(i), residual_ref(t, i)), tol) << id << " " << i;
    EXPECT_LE(diff_nchw(*cn, kControlNetMid, t["mid_residual"]), tol) << id;

    // The UNet with the fixture's residuals, then with ours (how the pipeline chains them).
    for (bool ours : {false, true}) {
      set_input(*unet, "sample", sample);
      set_input(*unet, "timestep", ts);
      set_input(*unet, "context", ctx);
      for (int i = 0; i < 12; ++i) {
        const std::string in = control_down_name(i);
        if (ours) {
          const float* r = cn->output(controlnet_down_name(i));
          std::copy(r, r + shape_numel(cn->output_shape(controlnet_down_name(i))),
                    unet->input_f32(in));
        } else {
          set_input(*unet, in, ref_nhwc(residual_ref(t, i)));
        }
      }
      if (ours) {
        const float* r = cn->output(kControlNetMid);
        std::copy(r, r + shape_numel(cn->output_shape(kControlNetMid)),
                  unet->input_f32(kControlMid));
      } else {
        set_input(*unet, kControlMid, ref_nhwc(t["mid_residual"]));
      }
      unet->run();
      const double d = diff_nchw(*unet, "eps", t["unet_output"]);
      EXPECT_LE(d, tol) << id << (ours ? " (our residuals)" : " (reference residuals)");
      std::printf("%-20s %s UNet with control (%s residuals) rel diff %.2e\n", id.c_str(),
                  column(precision), ours ? "our" : "reference", d);
    }
    set_input(*plain, "sample", sample);
    set_input(*plain, "timestep", ts);
    set_input(*plain, "context", ctx);
    plain->run();
    EXPECT_LE(diff_nchw(*plain, "eps", t["unet_output_without_control"]), tol) << id;
  }
  EXPECT_EQ(cases, 2);
}

TEST(GoldenControlNet, ResidualsAndControlledUNetF32) {
  controlnet_cases(Precision::F32);
}
TEST(GoldenControlNet, ResidualsAndControlledUNetBF16) {
  if (!cpu::precision_available(cpu::Precision::BF16))
    GTEST_SKIP() << "no AVX-512: bf16 plans are refused here";
  controlnet_cases(Precision::BF16);
}
TEST(GoldenControlNet, ResidualsAndControlledUNetInt8) {
  if (!cpu::isa_has_int8_dot()) GTEST_SKIP() << "no VNNI: int8 plans are refused here";
  controlnet_cases(Precision::INT8);
}

// Zero residuals leave the UNet's output unchanged: the control inputs are pure additions.
TEST(GoldenControlNet, ZeroResidualsChangeNothing) {
  const Graph with =
      build_unet(test::tiny_weights(), test::tiny_unet_params(), UNetShape{1, 8, 12, 77, true});
  auto plan = compile(with, Precision::F32);
  set_input(*plan, "sample", ref_nhwc("unet/input/latent_8x12"));
  set_input(*plan, "timestep", timesteps("unet/8x12/t999/timestep", 1));
  set_input(*plan, "context", ref_f32("text_encoder/0/last_hidden_state"));
  for (const auto& [name, v] : with.inputs())
    if (name.rfind("control_", 0) == 0)
      std::fill_n(plan->input_f32(name), shape_numel(with.shape(v)), 0.f);
  plan->run();
  EXPECT_LE(diff_nchw(*plan, "eps", "unet/8x12/t999/output"), test::tolerance("unet"));
}

// ---- weights stored as f16 / bf16 (computed in f32) ----------------------------------------

const WeightMap& fp16_weights() {
  static const io::TensorFile f = io::read_safetensors(test::tiny("model-fp16.safetensors"));
  return f.tensors;
}

// The ControlNet's hint encoder and both networks' cross-attention K and V depend on the steady
// inputs (context, hint) alone: a second step with the same image's inputs skips them and
// computes the same residuals and noise prediction; self-attention never is skipped.
TEST(GoldenControlNet, HintEncoderAndCrossAttentionKeysRunOncePerImage) {
  const Shape s = ref_shape("unet/input/latent_8x8");
  const int h = int(s[2]), w = int(s[3]);
  auto cn = compile(
      build_controlnet(test::tiny_controlnet_weights(), test::tiny_controlnet_params(), 1, h, w),
      Precision::F32, 1, true);
  auto unet = compile(
      build_unet(test::tiny_weights(), test::tiny_unet_params(), UNetShape{1, h, w, 77, true}),
      Precision::F32, 1, true);
  auto has = [](const cpu::StepInfo& st, const char* part) {
    return st.label.find(part) != std::string::npos;
  };
  int hint_steps = 0, hint_steady = 0, kv_steady = 0;
  for (Plan* p : {cn.get(), unet.get()})
    for (const cpu::StepInfo& st : p->steps()) {
      if (has(st, "attn2.to_k") || has(st, "attn2.to_v")) {
        EXPECT_TRUE(st.steady) << st.label;
        kv_steady += st.steady;
      }
      if (has(st, "attn1")) {
        EXPECT_FALSE(st.steady) << st.label;
      }
      if (has(st, "input_hint_block")) {
        ++hint_steps;
        hint_steady += st.steady;
      }
    }
  EXPECT_GT(kv_steady, 0);
  // All but perhaps the last hint convolution, which may take conv_in's sum as its post-op.
  EXPECT_GE(hint_steady, hint_steps - 1);
  EXPECT_GT(hint_steady, 0);

  const nlohmann::json* found = nullptr;
  for (const auto& c : test::cases()["cases"])
    if (c["kind"] == "controlnet") found = &c;
  ASSERT_NE(found, nullptr);
  const auto& t = (*found)["tensors"];
  set_input(*cn, "sample", ref_nhwc(t["sample"]));
  set_input(*cn, "timestep", timesteps(t["timestep"], 1));
  set_input(*cn, "context", ref_f32(t["encoder_hidden_states"]));
  set_input(*cn, "hint", ref_nhwc(t["hint"]));
  set_input(*cn, "scale", {1.f});
  std::vector<std::vector<float>> first;
  for (int step = 0; step < 2; ++step) {
    const std::vector<cpu::StepInfo> steps = cn->profile_run();
    for (const cpu::StepInfo& st : steps) EXPECT_EQ(st.skipped, step == 1 && st.steady) << st.label;
    for (int i = 0; i < 12; ++i) {
      const std::string name = controlnet_down_name(i);
      const float* r = cn->output(name);
      const std::vector<float> v(r, r + shape_numel(cn->output_shape(name)));
      if (step == 0)
        first.push_back(v);
      else
        EXPECT_EQ(v, first[size_t(i)]) << name;
    }
  }
}

WeightMap as_bf16(const WeightMap& w) {
  WeightMap out;
  for (const auto& [name, t] : w.all())
    out.set(name, TensorRef::from_f32(t.to_f32(), t.shape, DType::BF16));
  return out;
}

// The UNet at 16x16 / t=500, the text encoder and the VAE decoder from half-precision weights,
// against the fixture's fp16/bf16-weights columns.
void half_weight_cases(const WeightMap& w, const std::string& col) {
  auto te = compile(build_text_encoder(w, test::tiny_text_encoder_params(), 1), Precision::F32);
  const std::vector<int64_t> ids = test::ref_i64("text_encoder/1/input_ids");
  std::copy(ids.begin(), ids.end(), te->input_i32("input_ids"));
  te->run();
  EXPECT_LE(diff_seq(*te, "last_hidden_state", "text_encoder/1/last_hidden_state"),
            test::tolerance("text_encoder", col));

  auto unet = compile(build_unet(w, test::tiny_unet_params(), UNetShape{1, 16, 16, 77, false}),
                      Precision::F32);
  set_input(*unet, "sample", ref_nhwc("unet/input/latent_16x16"));
  set_input(*unet, "timestep", timesteps("unet/16x16/t500/timestep", 1));
  set_input(*unet, "context", ref_f32("text_encoder/0/last_hidden_state"));
  unet->run();
  const double d = diff_nchw(*unet, "eps", "unet/16x16/t500/output");
  EXPECT_LE(d, test::tolerance("unet", col));
  std::printf("unet/16x16/t500 %s weights rel diff %.2e\n", col.c_str(), d);

  auto dec = compile(build_vae_decoder(w, test::tiny_vae_params(), 1, 8, 8), Precision::F32);
  set_input(*dec, "latent", ref_nhwc("vae/decode/decoder_input"));
  dec->run();
  EXPECT_LE(diff_nchw(*dec, "image", "vae/decode/output"), test::tolerance("vae_decode", col));
}

TEST(GoldenHalfWeights, Fp16File) {
  ASSERT_EQ(fp16_weights().get(std::string(kUNetPrefix) + "out.2.weight").dtype, DType::F16);
  half_weight_cases(fp16_weights(), "fp16");
}

TEST(GoldenHalfWeights, Bf16Weights) {
  half_weight_cases(as_bf16(test::tiny_weights()), "bf16");
}

}  // namespace
}  // namespace sdc::graph
