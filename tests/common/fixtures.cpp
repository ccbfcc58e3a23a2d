// Fixture lookup, reference loading and the sdc subprocess runner for tests.
#include "common/fixtures.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include "io/safetensors.h"

namespace sdc::test {

std::string fixtures_dir() {
  if (const char* env = std::getenv("SDC_FIXTURES"); env && *env) return env;
  return SDC_DEFAULT_FIXTURES;
}
std::string tiny_dir() {
  return fixtures_dir() + "/tiny-sd15";
}
std::string tiny(const std::string& rel) {
  return tiny_dir() + "/" + rel;
}

std::vector<std::string> case_args(const nlohmann::json& c) {
  std::vector<std::string> a{"-p",          c["prompt"].get<std::string>(),
                             "-W",          std::to_string(c["width"].get<int>()),
                             "-H",          std::to_string(c["height"].get<int>()),
                             "--steps",     std::to_string(c["num_inference_steps"].get<int>()),
                             "--cfg-scale", std::to_string(c["guidance_scale"].get<double>()),
                             "--seed",      std::to_string(c["seed"].get<int64_t>())};
  if (c.contains("negative_prompt") && c["negative_prompt"].is_string()) {
    a.push_back("-n");
    a.push_back(c["negative_prompt"].get<std::string>());
  }
  return a;
}

std::vector<std::string> tiny_generate(const std::vector<std::string>& flags) {
  // The tiny-sd15 pipeline references were made with diffusers: its conventions.
  std::vector<std::string> a{
      "generate", "-m",       tiny("model.safetensors"), "--model-config", tiny("diffusers"),
      "--compat", "diffusers"};
  a.insert(a.end(), flags.begin(), flags.end());
  return a;
}

int max_level_diff(const io::Image& png, const std::vector<float>& unit_image) {
  int worst = 0;
  for (size_t i = 0; i < std::min(png.rgb.size(), unit_image.size()); ++i)
    worst = std::max(worst,
                     std::abs(int(png.rgb[i]) - int(std::lround(double(unit_image[i]) * 255.0))));
  return worst;
}

std::vector<std::string> tiny_generate_a1111(const std::vector<std::string>& flags) {
  std::vector<std::string> a{"generate", "-m", tiny("model.safetensors"), "--model-config",
                             tiny("diffusers")};
  a.insert(a.end(), flags.begin(), flags.end());
  return a;
}

// Python's json writes the non-standard bare tokens NaN, Infinity and -Infinity (e.g. a
// scheduler's lambda_min_clipped), which nlohmann rejects: turn them into the strings "NaN",
// "Infinity" and "-Infinity" (outside string literals only) so that they stay visible.
static std::string quote_python_json_constants(const std::string& text) {
  std::string out;
  out.reserve(text.size() + 64);
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      out.push_back(c);
      if (c == '\\' && i + 1 < text.size())
        out.push_back(text[++i]);
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    bool replaced = false;
    for (const char* word : {"-Infinity", "Infinity", "NaN"}) {
      if (text.compare(i, std::strlen(word), word) == 0) {
        out += std::string("\"") + word + "\"";
        i += std::strlen(word) - 1;
        replaced = true;
        break;
      }
    }
    if (!replaced) out.push_back(c);
  }
  return out;
}

const nlohmann::json& cases() {
  static const nlohmann::json j = [] {
    std::ifstream in(tiny("cases.json"));
    if (!in) throw std::runtime_error("cannot open " + tiny("cases.json") + " (set SDC_FIXTURES)");
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return nlohmann::json::parse(quote_python_json_constants(text));
  }();
  return j;
}

const nlohmann::json& find_case(const std::string& id) {
  for (const auto& c : cases()["cases"])
    if (c["id"] == id) return c;
  throw std::runtime_error("no case " + id + " in cases.json");
}

const io::TensorFile& reference() {
  static const io::TensorFile f = io::read_safetensors(tiny("reference.safetensors"));
  return f;
}

std::vector<float> ref_f32(const std::string& name) {
  return reference().tensors.get(name).to_f32();
}

double tolerance(const std::string& kind, const std::string& column) {
  static const nlohmann::json j = [] {
    std::ifstream in(tiny("tolerances.json"));
    return nlohmann::json::parse(in);
  }();
  const auto& k = j["kinds"][kind];
  if (column == "fp32") return k["fp32"].get<double>();
  if (column == "fp16") return k["fp16_weights_fp32_compute"].get<double>();
  if (column == "bf16") return k["bf16_weights_fp32_compute"].get<double>();
  return k["measured"][column].get<double>();
}

double rel_max_diff(const float* out, const std::vector<float>& ref) {
  double max_ref = 0, max_diff = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    max_ref = std::max(max_ref, double(std::fabs(ref[i])));
    const double d = std::fabs(double(out[i]) - double(ref[i]));
    if (!(d <= max_diff)) max_diff = std::isnan(d) ? INFINITY : d;  // NaN counts as a failure
  }
  return max_ref > 0 ? max_diff / max_ref : max_diff;
}

namespace {
std::string slurp(int fd) {
  std::string s;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) s.append(buf, size_t(n));
  return s;
}
}  // namespace

CommandResult run_sdc(const std::vector<std::string>& args, const std::string& cwd) {
  TempDir io_dir;
  const std::string out_path = io_dir.file("stdout"), err_path = io_dir.file("stderr");
  pid_t pid = fork();
  if (pid == 0) {
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(127);
    int o = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int nul = open("/dev/null", O_RDONLY);
    dup2(o, 1);
    dup2(e, 2);
    dup2(nul, 0);
    std::vector<char*> argv;
    static std::string bin = SDC_BINARY;
    argv.push_back(bin.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(bin.c_str(), argv.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  int o = open(out_path.c_str(), O_RDONLY), e = open(err_path.c_str(), O_RDONLY);
  r.out = slurp(o);
  r.err = slurp(e);
  close(o);
  close(e);
  return r;
}

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "sdc-test-XXXXXX").string();
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed");
  path_ = buf.data();
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::vector<std::string> TempDir::list() const {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(path_))
    names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace sdc::test
