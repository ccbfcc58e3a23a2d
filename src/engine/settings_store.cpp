// SettingsStore: load, merge and atomic save of the settings JSON object.
#include "engine/settings_store.h"

#include <fstream>
#include <sstream>

#include "common/error.h"
#include "io/atomic_file.h"

namespace sdc::engine {

SettingsStore::SettingsStore(std::string file) : file_(std::move(file)) {
  if (file_.empty()) return;
  std::ifstream in(file_);
  if (!in) return;  // first start: nothing saved yet
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object())
    throw Error(file_, "", "a JSON object of settings",
                j.is_discarded() ? "text that is not JSON" : std::string(j.type_name()));
  values_ = std::move(j);
}

nlohmann::json SettingsStore::all() const {
  std::lock_guard lock(mutex_);
  return values_;
}

nlohmann::json SettingsStore::get(const std::string& key, const nlohmann::json& fallback) const {
  std::lock_guard lock(mutex_);
  auto it = values_.find(key);
  return it == values_.end() ? fallback : *it;
}

void SettingsStore::update(const nlohmann::json& patch) {
  if (!patch.is_object())
    throw Error(file_, "settings", "a JSON object", std::string(patch.type_name()));
  std::lock_guard lock(mutex_);
  nlohmann::json next = values_;
  for (const auto& [k, v] : patch.items()) {
    if (v.is_null())
      next.erase(k);
    else
      next[k] = v;
  }
  if (next == values_) return;
  save(next);  // throws before anything changes in memory
  values_ = std::move(next);
}

void SettingsStore::save(const nlohmann::json& values) const {
  if (file_.empty()) return;
  io::AtomicFile out(file_);
  const std::string text = values.dump(2) + "\n";
  out.write(text.data(), text.size());
  out.commit();
}

}  // namespace sdc::engine
