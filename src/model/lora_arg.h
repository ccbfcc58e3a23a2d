// The `-l/--lora FILE[:SCALE]` argument.
//
// Rule (paths may contain ':'):
//   1. No ':' in the argument: the whole argument is the path, scale 1.
//   2. Otherwise look at the part after the LAST ':'. If it is a finite number ("0.7", "-1",
//      "1e-1"), it is the scale and the part before is the path (which must not be empty).
//   3. If it is not a number, the whole argument is taken as a path (scale 1) only when that
//      part looks like a path component — it contains '/' or '\\', or the whole argument names
//      an existing file. Anything else ("lora.safetensors:abc", "lora.safetensors:") is a
//      sdc::UsageError naming the argument and the bad scale.
#pragma once

#include <string>

namespace sdc::model {

struct LoraSpec {
  std::string path;
  float scale = 1.0f;
};

LoraSpec parse_lora_arg(const std::string& arg);

}  // namespace sdc::model
