// Precision suffixes and loading for `sdc compare`.
#include "compare/model_spec.h"

#include <filesystem>
#include <sstream>

#include "common/error.h"

namespace sdc::compare {

cpu::Precision ModelSpec::compute() const {
  return precision == "bf16" ? cpu::Precision::BF16 : cpu::Precision::F32;
}

ModelSpec parse_model_spec(const std::string& arg) {
  ModelSpec s;
  s.path = arg;
  const size_t at = arg.rfind('@');
  if (at != std::string::npos && arg.find('/', at) == std::string::npos) {
    const std::string suffix = arg.substr(at + 1);
    if (suffix != "f32" && suffix != "bf16" && suffix != "f16")
      throw UsageError(arg, "precision suffix", "@f32, @bf16 or @f16", "@" + suffix);
    s.path = arg.substr(0, at);
    s.precision = suffix;
  }
  if (s.path.empty()) throw UsageError(arg, "model", "a model path", "nothing");
  std::error_code ec;
  if (std::filesystem::is_regular_file(std::filesystem::path(s.path) / "model.json", ec))
    throw UsageError(s.path, "model",
                     "a checkpoint, diffusers folder or .gguf (ONNX export folders are checked "
                     "with ONNX Runtime: see the README's ONNX section)",
                     "an ONNX export folder");
  return s;
}

pipeline::ModelBundle load_for_compare(const ModelSpec& spec, const std::string& model_config) {
  pipeline::BundleOptions o;
  o.model = spec.path;
  o.model_config = model_config;
  std::ostringstream log;
  pipeline::ModelBundle b = pipeline::load_bundle(o, log);
  if (spec.precision == "f16") {
    for (auto& [name, t] : b.model.weights.all())
      if (is_float(t.dtype) && t.dtype != DType::F16)
        t = TensorRef::from_f32(t.to_f32(), t.shape, DType::F16, t.source);
  }
  return b;
}

}  // namespace sdc::compare
