// The image decoders at int8 (PlanCache's vae_int8, `--vae-precision int8`): which layers the
// policy quantises, the VAE decoder running them W8A8 while the rest of the model keeps its own
// precision, its image close to the float decoder's, tiling's parts following it, the encoders
// never touched, and TAESD's decoder following the same switch.
#include <gtest/gtest.h>

#include <cmath>

#include "backend/cpu/prepacked_weights.h"
#include "graph/builders/taesd.h"
#include "graph/builders/vae.h"
#include "pipeline/plan_cache.h"
#include "pipeline/taesd_fixture.h"
#include "pipeline/tiny_bundle.h"
#include "sampling/rng/torch_generator.h"

namespace sdc::pipeline {
namespace {

const model::LoadedModel& tiny() {
  return test::tiny_bundle().model;
}

// One run of a VAE plan: `in` into its input, its output out, NCHW.
std::vector<float> run_vae(cpu::Plan& p, const char* input, const std::vector<float>& in,
                           const char* output, size_t out_size) {
  p.set_input_nchw(input, in.data());
  p.run();
  std::vector<float> out(out_size);
  p.read_output_nchw(output, out.data());
  return out;
}

double rel_l2(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num / den);
}

size_t int8_steps(const cpu::Plan& p) {
  size_t n = 0;
  for (const auto& s : p.steps()) n += s.kind.find(".int8") != std::string::npos;
  return n;
}

TEST(VaeInt8Layers, ThePolicyQuantisesTheResNetsUpsamplersAndMidAttentionOnly) {
  const graph::Graph g =
      graph::build_vae_decoder(tiny().weights, tiny().vae, 1, 8, 8, graph::VaePart::Whole, true);
  size_t marked = 0, attentions = 0;
  for (const auto& n : g.nodes()) {
    if (n.op == graph::Op::Attention) {  // the mid block's: int8 QK^T and PV, its linears float
      EXPECT_TRUE(n.attrs.int8) << n.name;
      ++attentions;
      continue;
    }
    if (n.op != graph::Op::Conv2d && n.op != graph::Op::Linear) {
      EXPECT_FALSE(n.attrs.int8) << n.name;
      continue;
    }
    const bool kept = n.name == "post_quant_conv" || n.name == "decoder.conv_in" ||
                      n.name == "decoder.conv_out" || n.name.find(".attn_1.") != std::string::npos;
    EXPECT_EQ(n.attrs.int8, !kept) << n.name;
    marked += n.attrs.int8;
  }
  EXPECT_GT(marked, 10u);
  EXPECT_EQ(attentions, 1u);
  // Without the opt-in nothing is marked.
  const graph::Graph plain = graph::build_vae_decoder(tiny().weights, tiny().vae, 1, 8, 8);
  for (const auto& n : plain.nodes()) EXPECT_FALSE(n.attrs.int8) << n.name;
}

struct VaeInt8Test : ::testing::Test {
  void SetUp() override {
    if (!cpu::isa_has_int8_dot()) GTEST_SKIP() << "no VNNI: int8 plans are refused here";
  }
  static std::vector<float> latent(int h, int w) {
    sampling::TorchGenerator gen(7);
    return gen.randn({1, 4, h, w});
  }
};

TEST_F(VaeInt8Test, TheDecoderRunsW8A8CloseToTheFloatOne) {
  PlanCache f32(tiny(), {}), int8(tiny(), {}, true);
  EXPECT_FALSE(f32.vae_int8());
  EXPECT_TRUE(int8.vae_int8());
  const int h = 16, w = 16;
  const std::vector<float> z = latent(h, w);
  const size_t n = size_t(3 * 64 * h * w);
  cpu::Plan& q = int8.vae_decoder(1, h, w);
  EXPECT_GT(int8_steps(q), 10u);
  EXPECT_EQ(int8_steps(f32.vae_decoder(1, h, w)), 0u);
  const std::vector<float> want = run_vae(f32.vae_decoder(1, h, w), "latent", z, "image", n);
  const std::vector<float> got = run_vae(q, "latent", z, "image", n);
  const double err = rel_l2(got, want);
  EXPECT_GT(err, 0.0);   // it did quantise
  EXPECT_LT(err, 0.05);  // per-channel weights, per-tensor activations: a few per cent at most
  // The other components keep the cache's precision: the UNet plan has no int8 step.
  EXPECT_EQ(int8_steps(int8.unet(1, h, w, 77, false)), 0u);
}

TEST_F(VaeInt8Test, TilingsPartsFollowAndTheEncoderStaysFloat) {
  PlanCache f32(tiny(), {}), int8(tiny(), {}, true);
  EXPECT_GT(int8_steps(int8.vae_decoder(1, 16, 16, graph::VaePart::Head)), 0u);
  EXPECT_GT(int8_steps(int8.vae_decoder(1, 16, 16, graph::VaePart::Tail)), 0u);
  cpu::Plan& enc_q = int8.vae_encoder(1, 16, 16);
  EXPECT_EQ(int8_steps(enc_q), 0u);
  sampling::TorchGenerator gen(3);
  const std::vector<float> image = gen.randn({1, 3, 128, 128});
  const size_t n = size_t(4 * 16 * 16);
  EXPECT_EQ(run_vae(enc_q, "image", image, "mean", n),
            run_vae(f32.vae_encoder(1, 16, 16), "image", image, "mean", n));
}

// TAESD's decoder: its 64 -> 64 convolutions W8A8, the first and last kept float, the result
// close to the float decoder's; its encoder unchanged.
TEST_F(VaeInt8Test, TaesdsDecoderFollowsTheSwitch) {
  const model::LoadedModel m = test::taesd_only(test::taesd_group().path("diffusers"));
  const graph::Graph g = graph::build_taesd_decoder(m.weights, 1, 8, 8, true);
  for (const auto& n : g.nodes()) {
    if (n.op != graph::Op::Conv2d) continue;
    const bool edge = n.name == "1" || n.shape.back() == 3;
    EXPECT_EQ(n.attrs.int8, !edge) << n.name;
  }
  PlanCache f32(m, {}), int8(m, {}, true);
  const int h = 8, w = 8;
  const std::vector<float> z = latent(h, w);
  const size_t n = size_t(3 * 64 * h * w);
  cpu::Plan& q = int8.taesd_decoder(1, h, w);
  EXPECT_GT(int8_steps(q), 5u);
  const std::vector<float> want = run_vae(f32.taesd_decoder(1, h, w), "latent", z, "image", n);
  const std::vector<float> got = run_vae(q, "latent", z, "image", n);
  EXPECT_GT(rel_l2(got, want), 0.0);
  EXPECT_LT(rel_l2(got, want), 0.05);
  EXPECT_EQ(int8_steps(int8.taesd_encoder(1, 64, 64)), 0u);
}

}  // namespace
}  // namespace sdc::pipeline
