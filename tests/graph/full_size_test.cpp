// Smoke test of the real SD1.5 architecture: full-size random weights (made once per binary),
// every component built and run once at a 64x64 image (8x8 latents), batch 1 — the real shapes
// and widths go through the backend and come out finite and in a sane range.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>

#include "backend/cpu/plan.h"
#include "graph/builders/builders.h"
#include "model/random_model.h"

namespace sdc::graph {
namespace {

const WeightMap& full_size() {
  static const WeightMap w = model::make_random_sd15(20240601, DType::BF16, true);
  return w;
}

std::unique_ptr<cpu::Plan> compile(const Graph& g, cpu::Precision p) {
  cpu::PlanOptions o;
  o.precision = p;
  return cpu::Plan::compile(g, o);
}

// All values finite; returns the standard deviation.
double check_finite(const cpu::Plan& plan, const std::string& name) {
  const float* x = plan.output(name);
  const int64_t n = shape_numel(plan.output_shape(name));
  double s = 0, s2 = 0;
  int64_t bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) ++bad;
    s += x[i];
    s2 += double(x[i]) * x[i];
  }
  EXPECT_EQ(bad, 0) << name;
  const double mean = s / double(n);
  return std::sqrt(std::max(0.0, s2 / double(n) - mean * mean));
}

void fill(float* p, int64_t n, float scale, uint32_t seed) {
  for (int64_t i = 0; i < n; ++i) {
    seed = seed * 1664525u + 1013904223u;
    p[i] = scale * (float(seed >> 8) / 16777216.f * 2.f - 1.f);
  }
}

// Seconds since the previous call (progress lines only; nothing is asserted about time).
double lap() {
  static auto last = std::chrono::steady_clock::now();
  const auto now = std::chrono::steady_clock::now();
  const double s = std::chrono::duration<double>(now - last).count();
  last = now;
  return s;
}

TEST(FullSizeSd15, EveryComponentRunsAt64x64) {
  lap();
  const WeightMap& w = full_size();
  std::printf("random weights: %.1f s\n", lap());
  const model::UNetParams up;
  const int h = 8, wd = 8;

  // Text encoder (f32 compute): token ids of "<start> a cat <end> <pad>...".
  auto te = compile(build_text_encoder(w, {}, 1), cpu::Precision::F32);
  int32_t* ids = te->input_i32("input_ids");
  std::fill_n(ids, 77, 49407);
  ids[0] = 49406;
  ids[1] = 320;
  ids[2] = 2368;
  std::printf("text encoder compile: %.1f s\n", lap());
  te->run();
  std::printf("text encoder run: %.1f s\n", lap());
  EXPECT_EQ(te->output_shape("last_hidden_state"), (Shape{1, 77, 768}));
  const double te_std = check_finite(*te, "last_hidden_state");
  EXPECT_GT(te_std, 0.1);
  EXPECT_LT(te_std, 10.0);
  const float* ctx = te->output("last_hidden_state");

  // ControlNet, then the UNet with its residuals, at the precision `auto` plans here (bf16 where
  // it is faster, else f32: an AVX2 CPU refuses bf16).
  const cpu::Precision prec = cpu::parse_precision("auto");
  auto cn = compile(build_controlnet(w, {}, 1, h, wd), prec);
  fill(cn->input_f32("sample"), 1 * h * wd * 4, 1.f, 1);
  cn->input_f32("timestep")[0] = 500.f;
  std::copy(ctx, ctx + 77 * 768, cn->input_f32("context"));
  fill(cn->input_f32("hint"), 1 * 64 * 64 * 3, 0.5f, 2);
  for (int64_t i = 0; i < 64 * 64 * 3; ++i) cn->input_f32("hint")[i] += 0.5f;
  cn->input_f32("scale")[0] = 1.f;
  std::printf("ControlNet compile: %.1f s\n", lap());
  cn->run();
  std::printf("ControlNet run: %.1f s\n", lap());
  for (int i = 0; i < 12; ++i) check_finite(*cn, controlnet_down_name(i));
  check_finite(*cn, kControlNetMid);
  EXPECT_EQ(cn->output_shape(kControlNetMid), (Shape{1, 1, 1, 1280}));

  auto unet = compile(build_unet(w, up, UNetShape{1, h, wd, 77, true}), prec);
  std::copy(cn->input_f32("sample"), cn->input_f32("sample") + h * wd * 4,
            unet->input_f32("sample"));
  unet->input_f32("timestep")[0] = 500.f;
  std::copy(ctx, ctx + 77 * 768, unet->input_f32("context"));
  for (int i = 0; i < 12; ++i) {
    const float* r = cn->output(controlnet_down_name(i));
    std::copy(r, r + shape_numel(cn->output_shape(controlnet_down_name(i))),
              unet->input_f32(control_down_name(i)));
  }
  std::copy(cn->output(kControlNetMid), cn->output(kControlNetMid) + 1280,
            unet->input_f32(kControlMid));
  std::printf("UNet compile: %.1f s\n", lap());
  unet->run();
  std::printf("UNet run: %.1f s\n", lap());
  EXPECT_EQ(unet->output_shape("eps"), (Shape{1, h, wd, 4}));
  const double eps_std = check_finite(*unet, "eps");
  EXPECT_GT(eps_std, 1e-3);
  EXPECT_LT(eps_std, 1e3);

  // VAE decoder (f32 compute) on the UNet's output as a latent.
  auto dec = compile(build_vae_decoder(w, {}, 1, h, wd), cpu::Precision::F32);
  std::copy(unet->output("eps"), unet->output("eps") + h * wd * 4, dec->input_f32("latent"));
  std::printf("VAE decoder compile: %.1f s\n", lap());
  dec->run();
  std::printf("VAE decoder run: %.1f s\n", lap());
  EXPECT_EQ(dec->output_shape("image"), (Shape{1, 64, 64, 3}));
  const double img_std = check_finite(*dec, "image");
  EXPECT_GT(img_std, 1e-3);
  std::printf("full-size SD1.5 at 64x64: std of text embedding %.3f, eps %.3f, image %.3f\n",
              te_std, eps_std, img_std);
}

}  // namespace
}  // namespace sdc::graph
