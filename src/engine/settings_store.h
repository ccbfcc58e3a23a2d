// SettingsStore: a JSON object of user settings kept in one file (A1111's config.json role), read
// at start and rewritten atomically on every change, so a value set through POST /options
// survives a restart. The store does not know the keys' meanings: the A1111 adapter owns the
// defaults and the validation; the engine reads the few it acts on (e.g. the current model).
#pragma once

#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

namespace sdc::engine {

class SettingsStore {
 public:
  // `file` may not exist yet (empty settings). Empty: in memory only. A file that is not a JSON
  // object is an sdc::Error naming it (never silently replaced).
  explicit SettingsStore(std::string file);

  nlohmann::json all() const;  // a copy of the stored object
  nlohmann::json get(const std::string& key, const nlohmann::json& fallback = nullptr) const;
  // Merges `patch` (an object; a null value removes the key) and saves. sdc::Error when `patch`
  // is not an object or the file cannot be written (the in-memory values are then unchanged).
  void update(const nlohmann::json& patch);

  const std::string& file() const { return file_; }

 private:
  void save(const nlohmann::json& values) const;

  std::string file_;
  mutable std::mutex mutex_;
  nlohmann::json values_ = nlohmann::json::object();
};

}  // namespace sdc::engine
