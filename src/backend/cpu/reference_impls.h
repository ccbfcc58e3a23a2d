// The oneDNN primitives of this process that resolved to one of oneDNN's reference
// implementations ("ref…": plain C++ loops, often 100x slower than its JIT kernels). oneDNN picks
// one silently where no fast kernel takes a descriptor on this CPU (an int8 matmul whose post-ops
// the ISA's GEMM does not fuse, say), so the planner records each one here and `sdc generate`,
// `sdc bench` and the engine's log say so instead of running minutes where seconds were expected.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace sdc::cpu {

bool is_reference_impl(std::string_view impl_info);

// Records `what` (the step, e.g. "Linear.int8+sum input_blocks.1.1.…to_out.0") when `impl_info`
// is a reference implementation (thread-safe).
void note_primitive(const std::string& what, std::string_view impl_info);
// How many have been recorded in this process.
size_t reference_use_count();
// One line for a log about those recorded from the `from`-th on ("" when there are none): how
// many, the first of them with its implementation, and the ISA.
std::string reference_uses_notice(size_t from = 0);

}  // namespace sdc::cpu
