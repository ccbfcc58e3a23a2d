// Running this executable again as a child process (sdc bench measures each configuration in a
// fresh process): its exit status and wall time. (Not its peak RSS: the kernel's figure for a
// child, wait4's ru_maxrss, starts from the spawning process's own high-water mark.)
#pragma once

#include <string>
#include <vector>

namespace sdc::cli {

struct ChildRun {
  int status = 0;  // exit code, or 128 + signal
  double seconds = 0;
};

// Runs /proc/self/exe with `args` and waits for it. Output goes where ours goes unless
// `output_file` is set (then stdout and stderr both go there). Throws std::runtime_error when the
// process cannot be started.
ChildRun run_self(const std::vector<std::string>& args, const std::string& output_file = {});

}  // namespace sdc::cli
