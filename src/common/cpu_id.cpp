// XCR0 through XGETBV (see cpu_id.h).
#include "common/cpu_id.h"

#include <cpuid.h>

namespace sdc {

uint64_t os_saved_vector_state() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !((c >> 27) & 1)) return 0;  // no OSXSAVE: no XGETBV
  uint32_t lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t(hi) << 32) | lo;
}

}  // namespace sdc
