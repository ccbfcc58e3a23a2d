// Loading of the feature fixture groups.
#include "common/feature_fixtures.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <stdexcept>

#include "common/fixtures.h"
#include "io/safetensors.h"

namespace sdc::test {

const nlohmann::json& FeatureGroup::find_case(const std::string& id) const {
  for (const auto& c : cases["cases"])
    if (c["id"] == id) return c;
  throw std::runtime_error("no case " + id + " in " + dir + "/cases.json");
}

std::vector<float> FeatureGroup::f32(const std::string& name) const {
  return reference.tensors.get(name).to_f32();
}

Shape FeatureGroup::shape(const std::string& name) const {
  return reference.tensors.get(name).shape;
}

const FeatureGroup& feature_group(const std::string& group) {
  static std::map<std::string, std::unique_ptr<FeatureGroup>> loaded;
  auto& slot = loaded[group];
  if (!slot) {
    auto g = std::make_unique<FeatureGroup>();
    g->dir = tiny(group);
    std::ifstream in(g->dir + "/cases.json");
    if (!in) throw std::runtime_error("cannot open " + g->dir + "/cases.json (set SDC_FIXTURES)");
    g->cases = nlohmann::json::parse(in);
    g->reference = io::read_safetensors(g->dir + "/reference.safetensors");
    slot = std::move(g);
  }
  return *slot;
}

std::string inpaint_model_config(const TempDir& dir) {
  namespace fs = std::filesystem;
  const std::string cfg = dir.file("config");
  for (const std::string c : {"text_encoder", "vae"}) {
    fs::create_directories(cfg + "/" + c);
    fs::copy_file(tiny("diffusers/" + c + "/config.json"), cfg + "/" + c + "/config.json");
  }
  fs::create_directories(cfg + "/unet");
  fs::copy_file(feature_group("inpaint").path("diffusers/unet/config.json"),
                cfg + "/unet/config.json");
  return cfg;
}

}  // namespace sdc::test
