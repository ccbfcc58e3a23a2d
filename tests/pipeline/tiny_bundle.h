// Shared by the pipeline tests: the tiny-sd15 fixture model (with its diffusers config) loaded
// once per test program, as sdc generate loads it.
#pragma once

#include <sstream>

#include "common/fixtures.h"
#include "pipeline/model_bundle.h"

namespace sdc::test {

inline const pipeline::ModelBundle& tiny_bundle() {
  static const pipeline::ModelBundle* bundle = [] {
    pipeline::BundleOptions o;
    o.model = tiny("model.safetensors");
    o.model_config = tiny("diffusers");
    std::ostringstream log;
    return new pipeline::ModelBundle(pipeline::load_bundle(o, log));
  }();
  return *bundle;
}

}  // namespace sdc::test
