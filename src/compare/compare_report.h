// A CompareReport as aligned text (one row per component, then the UNet blocks) or as JSON.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "compare/model_compare.h"

namespace sdc::compare {

std::string report_text(const CompareReport& r);
nlohmann::json report_json(const CompareReport& r);

}  // namespace sdc::compare
