// Report formatting.
#include "compare/compare_report.h"

#include <cmath>
#include <cstdio>

namespace sdc::compare {

namespace {

nlohmann::json diff_json(const TensorDiff& d) {
  return {{"max_abs", d.max_abs},
          {"mean_abs", d.mean_abs},
          {"rel_max", d.rel_max},
          {"rel_l2", d.rel_l2},
          {"cosine", d.cosine}};
}

std::string row(const std::string& name, const TensorDiff& d) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "%-18s %10.3e %10.3e %10.3e %10.3e %12.9f\n", name.c_str(),
                d.max_abs, d.mean_abs, d.rel_max, d.rel_l2, d.cosine);
  return buf;
}

}  // namespace

std::string report_text(const CompareReport& r) {
  std::string s = "A: " + r.a + "\nB: " + r.b + "\n";
  char buf[200];
  std::snprintf(buf, sizeof buf, "%-18s %10s %10s %10s %10s %12s\n", "component", "max abs",
                "mean abs", "rel max", "rel L2", "cosine");
  s += buf;
  for (const auto& c : r.components) s += row(c.name, c.diff);
  if (std::isinf(r.image.psnr_db))
    std::snprintf(buf, sizeof buf, "%-18s identical\n", "image");
  else
    std::snprintf(buf, sizeof buf, "%-18s max level %d, mean level %.3f, PSNR %.2f dB\n", "image",
                  r.image.max_level, r.image.mean_level, r.image.psnr_db);
  s += buf;
  s += "first difference: " + (r.first_difference.empty() ? "none" : r.first_difference) + "\n";
  if (!r.layers.empty()) {
    s += "UNet blocks at t=500:\n";
    for (const auto& l : r.layers) s += row("  " + l.block, l.diff);
    if (r.jump_block.empty()) {
      s += "difference jumps at: none\n";
    } else {
      std::snprintf(buf, sizeof buf, "difference jumps at: %s", r.jump_block.c_str());
      s += buf;
      if (r.jump_ratio > 0) {
        std::snprintf(buf, sizeof buf, " (x%.1f the largest before it)", r.jump_ratio);
        s += buf;
      } else {
        s += " (where the difference begins; no later jump)";
      }
      s += "\n";
    }
  }
  return s;
}

nlohmann::json report_json(const CompareReport& r) {
  nlohmann::json j = {{"a", r.a}, {"b", r.b}};
  nlohmann::json comps = nlohmann::json::array();
  for (const auto& c : r.components) {
    nlohmann::json e = diff_json(c.diff);
    e["name"] = c.name;
    comps.push_back(e);
  }
  j["components"] = comps;
  j["image"] = {{"max_level", r.image.max_level},
                {"mean_level", r.image.mean_level},
                {"psnr_db", std::isinf(r.image.psnr_db) ? nlohmann::json(nullptr)
                                                        : nlohmann::json(r.image.psnr_db)},
                {"identical", std::isinf(r.image.psnr_db)}};
  j["first_difference"] =
      r.first_difference.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.first_difference);
  if (!r.layers.empty()) {
    nlohmann::json layers = nlohmann::json::array();
    for (const auto& l : r.layers) {
      nlohmann::json e = diff_json(l.diff);
      e["block"] = l.block;
      layers.push_back(e);
    }
    j["layers"] = layers;
    j["jump"] = r.jump_block.empty()
                    ? nlohmann::json(nullptr)
                    : nlohmann::json{{"block", r.jump_block}, {"ratio", r.jump_ratio}};
  }
  return j;
}

}  // namespace sdc::compare
