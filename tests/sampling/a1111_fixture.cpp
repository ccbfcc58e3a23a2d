// Loading of the A1111 sampler references; see a1111_fixture.h.
#include "sampling/a1111_fixture.h"

#include <fstream>

#include "common/fixtures.h"
#include "io/safetensors.h"

namespace sdc::test {
namespace {

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  return nlohmann::json::parse(in);
}

const io::TensorFile& reference_file() {
  static const io::TensorFile f = io::read_safetensors(samplers_dir() + "/reference.safetensors");
  return f;
}

}  // namespace

std::string samplers_dir() {
  return tiny("samplers");
}

const nlohmann::json& sampler_cases() {
  static const nlohmann::json j = read_json(samplers_dir() + "/cases.json");
  return j;
}

const nlohmann::json& sampler_schedules() {
  static const nlohmann::json j = read_json(samplers_dir() + "/schedules.json");
  return j;
}

std::vector<float> sampler_ref(const std::string& key) {
  return reference_file().tensors.get(key).to_f32();
}

std::vector<int64_t> sampler_ref_shape(const std::string& key) {
  const auto& shape = reference_file().tensors.get(key).shape;
  return std::vector<int64_t>(shape.begin(), shape.end());
}

std::vector<float> philox_ref(const std::string& key) {
  static const io::TensorFile f = io::read_safetensors(samplers_dir() + "/philox.safetensors");
  return f.tensors.get(key).to_f32();
}

}  // namespace sdc::test
