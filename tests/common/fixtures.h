// Test helpers: where the shared fixtures are (SDC_FIXTURES overrides the default), the reference
// tensors and cases of tiny-sd15, the fixtures' comparison metric, and running the sdc binary.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/image.h"
#include "io/tensor_file.h"

namespace sdc::test {

std::string fixtures_dir();                // .../shared/fixtures
std::string tiny_dir();                    // .../shared/fixtures/tiny-sd15
std::string tiny(const std::string& rel);  // tiny_dir() + "/" + rel
const nlohmann::json& cases();             // tiny-sd15/cases.json
const nlohmann::json& find_case(const std::string& id);
const io::TensorFile& reference();  // tiny-sd15/reference.safetensors
std::vector<float> ref_f32(const std::string& tensor_name);
double tolerance(const std::string& kind, const std::string& column = "fp32");
// A pipeline case's own `sdc generate` flags: -p, -n (if any), -W, -H, --steps, --cfg-scale,
// --seed.
std::vector<std::string> case_args(const nlohmann::json& pipeline_case);
// `sdc generate` on the tiny model (-m model.safetensors, --model-config diffusers for its head
// counts) with --compat diffusers (the conventions of the fixture's pipeline references),
// followed by `flags`.
std::vector<std::string> tiny_generate(const std::vector<std::string>& flags);
// The same under the CLI's default convention (A1111's), for comparisons with the server's A1111
// routes and native jobs, which use it too.
std::vector<std::string> tiny_generate_a1111(const std::vector<std::string>& flags);

// Largest |png - round(ref·255)| in 8-bit levels, for a reference float image in [0, 1] of the
// PNG's layout (HWC); the sizes must match (callers assert that first).
int max_level_diff(const io::Image& png, const std::vector<float>& unit_image);

// The fixtures' metric: max|out - ref| / max|ref|.
double rel_max_diff(const float* out, const std::vector<float>& ref);

struct CommandResult {
  int exit_code = -1;
  std::string out, err;
};
// Runs the built `sdc` binary with `args` (no shell), in `cwd` if given.
CommandResult run_sdc(const std::vector<std::string>& args, const std::string& cwd = {});

// A fresh empty temporary directory, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  std::vector<std::string> list() const;  // names of the entries inside

 private:
  std::string path_;
};

}  // namespace sdc::test
