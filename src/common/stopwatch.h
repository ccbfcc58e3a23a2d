// Stopwatch and peak-memory readings for progress lines and `sdc bench`.
#pragma once

#include <chrono>
#include <cstdint>

namespace sdc {

class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  void reset() { start_ = std::chrono::steady_clock::now(); }
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  double ms() const { return seconds() * 1e3; }

 private:
  std::chrono::steady_clock::time_point start_;
};

// This process image's resident-set high-water mark in bytes (VmHWM in /proc/self/status), which
// unlike getrusage's ru_maxrss does not inherit the parent's figure across fork/exec (a process
// spawned by a large one would report the parent's size). 0 if unreadable.
int64_t peak_rss_bytes();
// Current resident set size in bytes (/proc/self/statm), 0 if unavailable.
int64_t current_rss_bytes();

}  // namespace sdc
