// DDIM and PLMS cases of the A1111 references replayed without the UNet (recorded eps in),
// and the timestep lists of schedules.json.
#include <gtest/gtest.h>

#include "common/error.h"
#include "sampling/a1111_fixture.h"
#include "sampling/a1111_replay.h"
#include "sampling/timestep_samplers.h"
#include "sampling/unipc.h"

namespace sdc::sampling {
namespace {

TEST(TimestepSamplers, TimestepListsMatchA1111) {
  for (const auto& [name, entry] : test::sampler_schedules()["timestep_samplers"].items())
    for (const auto& [steps, ts] : entry["timesteps"].items())
      EXPECT_EQ(a1111_timesteps(std::stoi(steps)), ts.get<std::vector<int>>()) << name << steps;
  EXPECT_EQ(a1111_timesteps(11).size(), 12u);  // 1000 // 11 = 90: one more than asked
  EXPECT_THROW(a1111_timesteps(0), UsageError);
}

void replay(const std::string& name, TimestepSampler sampler) {
  SCOPED_TRACE(name);
  test::Replay r(name);
  std::vector<int> ts;
  for (float t : r.tensor("timesteps")) ts.push_back(int(t));
  const std::vector<float> noise = r.tensor("initial_noise");
  std::vector<float> x = noise;
  if (r.info()["mode"] != "txt2img") {
    // img2img: noised to timesteps[t_enc], A1111's list is the full one (the record holds the
    // sliced one): the next timestep up.
    const std::vector<int> full = a1111_timesteps(r.info()["steps"].get<int>());
    x = timestep_img2img_start(r.tensor("init_latent"), noise, full[ts.size()]);
  }
  TimestepSamplerContext ctx;
  ctx.eps = [&](std::span<const float> in, float t, std::span<float> eps, std::span<float>) {
    r.call(in, t, eps);
  };
  ctx.randn = [&](std::span<float> out) { r.draw(out); };
  const std::vector<float> out = run_timestep_sampler(sampler, x, ts, ctx, 0.0);
  EXPECT_EQ(r.calls(), r.expected_calls());
  EXPECT_EQ(r.draws(), r.expected_draws());
  EXPECT_EQ(r.sigma_mismatches(), 0);
  EXPECT_EQ(r.worst_input_error(), 0.0);
  EXPECT_EQ(test::rel_diff(out, r.tensor("latents")), 0.0);
}

TEST(TimestepSamplers, DdimAndPlmsReplayBitExact) {
  replay("ddim", TimestepSampler::kDdim);
  replay("img2img_ddim", TimestepSampler::kDdim);
  replay("plms", TimestepSampler::kPlms);
}

}  // namespace
}  // namespace sdc::sampling

namespace sdc::sampling {
namespace {

TEST(UniPc, TimeGridMatchesA1111) {
  for (const auto& [steps, grid] :
       test::sampler_schedules()["timestep_samplers"]["UniPC"]["unipc_time_grid"].items()) {
    const std::vector<float> t = unipc_time_grid(grid["N"].get<int>());
    std::vector<float> want;
    for (const auto& v : grid["t_continuous"]) want.push_back(v.get<float>());
    EXPECT_EQ(t, want) << steps;
  }
}

TEST(UniPc, ReplaysTheRecordedCase) {
  test::Replay r("unipc");
  TimestepSamplerContext ctx;
  ctx.eps = [&](std::span<const float> in, float t, std::span<float> eps, std::span<float>) {
    r.call(in, t, eps);
  };
  const std::vector<float> out =
      run_unipc(r.tensor("initial_noise"), int(r.tensor("timesteps").size()), {}, ctx);
  EXPECT_EQ(r.calls(), r.expected_calls());
  EXPECT_EQ(r.sigma_mismatches(), 0);
  EXPECT_LE(r.worst_input_error(), 1e-6);
  EXPECT_LE(test::rel_diff(out, r.tensor("latents")), 1e-6);
  EXPECT_THROW(run_unipc(r.tensor("initial_noise"), 2, {}, ctx), UsageError);
}

}  // namespace
}  // namespace sdc::sampling
