// Messages of the engine's typed errors.
#include "engine/engine_errors.h"

namespace sdc::engine {

QueueFull::QueueFull(int capacity, int retry_after_s)
    : Error(
          "", "queue", "fewer than " + std::to_string(capacity) + " waiting jobs",
          std::to_string(capacity) + " waiting (retry in " + std::to_string(retry_after_s) + " s)"),
      capacity_(capacity),
      retry_after_s_(retry_after_s) {}

NotFound::NotFound(std::string what_kind, std::string name, std::string known)
    : Error("", what_kind, known.empty() ? "a known " + what_kind : "one of: " + known,
            "'" + name + "'"),
      what_kind_(std::move(what_kind)),
      name_(std::move(name)) {}

BadName::BadName(std::string what_kind, std::string name, std::string why)
    : Error("", what_kind, "a name relative to its folder (" + why + ")", "'" + name + "'") {}

ShuttingDown::ShuttingDown() : Error("the server is shutting down and takes no new jobs") {}

}  // namespace sdc::engine
