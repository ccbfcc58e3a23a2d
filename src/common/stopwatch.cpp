// Memory readings from the kernel.
#include "common/stopwatch.h"

#include <unistd.h>

#include <cstdio>

namespace sdc {

int64_t peak_rss_bytes() {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  long long kib = -1;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "VmHWM: %lld", &kib) == 1) break;
  std::fclose(f);
  return kib < 0 ? 0 : int64_t(kib) * 1024;
}

int64_t current_rss_bytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  long pages = 0, resident = 0;
  const int n = std::fscanf(f, "%ld %ld", &pages, &resident);
  std::fclose(f);
  return n == 2 ? int64_t(resident) * sysconf(_SC_PAGESIZE) : 0;
}

}  // namespace sdc
