// The sampler loop against an independent double-precision oracle with a synthetic denoiser (no
// UNet): DDIM as an Euler step in sigma space, LCM from its formulas, the Euler family and
// DPM++ 2M as k-diffusion writes them (in sigma space, not diffusers' variance-preserving one).
// Also: the order and count of generator draws (checked against the fixture's recorded draws for
// lcm and euler_a), the timesteps handed to the model, img2img starts, and bad inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/fixtures.h"
#include "sampling/noise_schedule.h"
#include "sampling/sampler.h"

namespace sdc::sampling {
namespace {

using Vec = std::vector<double>;

// Deterministic stand-in for the UNet: depends on the input, the timestep and the position.
double synthetic_eps(double x_in, double t, size_t i) {
  return 0.4 * x_in + 1e-3 * t + 0.05 * std::sin(0.37 * double(i));
}

Denoiser synthetic_denoiser(std::vector<float>* seen_timesteps = nullptr) {
  return [seen_timesteps](std::span<const float> x_in, float t, std::span<float> eps) {
    if (seen_timesteps) seen_timesteps->push_back(t);
    for (size_t i = 0; i < x_in.size(); ++i) eps[i] = float(synthetic_eps(x_in[i], t, i));
  };
}

Vec to_double(const std::vector<float>& v) {
  return Vec(v.begin(), v.end());
}

// Source of the oracle's noise: a list of draws, in order.
struct NoiseQueue {
  std::vector<std::vector<float>> draws;
  size_t next = 0;
  Vec pop() {
    if (next >= draws.size()) throw std::runtime_error("oracle ran out of noise draws");
    return to_double(draws[next++]);
  }
};

struct OracleResult {
  std::vector<Vec> after_step;  // in the sampler's latent space, for comparison
};

double ac(int t) {
  return NoiseSchedule::sd15().alphas_cumprod(t);
}

// Runs the oracle from `x` (already the start latents, in the sampler's space) over steps
// first..steps-1 of `s`.
OracleResult oracle_run(const Schedule& s, Vec x, int first, NoiseQueue& noise) {
  OracleResult r;
  const size_t n = x.size();
  auto eps_at = [&](const Vec& model_in, double t) {
    Vec e(n);
    for (size_t i = 0; i < n; ++i) e[i] = synthetic_eps(model_in[i], t, i);
    return e;
  };
  switch (s.sampler) {
    case SamplerKind::kDdim:
      // DDIM (eta 0) = Euler in sigma space: x/sqrt(a) moves by (sigma_prev - sigma) * eps.
      for (int i = first; i < s.steps; ++i) {
        const int t = int(s.timesteps[i]);
        const int tp = t - 1000 / s.steps;
        const double a = ac(t), ap = ac(tp >= 0 ? tp : 0);
        const Vec e = eps_at(x, t);
        const double sig = std::sqrt((1 - a) / a), sig_p = std::sqrt((1 - ap) / ap);
        for (size_t k = 0; k < n; ++k)
          x[k] = (x[k] / std::sqrt(a) + (sig_p - sig) * e[k]) * std::sqrt(ap);
        r.after_step.push_back(x);
      }
      break;
    case SamplerKind::kLcm:
      for (int i = first; i < s.steps; ++i) {
        const int t = int(s.timesteps[i]);
        const double a = ac(t);
        const Vec e = eps_at(x, t);
        const double st = 10.0 * t;
        const double c_skip = 0.25 / (st * st + 0.25), c_out = st / std::sqrt(st * st + 0.25);
        Vec den(n);
        for (size_t k = 0; k < n; ++k)
          den[k] = c_out * (x[k] - std::sqrt(1 - a) * e[k]) / std::sqrt(a) + c_skip * x[k];
        if (i + 1 < s.steps) {
          const double an = ac(int(s.timesteps[i + 1]));
          const Vec z = noise.pop();
          for (size_t k = 0; k < n; ++k) x[k] = std::sqrt(an) * den[k] + std::sqrt(1 - an) * z[k];
        } else {
          x = den;
        }
        r.after_step.push_back(x);
      }
      break;
    case SamplerKind::kEuler:
    case SamplerKind::kEulerA:
      for (int i = first; i < s.steps; ++i) {
        const double sig = s.sigmas[i], sn = s.sigmas[i + 1];
        Vec in(n);
        for (size_t k = 0; k < n; ++k) in[k] = x[k] / std::sqrt(sig * sig + 1);
        const Vec e = eps_at(in, s.timesteps[i]);
        double down = sn, up = 0;
        if (s.sampler == SamplerKind::kEulerA) {  // k-diffusion get_ancestral_step, eta 1
          up = std::min(sn, std::sqrt(sn * sn * (sig * sig - sn * sn) / (sig * sig)));
          down = std::sqrt(sn * sn - up * up);
        }
        const Vec z = s.sampler == SamplerKind::kEulerA ? noise.pop() : Vec(n, 0.0);
        for (size_t k = 0; k < n; ++k) {
          const double denoised = x[k] - sig * e[k];
          x[k] = x[k] + (x[k] - denoised) / sig * (down - sig) + z[k] * up;
        }
        r.after_step.push_back(x);
      }
      break;
    case SamplerKind::kDpmpp2m: {
      // k-diffusion sample_dpmpp_2m on x_ve = x_vp * sqrt(sigma^2 + 1).
      const double s0 = s.sigmas[first];
      for (double& v : x) v *= std::sqrt(s0 * s0 + 1);
      Vec old;
      for (int i = first; i < s.steps; ++i) {
        const double sig = s.sigmas[i], sn = s.sigmas[i + 1];
        Vec in(n);
        for (size_t k = 0; k < n; ++k) in[k] = x[k] / std::sqrt(sig * sig + 1);
        const Vec e = eps_at(in, s.timesteps[i]);
        Vec den(n);
        for (size_t k = 0; k < n; ++k) den[k] = x[k] - sig * e[k];
        const double t = -std::log(sig), t_next = -std::log(sn), h = t_next - t;
        Vec d = den;
        if (!old.empty() && sn != 0) {
          const double h_last = t - (-std::log(double(s.sigmas[i - 1])));
          const double r2 = 2 * h_last / h;
          for (size_t k = 0; k < n; ++k) d[k] = (1 + 1 / r2) * den[k] - (1 / r2) * old[k];
        }
        for (size_t k = 0; k < n; ++k) x[k] = (sn / sig) * x[k] - std::expm1(-h) * d[k];
        old = den;
        Vec vp = x;
        for (double& v : vp) v /= std::sqrt(sn * sn + 1);
        r.after_step.push_back(vp);
      }
      break;
    }
  }
  return r;
}

// Start latents of img2img, written from the semantics (not from the sampler's code).
Vec oracle_img2img_start(const Schedule& s, int first, const Vec& init, const Vec& z) {
  Vec x(init.size());
  if (s.sampler == SamplerKind::kDdim || s.sampler == SamplerKind::kLcm) {
    const double a = ac(int(s.timesteps[first]));
    for (size_t k = 0; k < x.size(); ++k) x[k] = std::sqrt(a) * init[k] + std::sqrt(1 - a) * z[k];
  } else {
    const double sig = s.sigmas[first];
    for (size_t k = 0; k < x.size(); ++k) x[k] = init[k] + z[k] * sig;
    if (s.sampler == SamplerKind::kDpmpp2m)  // the oracle's DPM works on x_ve: hand it x_vp
      for (double& v : x) v /= std::sqrt(sig * sig + 1);
  }
  return x;
}

double rel_diff(const std::vector<float>& got, const Vec& ref) {
  double m = 0, d = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    m = std::max(m, std::fabs(ref[i]));
    d = std::max(d, std::fabs(double(got[i]) - ref[i]));
  }
  return d / m;
}

int draws_during_run(SamplerKind k, int steps, int first) {
  if (k == SamplerKind::kLcm) return steps - 1 - first;
  if (k == SamplerKind::kEulerA) return steps - first;
  return 0;
}

struct Combo {
  SamplerKind sampler;
  ScheduleKind schedule;
  int steps;
};

std::string combo_name(const Combo& c) {
  return std::string(sampler_name(c.sampler)) + "/" + schedule_name(c.schedule) + "/" +
         std::to_string(c.steps);
}

const std::vector<Combo>& combos() {
  static const std::vector<Combo> v = {
      {SamplerKind::kDdim, ScheduleKind::kDefault, 7},
      {SamplerKind::kLcm, ScheduleKind::kDefault, 4},
      {SamplerKind::kLcm, ScheduleKind::kDefault, 9},
      {SamplerKind::kEuler, ScheduleKind::kDefault, 8},
      {SamplerKind::kEuler, ScheduleKind::kKarras, 8},
      {SamplerKind::kEulerA, ScheduleKind::kDefault, 8},
      {SamplerKind::kEulerA, ScheduleKind::kKarras, 5},
      {SamplerKind::kDpmpp2m, ScheduleKind::kDefault, 6},
      {SamplerKind::kDpmpp2m, ScheduleKind::kKarras, 8},
      {SamplerKind::kDpmpp2m, ScheduleKind::kKarras, 20},  // >= 15 steps: lower_order_final off
  };
  return v;
}

constexpr size_t kLatents = 4 * 5 * 7;  // not a multiple of 16: the draws' tail path too
constexpr double kTol = 2e-5;           // float32 sampler vs double oracle

TEST(Sampler, Txt2ImgMatchesOracleStepByStep) {
  for (const Combo& c : combos()) {
    SCOPED_TRACE(combo_name(c));
    const SamplerSettings settings{c.sampler, c.schedule, c.steps};
    TorchGenerator g(2024);
    const std::vector<float> noise = g.randn(kLatents);
    std::vector<std::vector<float>> got_steps;
    std::vector<float> seen_t;
    const std::vector<float> out =
        run_sampler(settings, noise, synthetic_denoiser(&seen_t), g, [&](const StepProgress& p) {
          EXPECT_EQ(p.step, int(got_steps.size()) + 1);
          EXPECT_EQ(p.total, c.steps);
          EXPECT_EQ(p.schedule_index, p.step - 1);
          got_steps.emplace_back(p.latents.begin(), p.latents.end());
        });

    // Oracle: its own generator with the same seed, drawing in the documented order.
    const Schedule s = make_schedule(c.sampler, c.schedule, c.steps);
    TorchGenerator og(2024);
    NoiseQueue q;
    Vec x = to_double(og.randn(kLatents));
    for (double& v : x) v *= s.init_noise_sigma;
    for (int k = 0; k < draws_during_run(c.sampler, c.steps, 0); ++k)
      q.draws.push_back(og.randn(kLatents));
    const OracleResult ref = oracle_run(s, x, 0, q);
    EXPECT_EQ(q.next, q.draws.size());

    ASSERT_EQ(got_steps.size(), ref.after_step.size());
    for (size_t i = 0; i < got_steps.size(); ++i)
      EXPECT_LE(rel_diff(got_steps[i], ref.after_step[i]), kTol) << "step " << i;
    EXPECT_EQ(out, got_steps.back());
    EXPECT_EQ(seen_t, s.timesteps);
    // The sampler drew exactly as many values as the oracle.
    EXPECT_EQ(g.random(), og.random());
  }
}

TEST(Sampler, Img2ImgMatchesOracle) {
  for (const Combo& c : combos()) {
    for (double strength : {0.55, 1.0}) {
      SCOPED_TRACE(combo_name(c) + " strength " + std::to_string(strength));
      const SamplerSettings settings{c.sampler, c.schedule, c.steps, strength};
      TorchGenerator g(99);
      const std::vector<float> init = g.randn(kLatents);  // stands in for the encoded image
      const std::vector<float> noise = g.randn(kLatents);
      std::vector<float> seen_t;
      int calls = 0;
      const std::vector<float> out =
          run_sampler_img2img(settings, init, noise, synthetic_denoiser(&seen_t), g,
                              [&](const StepProgress& p) { EXPECT_EQ(p.step, ++calls); });

      const Schedule s = make_schedule(c.sampler, c.schedule, c.steps);
      const int first = img2img_first_step(c.sampler, c.steps, strength);
      TorchGenerator og(99);
      const Vec init_d = to_double(og.randn(kLatents)), z = to_double(og.randn(kLatents));
      NoiseQueue q;
      for (int k = 0; k < draws_during_run(c.sampler, c.steps, first); ++k)
        q.draws.push_back(og.randn(kLatents));
      const OracleResult ref = oracle_run(s, oracle_img2img_start(s, first, init_d, z), first, q);
      ASSERT_EQ(size_t(calls), ref.after_step.size());
      EXPECT_LE(rel_diff(out, ref.after_step.back()), kTol);
      EXPECT_EQ(seen_t, std::vector<float>(s.timesteps.begin() + first, s.timesteps.end()));
      EXPECT_EQ(g.random(), og.random());
    }
  }
}

// The sampler's own draws are the ones diffusers recorded, in the same order: run the oracle on
// the fixture's tensors and the sampler on a generator seeded like the case.
TEST(Sampler, DrawOrderMatchesFixtureRecordings) {
  struct FixtureCase {
    const char* id;
    SamplerKind kind;
  };
  for (const FixtureCase fc : {FixtureCase{"pipeline/txt2img_lcm_lora", SamplerKind::kLcm},
                               FixtureCase{"pipeline/txt2img_euler_a", SamplerKind::kEulerA}}) {
    SCOPED_TRACE(fc.id);
    const auto& c = test::find_case(fc.id);
    const int steps = c["num_inference_steps"].get<int>();
    NoiseQueue q;
    for (const auto& d : c["randn_draws"]) q.draws.push_back(test::ref_f32(d["tensor"]));
    ASSERT_EQ(q.draws.size(), size_t(1 + draws_during_run(fc.kind, steps, 0)));
    const Schedule s = make_schedule(fc.kind, ScheduleKind::kDefault, steps);
    Vec x = q.pop();
    for (double& v : x) v *= s.init_noise_sigma;
    const OracleResult ref = oracle_run(s, x, 0, q);

    TorchGenerator g(c["seed"].get<uint64_t>());
    const std::vector<float> noise =
        g.randn(c["randn_draws"][0]["shape"].get<std::vector<int64_t>>());
    const std::vector<float> out =
        run_sampler({fc.kind, ScheduleKind::kDefault, steps}, noise, synthetic_denoiser(), g);
    EXPECT_LE(rel_diff(out, ref.after_step.back()), kTol);
  }
}

// Per-image generators (A1111 batches): a batch of two equals two single-image runs.
TEST(Sampler, PerImageNoiseMakesBatchesEqualSingleRuns) {
  constexpr size_t kImage = 4 * 3 * 3;  // 36: also exercises the tail path per image
  auto denoiser = [](std::span<const float> x_in, float t, std::span<float> eps) {
    for (size_t i = 0; i < x_in.size(); ++i) eps[i] = float(synthetic_eps(x_in[i], t, i % kImage));
  };
  for (SamplerKind kind : {SamplerKind::kEulerA, SamplerKind::kLcm}) {
    SCOPED_TRACE(sampler_name(kind));
    const Sampler sampler({kind, ScheduleKind::kDefault, 6});
    std::vector<TorchGenerator> gens{TorchGenerator(10), TorchGenerator(11)};
    std::vector<float> batch = gens[0].randn(kImage);
    const std::vector<float> second = gens[1].randn(kImage);
    batch.insert(batch.end(), second.begin(), second.end());
    const std::vector<float> out =
        sampler.run(sampler.txt2img_latents(batch), 0, denoiser, noise_per_image(gens));
    for (int b = 0; b < 2; ++b) {
      TorchGenerator g(10 + b);
      const std::vector<float> single =
          sampler.run(sampler.txt2img_latents(g.randn(kImage)), 0, denoiser, g);
      EXPECT_EQ(single,
                std::vector<float>(out.begin() + b * kImage, out.begin() + (b + 1) * kImage));
      EXPECT_EQ(g.random(), gens[b].random());
    }
  }
}

TEST(Sampler, Txt2ImgLatentsScaleByInitNoiseSigma) {
  const Sampler euler({SamplerKind::kEuler, ScheduleKind::kDefault, 8});
  const std::vector<float> x = euler.txt2img_latents({1.0f, -2.0f});
  EXPECT_EQ(x, (std::vector<float>{euler.schedule().init_noise_sigma,
                                   -2.0f * euler.schedule().init_noise_sigma}));
  EXPECT_GT(euler.schedule().init_noise_sigma, 7.0f);
  const Sampler ddim({SamplerKind::kDdim, ScheduleKind::kDefault, 8});
  EXPECT_EQ(ddim.txt2img_latents({1.5f}), std::vector<float>{1.5f});
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(Sampler, RejectsBadInputs) {
  const Sampler s({SamplerKind::kDdim, ScheduleKind::kDefault, 10, 0.5});
  TorchGenerator g(1);
  const std::vector<float> four(4, 0.0f), three(3, 0.0f);
  EXPECT_EQ(error_of([&] { s.img2img_latents(four, three); }),
            "img2img noise: expected 4 values (as the latents), found 3");
  EXPECT_EQ(error_of([&] { s.run(four, 10, synthetic_denoiser(), g); }),
            "sampler first step: expected 0 to 9, found 10");
  EXPECT_EQ(error_of([&] { s.run({}, 0, synthetic_denoiser(), g); }),
            "sampler latents: expected at least one value, found none");
  EXPECT_EQ(error_of([] {
              Sampler({SamplerKind::kLcm, ScheduleKind::kKarras, 4});
            }),
            "--scheduler: expected default for the lcm sampler (karras applies to euler, "
            "euler_a, dpmpp_2m), found karras");
}

TEST(Sampler, CallbackMayCancel) {
  TorchGenerator g(3);
  int calls = 0;
  struct Cancelled {};
  EXPECT_THROW(run_sampler({SamplerKind::kEulerA, ScheduleKind::kDefault, 10}, g.randn(64),
                           synthetic_denoiser(), g,
                           [&](const StepProgress& p) {
                             ++calls;
                             if (p.step == 3) throw Cancelled{};
                           }),
               Cancelled);
  EXPECT_EQ(calls, 3);
}

}  // namespace
}  // namespace sdc::sampling
