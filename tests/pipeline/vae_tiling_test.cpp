// VAE tiling on the tiny model: tile placement, tiled against untiled decode of a 512×512 random
// latent (the bound: under 2 levels on average away from the seams), the network parts
// that add up to the whole, the one-tile case identical to the untiled plan, tiled encode close
// to untiled, and the refusals.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "common/error.h"
#include "common/fixtures.h"
#include "pipeline/generation_request.h"
#include "pipeline/model_bundle.h"
#include "pipeline/plan_cache.h"
#include "pipeline/tiny_bundle.h"
#include "pipeline/vae_tiling.h"
#include "sampling/rng/torch_generator.h"

namespace sdc::pipeline {
namespace {

const ModelBundle& tiny() {
  return test::tiny_bundle();
}

std::vector<float> untiled_decode(PlanCache& plans, const std::vector<float>& z, int h, int w) {
  cpu::Plan& dec = plans.vae_decoder(1, h, w);
  dec.set_input_nchw("latent", z.data());
  dec.run();
  std::vector<float> out(size_t(3 * 64 * h * w));
  dec.read_output_nchw("image", out.data());
  return out;
}

// 8-bit level of a [-1, 1] value, as the images are written.
int level(float v) {
  return int(std::lround(std::clamp((v + 1.f) / 2.f, 0.f, 1.f) * 255.f));
}

TEST(VaeTiling, TileOriginsCoverTheSideWithTheOverlap) {
  EXPECT_EQ(tile_origins(64, 32, 8), (std::vector<int>{0, 24, 32}));
  EXPECT_EQ(tile_origins(64, 64, 0), (std::vector<int>{0}));
  EXPECT_EQ(tile_origins(100, 32, 8), (std::vector<int>{0, 24, 48, 68}));
  EXPECT_THROW(tile_origins(16, 32, 8), Error);
}

// Mean |tiled - untiled| in 8-bit levels away from the seams (the overlap bands and a 16-pixel
// receptive-field margin around them) for a [4, h, w] latent and tiles of `tile_px`.
double mean_levels_off(PlanCache& plans, const std::vector<float>& z, int h, int w, int tile_px,
                       const std::vector<float>& full) {
  const std::vector<float> tiled = tiled_vae_decode(plans, z, h, w, tile_px);
  EXPECT_EQ(tiled.size(), full.size());
  const std::vector<int> origins = tile_origins(h, tile_px / 8, tile_px / 32);
  auto near_seam = [&](int p) {
    for (size_t i = 1; i < origins.size(); ++i) {
      const int band_start = 8 * origins[i], band_end = 8 * (origins[i - 1] + tile_px / 8);
      if (p >= band_start - 16 && p < band_end + 16) return true;
    }
    return false;
  };
  double sum = 0;
  size_t n = 0;
  const int H = 8 * h, W = 8 * w;
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < H; ++y)
      for (int x = 0; x < W; ++x) {
        if (near_seam(y) || near_seam(x)) continue;
        const size_t i = (size_t(c) * H + size_t(y)) * W + size_t(x);
        sum += std::abs(level(tiled[i]) - level(full[i]));
        ++n;
      }
  EXPECT_GT(n, size_t(0));
  return sum / double(std::max<size_t>(n, 1));
}

TEST(VaeTiling, TiledDecodeOfA512LatentAwayFromTheSeams) {
  PlanCache plans(tiny().model, {});
  const int h = 64, w = 64;
  sampling::TorchGenerator gen(1234);
  const std::vector<float> z = gen.randn(size_t(4 * h * w));
  const std::vector<float> full = untiled_decode(plans, z, h, w);
  // The latent-resolution head (mid-block attention included) runs on the whole latent, the tail
  // in tiles normalised with statistics pooled over a first pass of tiles. On this random-weight
  // VAE: 0.94 levels at 256-px tiles (3 x 3; 6.1 when each tile normalised and attended over
  // itself), 0.59 at 384 (2 x 2; was 2.5), 2.7 at 128 (7 x 7; what remains is the pooled
  // statistics' error and the tiles' edges, 16 latents wide). The issue asks for < 2.
  const double m256 = mean_levels_off(plans, z, h, w, 256, full);
  const double m384 = mean_levels_off(plans, z, h, w, 384, full);
  RecordProperty("mean_levels_256", std::to_string(m256));
  RecordProperty("mean_levels_384", std::to_string(m384));
  std::printf("tiled vs untiled, mean levels away from seams: 256 px %.2f, 384 px %.2f\n", m256,
              m384);
  EXPECT_LT(m256, 2.0);
  EXPECT_LT(m384, 2.0);
  // One head plan of the whole latent and one tail plan per tile size were added.
  EXPECT_EQ(plans.plan_count(), 4u);
}

// The two parts of each network, run one after the other over the whole image, are the network
// (the decoder's bit for bit).
TEST(VaeTiling, HeadThenTailIsTheWholeNetwork) {
  PlanCache plans(tiny().model, {});
  const int h = 24, w = 16;
  sampling::TorchGenerator gen(5);
  const std::vector<float> z = gen.randn(size_t(4 * h * w));
  const std::vector<float> full = untiled_decode(plans, z, h, w);
  cpu::Plan& head = plans.vae_decoder(1, h, w, graph::VaePart::Head);
  head.set_input_nchw("latent", z.data());
  head.run();
  std::vector<float> features(size_t(shape_numel(head.output_shape("features"))));
  head.read_output_nchw("features", features.data());
  cpu::Plan& tail = plans.vae_decoder(1, h, w, graph::VaePart::Tail);
  tail.set_input_nchw("features", features.data());
  tail.run();
  std::vector<float> image(full.size());
  tail.read_output_nchw("image", image.data());
  EXPECT_EQ(image, full);

  std::vector<float> img = full;
  for (float& v : img) v = std::clamp(v, -1.f, 1.f);
  cpu::Plan& enc = plans.vae_encoder(1, h, w);
  enc.set_input_nchw("image", img.data());
  enc.run();
  std::vector<float> mean(z.size()), parts_mean(z.size());
  enc.read_output_nchw("mean", mean.data());
  cpu::Plan& ehead = plans.vae_encoder(1, h, w, graph::VaePart::Head);
  ehead.set_input_nchw("image", img.data());
  ehead.run();
  EXPECT_EQ(ehead.output_shape_nchw("features")[2], h) << "the head ends at latent resolution";
  features.resize(size_t(shape_numel(ehead.output_shape("features"))));
  ehead.read_output_nchw("features", features.data());
  cpu::Plan& etail = plans.vae_encoder(1, h, w, graph::VaePart::Tail);
  etail.set_input_nchw("features", features.data());
  etail.run();
  etail.read_output_nchw("mean", parts_mean.data());
  // Equal up to rounding: the fusions at the cut differ (the features are written out whole), and
  // the mid-block's attention and norms carry that on (1.4e-5 at worst with the AVX2 attention
  // kernel; a wrong cut is off by far more).
  for (size_t i = 0; i < mean.size(); ++i)
    ASSERT_NEAR(parts_mean[i], mean[i], 3e-5 * (1 + std::abs(mean[i]))) << i;
}

// Relative mean |tiled - untiled| of the posterior mean for an [3, 8h, 8w] image.
double encode_rel_diff(PlanCache& plans, const std::vector<float>& img, int h, int w, int tile_px) {
  cpu::Plan& enc = plans.vae_encoder(1, h, w);
  enc.set_input_nchw("image", img.data());
  enc.run();
  std::vector<float> mean(size_t(4 * h * w));
  enc.read_output_nchw("mean", mean.data());
  std::vector<float> tmean, tlogvar;
  tiled_vae_encode(plans, img, h, w, tile_px, tmean, tlogvar);
  EXPECT_EQ(tmean.size(), mean.size());
  EXPECT_EQ(tlogvar.size(), mean.size());
  double diff = 0, scale = 0;
  for (size_t i = 0; i < std::min(mean.size(), tmean.size()); ++i) {
    diff += std::abs(double(tmean[i]) - mean[i]);
    scale += std::abs(double(mean[i]));
  }
  return diff / scale;
}

TEST(VaeTiling, OneTileIsTheUntiledPlanAndEncodeIsClose) {
  PlanCache plans(tiny().model, {});
  const int h = 16, w = 16;
  sampling::TorchGenerator gen(99);
  const std::vector<float> z = gen.randn(size_t(4 * h * w));
  EXPECT_EQ(tiled_vae_decode(plans, z, h, w, 128), untiled_decode(plans, z, h, w));
  // Encode a decoded image, tiled against untiled: the head in tiles with pooled statistics, the
  // tail (mid-block attention included) over the whole latent. Measured: 0.061 with 128-px tiles
  // at 256 x 256 (0.18 when each tile ran the whole encoder over itself), 0.018 with 256-px tiles
  // at 512 x 512 (was 0.10).
  const int eh = 32, ew = 32;
  const std::vector<float> z2 = gen.randn(size_t(4 * eh * ew));
  std::vector<float> img = untiled_decode(plans, z2, eh, ew);
  for (float& v : img) v = std::clamp(v, -1.f, 1.f);
  const double d128 = encode_rel_diff(plans, img, eh, ew, 128);
  RecordProperty("encode_rel_diff_128", std::to_string(d128));
  EXPECT_LT(d128, 0.1);
  std::vector<float> one_mean, one_logvar;
  tiled_vae_encode(plans, img, eh, ew, 256, one_mean, one_logvar);
  cpu::Plan& enc = plans.vae_encoder(1, eh, ew);
  std::vector<float> mean(one_mean.size());
  enc.read_output_nchw("mean", mean.data());  // the plan the one tile ran
  EXPECT_EQ(one_mean, mean);
}

TEST(VaeTiling, BadTileSizesAreRefused) {
  GenerationRequest r;
  r.vae_tiling = true;
  for (int bad : {0, 96, 100, 4096}) {
    r.vae_tile_size = bad;
    try {
      validate(r);
      ADD_FAILURE() << bad;
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("--vae-tile-size"), std::string::npos) << e.what();
    }
  }
  r.vae_tile_size = 256;
  EXPECT_NO_THROW(validate(r));
}

}  // namespace
}  // namespace sdc::pipeline
