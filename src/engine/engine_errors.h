// The engine's typed failures, so that callers (the HTTP server above all) can map each to its
// status code without parsing messages: a full queue (429 + Retry-After), an unknown job or model
// (404), a name that tries to leave the configured folders (400). All are sdc::Error, so the CLI
// prints them as one line like any other bad input.
#pragma once

#include <string>

#include "common/error.h"

namespace sdc::engine {

// The job queue holds --max-queue jobs already; `retry_after_s` is an estimate of when a slot
// frees up (the running job's ETA, at least 1 s).
class QueueFull : public Error {
 public:
  QueueFull(int capacity, int retry_after_s);
  int capacity() const { return capacity_; }
  int retry_after_s() const { return retry_after_s_; }

 private:
  int capacity_, retry_after_s_;
};

// No job, model, LoRA or ControlNet by that id/name. `what_kind` is "job", "model", "LoRA", ….
class NotFound : public Error {
 public:
  NotFound(std::string what_kind, std::string name, std::string known);
  const std::string& what_kind() const { return what_kind_; }
  const std::string& name() const { return name_; }

 private:
  std::string what_kind_, name_;
};

// A name that is absolute, contains "..", a NUL or a backslash: refused before any lookup so that
// nothing a request sends can reach files outside the configured folders.
class BadName : public Error {
 public:
  BadName(std::string what_kind, std::string name, std::string why);
};

// The engine is shutting down and takes no more jobs (503).
class ShuttingDown : public Error {
 public:
  ShuttingDown();
};

}  // namespace sdc::engine
