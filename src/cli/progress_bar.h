// ProgressBar: "step i/N" progress on stderr for long stages (sampling, converting). On a
// terminal it redraws one line with a bar, s/step and ETA; otherwise (pipes, CI, logs) it prints
// one plain line per update so logs stay readable.
#pragma once

#include <cstdio>
#include <string>

#include "common/stopwatch.h"

namespace sdc::cli {

class ProgressBar {
 public:
  explicit ProgressBar(std::string label, FILE* out = stderr);
  ProgressBar(std::string label, FILE* out, bool terminal);  // for tests
  // Reports that `done` of `total` units are finished.
  void update(int done, int total);
  void finish();  // ends the line on a terminal
  // Formats one status text, e.g. "sampling 3/20 [=====     ] 1.52 s/step, ETA 25.8 s".
  static std::string format(const std::string& label, int done, int total, double elapsed_s,
                            bool with_bar);

 private:
  std::string label_;
  FILE* out_;
  bool terminal_;
  bool open_line_ = false;
  Stopwatch clock_;
};

}  // namespace sdc::cli
