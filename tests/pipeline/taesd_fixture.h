// Shared by the TAESD tests: the tiny-sd15/taesd feature group, its network tolerance, and a model
// holding nothing but a TAESD loaded through --taesd's entry point.
#pragma once

#include <string>

#include "common/feature_fixtures.h"
#include "model/model_loader.h"
#include "model/taesd_file.h"

namespace sdc::test {

inline const FeatureGroup& taesd_group() {
  return feature_group("taesd");
}

inline constexpr double kTaesdNetworkTol = 1e-4;  // README: TAESD decoder / encoder output, fp32

inline model::LoadedModel taesd_only(const std::string& path) {
  model::LoadedModel m;
  m.source = path;
  model::load_taesd(path, m.weights, "--taesd");
  m.taesd = model::taesd_parts(m.weights);
  return m;
}

}  // namespace sdc::test
