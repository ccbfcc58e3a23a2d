// ProgressBar text: bar, s/step and ETA; plain lines when not on a terminal.
#include <gtest/gtest.h>

#include <cstdio>

#include "cli/progress_bar.h"

namespace sdc::cli {

TEST(ProgressBar, FormatsRateAndEta) {
  EXPECT_EQ(ProgressBar::format("sampling", 0, 4, 0.0, false), "sampling 0/4");
  EXPECT_EQ(ProgressBar::format("sampling", 2, 4, 3.0, false),
            "sampling 2/4 1.50 s/step, ETA 3.0 s");
  EXPECT_EQ(ProgressBar::format("x", 1, 2, 1.0, true),
            "x 1/2 [==========          ] 1.00 s/step, ETA 1.0 s");
}

TEST(ProgressBar, PlainLinesWhenNotATerminal) {
  char* buf = nullptr;
  size_t len = 0;
  FILE* f = open_memstream(&buf, &len);
  ProgressBar bar("step", f, false);
  bar.update(1, 2);
  bar.update(2, 2);
  bar.finish();
  std::fclose(f);
  std::string s(buf, len);
  free(buf);
  EXPECT_EQ(std::count(s.begin(), s.end(), '\n'), 2);
  EXPECT_EQ(s.find('\r'), std::string::npos);
  EXPECT_EQ(s.rfind("step 1/2", 0), 0u);
}

}  // namespace sdc::cli
