// Replays a recorded A1111 case without the UNet: the denoiser returns the recorded outputs in
// order (checking that the sampler asked at the recorded sigma/timestep with the recorded input),
// the image RNG returns the recorded draws.
#pragma once

#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sdc::test {

class Replay {
 public:
  explicit Replay(const std::string& case_name);

  const nlohmann::json& info() const { return info_; }
  std::vector<float> tensor(const std::string& role) const;
  size_t per_image() const { return per_image_; }

  // The next recorded call: checks `at` (sigma or timestep) and `x` against the record
  // (relative to max|x| of the record), writes the recorded output.
  void call(std::span<const float> x, float at, std::span<float> out);
  void draw(std::span<float> out);  // the next recorded image-RNG draw after the initial noise

  int calls() const { return int(call_); }
  int expected_calls() const { return int(sigmas_.size()); }
  int draws() const { return int(draw_); }
  int expected_draws() const { return int(draws_.size() / per_image_); }
  double worst_input_error() const { return worst_input_; }
  int sigma_mismatches() const { return sigma_mismatches_; }

 private:
  std::string name_;
  nlohmann::json info_;
  size_t per_image_ = 0;
  std::vector<float> inputs_, sigmas_, outputs_, draws_;
  size_t call_ = 0, draw_ = 0;
  double worst_input_ = 0;
  int sigma_mismatches_ = 0;
};

// max|a - b| / max|b|
double rel_diff(const std::vector<float>& a, const std::vector<float>& b);

}  // namespace sdc::test
