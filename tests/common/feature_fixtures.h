// The feature fixture groups beside tiny-sd15's own cases (tiny-sd15/<group>/: inpaint, taesd,
// textual_inversion, variation_seeds): each has a cases.json and a reference.safetensors.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/tensor_file.h"

namespace sdc::test {

struct FeatureGroup {
  std::string dir;  // .../tiny-sd15/<group>
  nlohmann::json cases;
  io::TensorFile reference;

  std::string path(const std::string& rel) const { return dir + "/" + rel; }
  const nlohmann::json& find_case(const std::string& id) const;  // "<group>/<name>"
  std::vector<float> f32(const std::string& tensor_name) const;
  Shape shape(const std::string& tensor_name) const;
};

// Loaded once per group and kept for the whole test binary.
const FeatureGroup& feature_group(const std::string& group);

class TempDir;
// --model-config for inpaint/model-inpaint-fp16.safetensors, made in `dir`: the fixture's text
// encoder and VAE configs with the 9-channel inpainting UNet's.
std::string inpaint_model_config(const TempDir& dir);

}  // namespace sdc::test
