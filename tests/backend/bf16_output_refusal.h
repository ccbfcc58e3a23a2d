// A check the kernels with their own bf16 rounding share: asked for a bf16 output on a CPU without
// AVX-512 BF16, a kernel refuses with its message and leaves the output as it was.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"

namespace sdc::test {

// run(y) writes n bf16 values to y; it must throw an Error naming "f32 on a CPU without AVX-512
// BF16" and write nothing.
template <class Run>
void expect_bf16_output_refused(size_t n, Run run) {
  constexpr uint16_t kUntouched = 0x7fc1;  // a NaN no kernel writes
  std::vector<uint16_t> y(n, kUntouched);
  try {
    run(y.data());
    ADD_FAILURE() << "wrote a bf16 output without AVX-512 BF16";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("f32 on a CPU without AVX-512 BF16"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(y, std::vector<uint16_t>(n, kUntouched));
}

}  // namespace sdc::test
