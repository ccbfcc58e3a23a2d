// Precision suffixes and loading for `sdc compare`.
#include "compare/model_spec.h"

#include <filesystem>
#include <sstream>
#include <string_view>

#include "common/error.h"
#include "export/onnx_reader.h"

namespace sdc::compare {

cpu::Precision ModelSpec::compute() const {
  if (precision == "bf16") return cpu::Precision::BF16;
  if (precision == "int8") return cpu::Precision::INT8;
  return cpu::Precision::F32;
}

ModelSpec parse_model_spec(const std::string& arg) {
  ModelSpec s;
  s.path = arg;
  const size_t at = arg.rfind('@');
  if (at != std::string::npos && arg.find('/', at) == std::string::npos) {
    const std::string suffix = arg.substr(at + 1);
    constexpr std::string_view kVae = "vae-int8", kPlusVae = "+vae-int8", kDirect = "+direct";
    std::string precision = suffix;
    if (precision.ends_with(kDirect)) {
      precision.resize(precision.size() - kDirect.size());
      s.direct = true;
    }
    if (precision == kVae) {
      precision = "f32";
      s.vae_int8 = true;
    } else if (precision.ends_with(kPlusVae)) {
      precision.resize(precision.size() - kPlusVae.size());
      s.vae_int8 = true;
    }
    if (precision != "f32" && precision != "bf16" && precision != "f16" && precision != "int8")
      throw UsageError(arg, "precision suffix",
                       "@f32, @bf16, @f16 or @int8, optionally +vae-int8 (or @vae-int8 alone), "
                       "then optionally +direct",
                       "@" + suffix);
    s.path = arg.substr(0, at);
    s.precision = precision;
  }
  if (s.path.empty()) throw UsageError(arg, "model", "a model path", "nothing");
  return s;
}

pipeline::ModelBundle load_for_compare(const ModelSpec& spec, const std::string& model_config,
                                       const std::string& taesd) {
  pipeline::ModelBundle b;
  if (exporter::is_onnx_export(spec.path)) {
    // An sdc ONNX export: its weights (as written) and configs, run by sdc's backend.
    model::LoadOptions lo;
    lo.model_config_dir = model_config;
    lo.taesd_path = taesd;
    b.model = model::load_model(exporter::read_onnx_export(spec.path), lo);
    b.name = std::filesystem::path(spec.path).lexically_normal().filename().string();
  } else {
    pipeline::BundleOptions o;
    o.model = spec.path;
    o.model_config = model_config;
    o.taesd = taesd;
    std::ostringstream log;
    b = pipeline::load_bundle(o, log);
  }
  if (spec.precision == "f16") {
    for (auto& [name, t] : b.model.weights.all())
      if (is_float(t.dtype) && t.dtype != DType::F16)
        t = TensorRef::from_f32(t.to_f32(), t.shape, DType::F16, t.source);
  }
  return b;
}

}  // namespace sdc::compare
