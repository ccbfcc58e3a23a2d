// The replay harness for recorded A1111 cases; see a1111_replay.h.
#include "sampling/a1111_replay.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "sampling/a1111_fixture.h"

namespace sdc::test {

Replay::Replay(const std::string& case_name)
    : name_(case_name), info_(sampler_cases()["cases"][case_name]) {
  per_image_ = 1;
  for (const auto& d : info_["latent_shape"]) per_image_ *= d.get<size_t>();
  inputs_ = tensor("denoiser_inputs");
  sigmas_ = tensor("denoiser_sigmas");
  outputs_ = tensor("denoiser_outputs");
  if (info_["tensors"].contains("rng_draws_after_initial"))
    draws_ = tensor("rng_draws_after_initial");
}

std::vector<float> Replay::tensor(const std::string& role) const {
  return sampler_ref(info_["tensors"][role].get<std::string>());
}

void Replay::call(std::span<const float> x, float at, std::span<float> out) {
  if (call_ >= sigmas_.size())
    throw std::runtime_error(name_ + ": more denoiser calls than recorded");
  if (std::fabs(at - sigmas_[call_]) > 1e-6f * std::max(1.0f, std::fabs(sigmas_[call_])))
    ++sigma_mismatches_;
  const float* rec_in = inputs_.data() + call_ * per_image_;
  double max_ref = 0, max_diff = 0;
  for (size_t i = 0; i < per_image_; ++i) {
    max_ref = std::max(max_ref, std::fabs(double(rec_in[i])));
    max_diff = std::max(max_diff, std::fabs(double(x[i]) - double(rec_in[i])));
  }
  worst_input_ = std::max(worst_input_, max_diff / std::max(max_ref, 1e-30));
  std::copy_n(outputs_.data() + call_ * per_image_, per_image_, out.data());
  ++call_;
}

void Replay::draw(std::span<float> out) {
  if ((draw_ + 1) * per_image_ > draws_.size())
    throw std::runtime_error(name_ + ": more RNG draws than recorded");
  std::copy_n(draws_.data() + draw_ * per_image_, per_image_, out.data());
  ++draw_;
}

double rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double max_ref = 0, max_diff = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    max_ref = std::max(max_ref, std::fabs(double(b[i])));
    max_diff = std::max(max_diff, std::fabs(double(a[i]) - double(b[i])));
  }
  return a.size() == b.size() ? max_diff / max_ref : INFINITY;
}

}  // namespace sdc::test
