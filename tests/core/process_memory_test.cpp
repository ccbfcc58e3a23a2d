// The memory readings sdc generate and sdc bench report: the high-water mark covers what is
// resident now and grows with memory this process touches (it is this process image's own,
// VmHWM, not the figure a spawned process inherits from its parent).
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "common/stopwatch.h"

namespace sdc {
namespace {

TEST(ProcessMemory, PeakCoversCurrentAndFollowsTouchedMemory) {
  const int64_t now = current_rss_bytes();
  const int64_t before = peak_rss_bytes();
  ASSERT_GT(now, 0);
  EXPECT_GE(before, now);
  const size_t n = size_t(before) + (size_t(64) << 20);  // more than the peak so far
  std::vector<char> block(n);
  std::memset(block.data(), 1, n);
  EXPECT_GE(peak_rss_bytes(), int64_t(n));
  EXPECT_EQ(block[n - 1], 1);
}

}  // namespace
}  // namespace sdc
