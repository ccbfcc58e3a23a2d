// ProgressBar rendering.
#include "cli/progress_bar.h"

#include <unistd.h>

#include <cmath>

namespace sdc::cli {

ProgressBar::ProgressBar(std::string label, FILE* out)
    : ProgressBar(std::move(label), out, isatty(fileno(out)) != 0) {}

ProgressBar::ProgressBar(std::string label, FILE* out, bool terminal)
    : label_(std::move(label)), out_(out), terminal_(terminal) {}

std::string ProgressBar::format(const std::string& label, int done, int total, double elapsed_s,
                                bool with_bar) {
  char buf[256];
  std::string s = label + " " + std::to_string(done) + "/" + std::to_string(total);
  if (with_bar && total > 0) {
    const int width = 20, filled = int(std::lround(double(width) * done / total));
    s += " [" + std::string(size_t(filled), '=') + std::string(size_t(width - filled), ' ') + "]";
  }
  if (done > 0) {
    const double per = elapsed_s / done;
    std::snprintf(buf, sizeof buf, " %.2f s/step, ETA %.1f s", per, per * (total - done));
    s += buf;
  }
  return s;
}

void ProgressBar::update(int done, int total) {
  const std::string line = format(label_, done, total, clock_.seconds(), terminal_);
  if (terminal_) {
    std::fprintf(out_, "\r%s\033[K", line.c_str());
    open_line_ = true;
  } else {
    std::fprintf(out_, "%s\n", line.c_str());
  }
  std::fflush(out_);
}

void ProgressBar::finish() {
  if (open_line_) std::fprintf(out_, "\n");
  open_line_ = false;
}

}  // namespace sdc::cli
