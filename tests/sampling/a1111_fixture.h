// Test access to the A1111 sampler references (tiny-sd15/samplers): cases.json, schedules.json
// and the float32 tensors of reference.safetensors / philox.safetensors.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sdc::test {

std::string samplers_dir();                 // .../tiny-sd15/samplers
const nlohmann::json& sampler_cases();      // cases.json ("cases" is an object by case name)
const nlohmann::json& sampler_schedules();  // schedules.json
std::vector<float> sampler_ref(const std::string& key);  // reference.safetensors
std::vector<float> philox_ref(const std::string& key);   // philox.safetensors
std::vector<int64_t> sampler_ref_shape(const std::string& key);

}  // namespace sdc::test
