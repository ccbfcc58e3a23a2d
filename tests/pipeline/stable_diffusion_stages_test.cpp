// The staged pipeline's control surface on the tiny model: progress events in stage order with
// step counts and an ETA, previews when asked, Interrupt/Skip returning the partial result decoded
// from the latents reached, Cancel throwing, in-memory init images equal to the file path, and the
// plans' NCHW input/output helpers.
#include <gtest/gtest.h>

#include "common/error.h"
#include "common/fixtures.h"
#include "io/image.h"
#include "pipeline/latent_preview.h"
#include "pipeline/model_bundle.h"
#include "pipeline/stable_diffusion.h"
#include "pipeline/tiny_bundle.h"

namespace sdc::pipeline {
namespace {

GenerationRequest small_request() {
  GenerationRequest r;
  r.prompt = "a red cube";
  r.width = r.height = 64;
  r.steps = 6;
  r.cfg_scale = 5;
  r.sampler = "euler_a";
  r.seed = 7;
  return r;
}

struct Pipeline : ::testing::Test {
  const ModelBundle* bundle = &test::tiny_bundle();
  StableDiffusion sd{bundle->model, {}, bundle->tokenizer(), bundle->name};
};

TEST_F(Pipeline, ReportsStagesInOrderWithStepsAndPreviews) {
  std::vector<ProgressEvent> events;
  int previews = 0;
  GenerationObserver obs;
  obs.preview_every = 2;
  obs.on_progress = [&](const ProgressEvent& e) {
    events.push_back(e);
    if (e.preview) {
      ++previews;
      EXPECT_EQ(e.preview->width, 8);
      EXPECT_EQ(e.preview->height, 8);
    }
  };
  const BatchResult r = sd.generate_batch(small_request(), 7, obs);
  ASSERT_EQ(r.images.size(), 1u);
  EXPECT_FALSE(r.interrupted);
  EXPECT_EQ(r.steps_done, 6);
  std::vector<GenerationStage> order;
  for (const auto& e : events)
    if (order.empty() || order.back() != e.stage) order.push_back(e.stage);
  const std::vector<GenerationStage> expected = {
      GenerationStage::Preparing, GenerationStage::EncodingText, GenerationStage::InitialLatents,
      GenerationStage::Denoising, GenerationStage::Decoding,     GenerationStage::Done};
  EXPECT_EQ(order, expected);
  int last_step = 0;
  for (const auto& e : events) {
    if (e.stage != GenerationStage::Denoising) continue;
    EXPECT_EQ(e.total_steps, 6);
    EXPECT_GE(e.step, last_step);
    last_step = e.step;
    if (e.step > 0) {
      EXPECT_GE(e.eta_s, 0.0);
    }
  }
  EXPECT_EQ(last_step, 6);
  EXPECT_EQ(previews, 3);  // steps 2, 4, 6
}

TEST_F(Pipeline, InterruptDecodesTheLatentsReachedSoFar) {
  StopToken stop;
  GenerationObserver obs;
  obs.stop = &stop;
  std::vector<float> at_step_2;
  obs.on_progress = [&](const ProgressEvent& e) {
    if (e.stage == GenerationStage::Denoising && e.step == 2) stop.request(StopRequest::Interrupt);
  };
  const BatchResult r = sd.generate_batch(small_request(), 7, obs);
  EXPECT_TRUE(r.interrupted);
  EXPECT_EQ(r.steps_done, 2);
  EXPECT_EQ(r.timings.unet_steps, 2);  // no UNet call after the request
  ASSERT_EQ(r.images.size(), 1u);
  EXPECT_EQ(r.images[0].image.width, 64);

  // The same request run to step 2 by asking for 6 steps and stopping equals stopping by Skip.
  StopToken skip;
  GenerationObserver obs2;
  obs2.stop = &skip;
  obs2.on_progress = [&](const ProgressEvent& e) {
    if (e.stage == GenerationStage::Denoising && e.step == 2) skip.request(StopRequest::Skip);
  };
  const BatchResult s = sd.generate_batch(small_request(), 7, obs2);
  EXPECT_EQ(s.latents, r.latents);
  EXPECT_EQ(s.images[0].image.rgb, r.images[0].image.rgb);
}

TEST_F(Pipeline, CancelThrowsAndStopsBeforeTheNextStep) {
  StopToken stop;
  GenerationObserver obs;
  obs.stop = &stop;
  int steps_seen = 0;
  obs.on_progress = [&](const ProgressEvent& e) {
    if (e.stage == GenerationStage::Denoising && e.step > 0) {
      ++steps_seen;
      stop.request(StopRequest::Cancel);
    }
  };
  EXPECT_THROW(sd.generate_batch(small_request(), 7, obs), GenerationCancelled);
  EXPECT_EQ(steps_seen, 1);
}

TEST_F(Pipeline, CancelBeforeStartThrowsWithoutRunningANetwork) {
  StopToken stop;
  stop.request(StopRequest::Cancel);
  GenerationObserver obs;
  obs.stop = &stop;
  bool denoising = false;
  obs.on_progress = [&](const ProgressEvent& e) {
    denoising |= e.stage == GenerationStage::Denoising;
  };
  EXPECT_THROW(sd.generate_batch(small_request(), 7, obs), GenerationCancelled);
  EXPECT_FALSE(denoising);
}

TEST(StopTokenTest, StrongerRequestsWinAndSkipClears) {
  StopToken t;
  EXPECT_FALSE(t.stop_sampling());
  t.request(StopRequest::Skip);
  EXPECT_TRUE(t.stop_sampling());
  EXPECT_FALSE(t.cancelled());
  t.clear_skip();
  EXPECT_FALSE(t.stop_sampling());
  t.request(StopRequest::Cancel);
  t.request(StopRequest::Interrupt);  // never downgrades
  EXPECT_TRUE(t.cancelled());
  t.clear_skip();
  EXPECT_TRUE(t.cancelled());
}

TEST_F(Pipeline, InMemoryInitImageEqualsTheFile) {
  test::TempDir dir;
  io::Image img(64, 64);
  for (size_t i = 0; i < img.rgb.size(); ++i) img.rgb[i] = uint8_t((i * 37) % 251);
  io::write_png(dir.file("init.png"), img);
  GenerationRequest by_path = small_request();
  by_path.init_image = dir.file("init.png");
  by_path.strength = 0.5;
  GenerationRequest by_data = small_request();
  by_data.init_image_data = img;
  by_data.strength = 0.5;
  const BatchResult a = sd.generate_batch(by_path, 7);
  const BatchResult b = sd.generate_batch(by_data, 7);
  EXPECT_EQ(a.latents, b.latents);
  EXPECT_EQ(a.images[0].image.rgb, b.images[0].image.rgb);
  EXPECT_LT(a.timings.unet_steps, 6);  // img2img at 0.5 runs part of the schedule
}

TEST(LatentPreview, MapsChannelsLinearlyAndChecksTheSize) {
  std::vector<float> lat(4 * 2 * 3, 0.0f);
  const io::Image zero = preview_latents(lat, 2, 3);
  EXPECT_EQ(zero.width, 3);
  EXPECT_EQ(zero.height, 2);
  for (uint8_t v : zero.rgb) EXPECT_EQ(v, 128);       // 0 -> mid grey
  for (int i = 0; i < 6; ++i) lat[size_t(i)] = 3.0f;  // channel 0 strongly positive: bright
  const io::Image bright = preview_latents(lat, 2, 3);
  for (uint8_t v : bright.rgb) EXPECT_GT(v, 200);
  EXPECT_THROW(preview_latents(std::span<const float>(lat.data(), 5), 2, 3), Error);
}

}  // namespace
}  // namespace sdc::pipeline
