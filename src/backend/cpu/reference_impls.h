// The oneDNN primitives of this process that resolved to one of oneDNN's reference
// implementations ("ref…": plain C++ loops, often 100x slower than its JIT kernels). oneDNN picks
// one silently where no fast kernel takes a descriptor on this CPU (an int8 matmul whose post-ops
// the ISA's GEMM does not fuse, say), so the planner records each one here and the engine and
// `sdc bench` say so instead of running minutes where seconds were expected.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace sdc::cpu {

bool is_reference_impl(std::string_view impl_info);

struct ReferenceUse {
  std::string what;  // the step, e.g. "Linear unet.…proj_out (int8)"
  std::string impl;  // oneDNN's implementation name, e.g. "ref_int8:any"
};

// Records `what` when `impl_info` is a reference implementation (thread-safe).
void note_primitive(const std::string& what, std::string_view impl_info);
// Everything recorded so far in this process.
std::vector<ReferenceUse> reference_uses();
size_t reference_use_count();
// One line for a log ("" when nothing was recorded): how many, the first, and the ISA.
std::string reference_uses_notice();

}  // namespace sdc::cpu
