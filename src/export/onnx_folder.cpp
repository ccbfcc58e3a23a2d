// The export folder: components written into a temporary sibling folder, model.json and the
// recipes beside them, then one rename into place.
#include "export/onnx_folder.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "export/compile_recipes.h"
#include "io/atomic_file.h"
#include "io/sha256.h"

namespace sdc::exporter {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

fs::path normalised(const std::string& dir) {
  fs::path p = fs::path(dir).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  return p;
}

// A folder that is removed with everything in it unless released.
class TempFolder {
 public:
  explicit TempFolder(const fs::path& target) {
    const fs::path parent = target.parent_path().empty() ? fs::path(".") : target.parent_path();
    std::string pattern =
        (parent / ("." + target.filename().string() + ".sdc-tmp-XXXXXX")).string();
    if (!mkdtemp(pattern.data()))
      throw Error(parent.string(), "output folder", "a writable directory",
                  std::string("cannot create a folder in it: ") + std::strerror(errno));
    path_ = pattern;
    // mkdtemp makes it private (0700); the export gets the mode a new folder would get.
    const mode_t mask = umask(0);
    umask(mask);
    chmod(path_.c_str(), 0777 & ~mask);
  }
  ~TempFolder() {
    if (!path_.empty()) {
      std::error_code ec;
      fs::remove_all(path_, ec);
    }
  }
  TempFolder(const TempFolder&) = delete;
  TempFolder& operator=(const TempFolder&) = delete;
  const fs::path& path() const { return path_; }
  void release() { path_.clear(); }

 private:
  fs::path path_;
};

void write_text(const fs::path& path, const std::string& text, bool executable) {
  io::AtomicFile f(path.string());
  f.write(text.data(), text.size());
  f.commit();
  if (executable) fs::permissions(path, fs::perms(0755), fs::perm_options::replace);
}

json dims_json(const std::vector<Dim>& dims) {
  json a = json::array();
  for (const Dim& d : dims) {
    if (d.value >= 0)
      a.push_back(d.value);
    else
      a.push_back(d.param);
  }
  return a;
}

json values_json(const std::vector<ValueInfo>& values) {
  json a = json::array();
  for (const auto& v : values)
    a.push_back({{"name", v.name}, {"dtype", elem_name(v.type)}, {"shape", dims_json(v.dims)}});
  return a;
}

std::string precision_group(const ComponentSpec& c) {
  return c.kind == ComponentKind::VaeEncoder || c.kind == ComponentKind::VaeDecoder ? "vae" : c.id;
}

json info_json(const model::CompiledInfo& info) {
  json sources = json::array();
  for (const auto& s : info.sources)
    sources.push_back({{"role", s.role}, {"name", s.name}, {"size", s.size}, {"sha256", s.sha256}});
  json loras = json::array();
  for (const auto& l : info.loras)
    loras.push_back({{"name", l.name},
                     {"sha256", l.sha256},
                     {"format", l.format},
                     {"scale", l.scale},
                     {"unet_modules", l.unet_modules},
                     {"text_encoder_modules", l.text_encoder_modules}});
  json defaults = json::object();
  const auto& d = info.defaults;
  if (!d.sampler.empty()) defaults["sampler"] = d.sampler;
  if (!d.scheduler.empty()) defaults["scheduler"] = d.scheduler;
  if (d.steps > 0) defaults["steps"] = d.steps;
  if (d.cfg_scale >= 0) defaults["cfg_scale"] = d.cfg_scale;
  if (!d.reason.empty()) defaults["reason"] = d.reason;
  return {{"sources", sources}, {"loras", loras}, {"defaults", defaults}};
}

}  // namespace

void check_onnx_output(const std::string& dir, bool force) {
  if (dir.empty()) throw UsageError("", "-o/--output", "an output folder", "nothing");
  const fs::path p = normalised(dir);
  std::error_code ec;
  const auto st = fs::status(p, ec);
  if (fs::exists(st) && !fs::is_directory(st))
    throw UsageError(dir, "-o/--output", "a folder for the ONNX export", "an existing file");
  if (fs::is_directory(st) && !fs::is_empty(p, ec) && !force)
    throw UsageError(dir, "-o/--output", "a new or empty folder (--force replaces it)",
                     "a folder that is not empty");
  const fs::path parent = p.parent_path().empty() ? fs::path(".") : p.parent_path();
  if (!fs::is_directory(parent, ec))
    throw UsageError(dir, "-o/--output", "an existing parent folder",
                     parent.string() + " does not exist");
  TempFolder probe(p);  // the parent is writable
}

ElemType onnx_compute_type(DType precision, const std::string& component) {
  if (precision == DType::F32) return ElemType::Float;
  if (precision == DType::F16) return ElemType::Float16;
  throw UsageError("", "-t/--type (" + component + ")",
                   "f32 or f16 with --format onnx (ONNX runtimes and accelerator compilers do not "
                   "take bf16 graphs; compile with a bf16 quantize option instead)",
                   dtype_name(precision) == "BF16" ? "bf16" : std::string(dtype_name(precision)));
}

OnnxExportResult export_onnx_folder(const model::LoadedModel& m, const model::CompiledInfo& info,
                                    const OnnxExportOptions& o) {
  check_onnx_output(o.dir, o.force);
  const fs::path target = normalised(o.dir);
  TempFolder temp(target);
  OnnxExportResult result;

  json components = json::object();
  std::vector<RecipeComponent> recipe;
  std::map<std::string, std::string> precisions;
  for (const ComponentSpec& c : components_of(m, o.shapes.batch)) {
    const std::string group = precision_group(c);
    const auto ct = o.compute.find(group);
    const ElemType compute = ct == o.compute.end() ? ElemType::Float : ct->second;
    precisions[group] = compute == ElemType::Float ? "f32" : "f16";
    const OnnxModel model = component_onnx(m, c, o.shapes, compute, o.control_inputs);
    fs::create_directories(temp.path() / c.folder);
    OnnxFileOptions fo;
    fo.external = o.external;
    fo.producer_version = o.tool;
    if (o.on_tensor) fo.on_tensor = [&](size_t done, size_t n) { o.on_tensor(c.id, done, n); };
    const OnnxFileResult written =
        write_onnx_file(model, (temp.path() / c.folder).string(), c.file, fo);
    json entry = {{"file", c.folder + "/" + c.file},
                  {"precision", precisions[group]},
                  {"doc", model.doc},
                  {"inputs", values_json(model.inputs)},
                  {"outputs", values_json(model.outputs)},
                  {"initializer_bytes", model.initializer_bytes()}};
    json files = json::object();
    for (const std::string& f : written.files) {
      const std::string rel = c.folder + "/" + f;
      files[rel] = {{"bytes", fs::file_size(temp.path() / rel)},
                    {"sha256", io::sha256_file((temp.path() / rel).string())}};
      result.files.push_back(rel);
    }
    entry["files"] = files;
    entry["external_data"] =
        written.files.size() > 1 ? json(c.folder + "/" + written.files[1]) : json(nullptr);
    components[c.id] = entry;
    result.bytes += written.bytes;
    recipe.push_back({c.id, c.folder + "/" + c.file, model.inputs, compute == ElemType::Float16});
  }

  RecipeSizes rs;
  rs.sizes = o.sizes.empty() ? std::vector<std::pair<int, int>>{{o.shapes.width, o.shapes.height}}
                             : o.sizes;
  rs.batch = o.shapes.batch;
  rs.fixed = o.shapes.fixed;
  write_text(temp.path() / "compile-bm1684x.sh", bm1684x_recipe(recipe, rs), true);
  write_text(temp.path() / "compile-tensorrt.sh", tensorrt_recipe(recipe, rs), true);

  json sizes = json::array();
  for (const auto& [w, h] : rs.sizes) sizes.push_back({w, h});
  json configs = {{"unet", model::diffusers_config(m.unet)},
                  {"text_encoder", model::diffusers_config(m.text_encoder)},
                  {"vae", model::diffusers_config(m.vae)}};
  if (m.controlnet) configs["controlnet"] = model::diffusers_config(*m.controlnet);
  json doc = {
      {"format", "sdc-onnx"},
      {"version", 1},
      {"tool", o.tool},
      {"name", info.name},
      {"base", info.base},
      {"onnx", {{"ir_version", kIrVersion}, {"opset", kOpsetVersion}}},
      {"static", o.shapes.fixed},
      {"batch", o.shapes.batch},
      {"sizes", sizes},
      {"precision", precisions},
      {"components", components},
      {"dimensions",
       {{"batch", "images per run (2 for classifier-free guidance: [uncond, cond])"},
        {"height", "latent height = image height / 8"},
        {"width", "latent width = image width / 8"},
        {"height_2", "ceil(height / 2)"},
        {"height_4", "ceil(height / 4)"},
        {"height_8", "ceil(height / 8)"},
        {"image_height", "image height in pixels (a multiple of 8)"},
        {"image_width", "image width in pixels (a multiple of 8)"},
        {"sequence", "text tokens: 77 x prompt chunks"}}},
      {"scaling_factor", m.vae.scaling_factor},
      {"configs", configs},
      {"tokenizer",
       {{"kind", "CLIP BPE (openai/CLIP vocabulary)"},
        {"max_length", m.text_encoder.max_positions},
        {"bos_token_id", 49406},
        {"eos_token_id", 49407},
        {"pad_token_id", 49407}}},
  };
  doc.update(info_json(info));
  write_text(temp.path() / "model.json", doc.dump(2) + "\n", false);
  result.files.insert(result.files.end(),
                      {"compile-bm1684x.sh", "compile-tensorrt.sh", "model.json"});

  // Into place: an existing (empty, or --force) folder is moved aside first and removed after.
  std::error_code ec;
  if (fs::exists(target, ec)) {
    TempFolder old(target);
    fs::rename(target, old.path() / "old", ec);
    if (ec)
      throw Error(target.string(), "output folder", "a folder that can be replaced", ec.message());
    fs::rename(temp.path(), target, ec);
    if (ec) {
      std::error_code back;
      fs::rename(old.path() / "old", target, back);
      throw Error(target.string(), "output folder", "a folder that can be replaced", ec.message());
    }
  } else {
    fs::rename(temp.path(), target, ec);
    if (ec)
      throw Error(target.string(), "output folder", "a folder that can be created", ec.message());
  }
  temp.release();
  return result;
}

}  // namespace sdc::exporter
