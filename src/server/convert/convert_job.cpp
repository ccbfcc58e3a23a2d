// prepare_convert / run_convert (see convert_job.h).
#include "server/convert/convert_job.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <vector>

#include "model/lora_arg.h"
#include "server/transfer/file_names.h"

namespace sdc::server::convert_jobs {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string type_of(const json& j) {
  if (j.is_null()) return "null";
  if (j.is_boolean()) return "a boolean";
  if (j.is_number()) return "a number";
  if (j.is_string()) return "a string";
  if (j.is_array()) return "an array";
  return "an object";
}

std::string shown(const json& j) {
  std::string s = j.dump(-1, ' ', false, json::error_handler_t::replace);
  return s.size() > 80 ? s.substr(0, 80) + "…" : s;
}

Source parse_source(const json& j, const std::string& field, const ConvertContext& ctx,
                    bool with_scale) {
  const std::string forms =
      "{\"upload\": ID}, {\"path\": \"relative/path\"} or {\"url\": \"https://…\"}";
  if (!j.is_object()) throw Error("", field, forms, type_of(j));
  Source s;
  s.field = field;
  const int given = int(j.contains("upload")) + int(j.contains("path")) + int(j.contains("url"));
  if (given != 1)
    throw Error("", field, "exactly one of upload, path, url",
                given == 0 ? "none" : std::to_string(given));
  for (auto it = j.begin(); it != j.end(); ++it) {
    static const std::vector<std::string> known{"upload", "path", "root", "url", "token", "scale"};
    if (std::find(known.begin(), known.end(), it.key()) == known.end() ||
        (it.key() == "scale" && !with_scale))
      throw Error("", field + "." + it.key(),
                  "a known key (upload, path, root, url, token" +
                      std::string(with_scale ? ", scale)" : ")"),
                  "\"" + it.key() + "\"");
  }
  if (j.contains("upload")) {
    if (!j["upload"].is_string())
      throw Error("", field + ".upload", "an upload id", type_of(j["upload"]));
    if (!ctx.uploads) throw Error("", field + ".upload", "uploads enabled on this server", "none");
    s.kind = Source::Kind::Upload;
    s.lease = ctx.uploads->lease(j["upload"].get<std::string>());
    s.path = s.lease->path();
    s.display = "upload " + s.lease->info().name;
  } else if (j.contains("path")) {
    if (!j["path"].is_string() || j["path"].get<std::string>().empty())
      throw Error("", field + ".path", "a path relative to the models folder", type_of(j["path"]));
    if (!ctx.files) throw Error("", field + ".path", "server files enabled on this server", "none");
    std::string root = "models";
    if (j.contains("root")) {
      if (!j["root"].is_string())
        throw Error("", field + ".root", "a folder name", type_of(j["root"]));
      root = j["root"].get<std::string>();
    }
    const std::string rel = transfer::checked_relative_path(j["path"].get<std::string>(), false);
    s.kind = Source::Kind::Path;
    s.path = ctx.files->resolve(root, rel).string();
    s.display = root + "/" + rel;
  } else {
    if (!j["url"].is_string()) throw Error("", field + ".url", "a URL", type_of(j["url"]));
    s.kind = Source::Kind::Url;
    s.url = j["url"].get<std::string>();
    s.display = transfer::redact_url(s.url);
    const std::string lower_url = [&] {
      std::string u = s.url;
      for (char& c : u) c = char(std::tolower(static_cast<unsigned char>(c)));
      return u;
    }();
    const bool https = lower_url.rfind("https://", 0) == 0,
               http = lower_url.rfind("http://", 0) == 0;
    if (!https && !(http && ctx.downloads.allow_http))
      throw Error(
          s.display, field + ".url",
          ctx.downloads.allow_http ? "an http(s) URL" : "an https URL (http needs --allow-http)",
          "\"" + s.display + "\"");
  }
  if (j.contains("token")) {
    if (!j["token"].is_string()) throw Error("", field + ".token", "a string", type_of(j["token"]));
    if (s.kind != Source::Kind::Url && !j["token"].get<std::string>().empty())
      throw Error("", field + ".token", "a token only with a url",
                  "a token with an upload or path");
    s.token = j["token"].get<std::string>();
  }
  if (j.contains("scale")) {
    if (!j["scale"].is_number() || !std::isfinite(j["scale"].get<double>()))
      throw Error("", field + ".scale", "a number", shown(j["scale"]));
    s.scale = j["scale"].get<float>();
  }
  return s;
}

model::ComponentTypes parse_precision(const json& j) {
  if (j.is_string()) return sdc::convert::parse_component_types(j.get<std::string>(), "precision");
  if (!j.is_object() || j.empty())
    throw Error("", "precision", "\"f32\" | \"f16\" | \"bf16\" or {\"unet\": \"bf16\", …}",
                type_of(j));
  std::string arg;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!it.value().is_string())
      throw Error("", "precision." + it.key(), "\"f32\", \"f16\" or \"bf16\"", shown(it.value()));
    arg += (arg.empty() ? "" : ",") + it.key() + "=" + it.value().get<std::string>();
  }
  return sdc::convert::parse_component_types(arg, "precision");
}

std::vector<std::pair<int, int>> parse_sizes_json(const json& j) {
  if (!j.is_array()) throw Error("", "sizes", "[[W, H], …]", type_of(j));
  std::vector<int> flat;
  for (size_t i = 0; i < j.size(); ++i) {
    const json& p = j[i];
    if (!p.is_array() || p.size() != 2 || !p[0].is_number_integer() || !p[1].is_number_integer())
      throw Error("", "sizes[" + std::to_string(i) + "]", "[W, H] (two whole numbers)", shown(p));
    flat.push_back(p[0].get<int>());
    flat.push_back(p[1].get<int>());
  }
  return sdc::convert::parse_sizes(flat, "sizes");
}

// A model name that is also a safe file name: letters, digits, '.', '_', '-', ' ' and '+'.
std::string checked_name(const std::string& name) {
  // Checked by hand: std::regex trips GCC 12's maybe-uninitialized under the sanitizer build.
  const auto allowed = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' ||
           c == ' ' || c == '+';
  };
  const bool ok = !name.empty() && name.size() <= 100 && name.front() != '.' &&
                  std::all_of(name.begin(), name.end(), allowed);
  if (!ok || name.back() == ' ' || name.back() == '.')
    throw Error("", "name",
                "1–100 letters, digits, spaces or . _ - + (not starting with '.' or ending with "
                "a space or '.')",
                "\"" + name + "\"");
  return name;
}

// Replaces the server's paths in a message by the names the user knows.
std::string user_facing(std::string msg,
                        const std::vector<std::pair<std::string, std::string>>& names) {
  for (const auto& [path, display] : names) {
    if (path.empty()) continue;
    for (size_t at = msg.find(path); at != std::string::npos;
         at = msg.find(path, at + display.size()))
      msg.replace(at, path.size(), display);
  }
  return msg;
}

// The job's private folder, removed with everything in it when the job ends.
class WorkDir {
 public:
  explicit WorkDir(const std::string& parent) {
    std::string tmpl = (fs::path(parent) / ".sdc-convert-XXXXXX").string();
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!mkdtemp(buf.data()))
      throw Error(parent, "models folder", "a writable folder", std::strerror(errno));
    path_ = buf.data();
  }
  ~WorkDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace

bool is_cancellation(const std::exception& e) {
  return dynamic_cast<const sdc::convert::ConvertCancelled*>(&e) ||
         dynamic_cast<const transfer::DownloadCancelled*>(&e);
}

PreparedConvert prepare_convert(const json& body, const ConvertContext& ctx) {
  if (!body.is_object()) throw Error("", "body", "a JSON object", type_of(body));
  static const std::vector<std::string> known{"type",
                                              "source",
                                              "loras",
                                              "controlnet",
                                              "vae",
                                              "precision",
                                              "sizes",
                                              "batch",
                                              "name",
                                              "defaults",
                                              "ignore_unmatched_lora_keys"};
  for (auto it = body.begin(); it != body.end(); ++it)
    if (std::find(known.begin(), known.end(), it.key()) == known.end())
      throw Error("", it.key(),
                  "one of type, source, loras, controlnet, vae, precision, sizes, batch, name, "
                  "defaults, ignore_unmatched_lora_keys",
                  "an unknown key");
  if (!body.contains("source")) throw Error("", "source", "the model to convert", "none");
  PreparedConvert p;
  p.model = parse_source(body["source"], "source", ctx, false);
  if (body.contains("loras") && !body["loras"].is_null()) {
    if (!body["loras"].is_array()) throw Error("", "loras", "an array", type_of(body["loras"]));
    for (size_t i = 0; i < body["loras"].size(); ++i)
      p.loras.push_back(
          parse_source(body["loras"][i], "loras[" + std::to_string(i) + "]", ctx, true));
  }
  if (body.contains("controlnet") && !body["controlnet"].is_null())
    p.controlnet = parse_source(body["controlnet"], "controlnet", ctx, false);
  if (body.contains("vae") && !body["vae"].is_null())
    p.vae = parse_source(body["vae"], "vae", ctx, false);

  sdc::convert::ConvertSpec& s = p.spec;
  if (body.contains("precision") && !body["precision"].is_null())
    s.types = parse_precision(body["precision"]);
  if (body.contains("sizes") && !body["sizes"].is_null()) s.sizes = parse_sizes_json(body["sizes"]);
  if (body.contains("batch") && !body["batch"].is_null()) {
    if (!body["batch"].is_number_integer())
      throw Error("", "batch", "a whole number", shown(body["batch"]));
    s.batch = body["batch"].get<int>();
    sdc::convert::check_batch(s.batch, "batch");
  }
  if (body.contains("defaults") && !body["defaults"].is_null()) {
    const json& d = body["defaults"];
    if (!d.is_string() || (d != "auto" && d != "lcm" && d != "none"))
      throw Error("", "defaults", "\"auto\", \"lcm\" or \"none\"", shown(d));
    s.defaults = d.get<std::string>();
  }
  if (body.contains("ignore_unmatched_lora_keys") &&
      !body["ignore_unmatched_lora_keys"].is_null()) {
    if (!body["ignore_unmatched_lora_keys"].is_boolean())
      throw Error("", "ignore_unmatched_lora_keys", "true or false",
                  shown(body["ignore_unmatched_lora_keys"]));
    s.ignore_unmatched = body["ignore_unmatched_lora_keys"].get<bool>();
  }
  std::string name;
  if (body.contains("name") && !body["name"].is_null()) {
    if (!body["name"].is_string()) throw Error("", "name", "a string", type_of(body["name"]));
    name = body["name"].get<std::string>();
  } else {
    // The source's own stem: an upload's or path's file name, a URL's last segment.
    const std::string from = p.model.kind == Source::Kind::Url
                                 ? transfer::url_file_name(p.model.url)
                                 : fs::path(p.model.path).filename().string();
    name = sdc::convert::default_model_name(from.empty() ? "converted" : from);
    name = transfer::sanitize_file_name(name, "converted");
  }
  s.name = checked_name(name);
  p.output_name = s.name + ".gguf";
  std::error_code ec;
  if (fs::exists(fs::path(ctx.models_dir) / p.output_name, ec))
    throw transfer::UploadConflict("(convert)", "a name no model has yet",
                                   "models/" + p.output_name + " exists (choose another name)");
  return p;
}

ConvertJobResult run_convert(const PreparedConvert& job, const ConvertContext& ctx,
                             const ConvertJobHooks& hooks) {
  ConvertJobResult result;
  auto log = [&](const std::string& line) {
    result.log.push_back(line);
    if (hooks.log) hooks.log(line);
  };
  WorkDir work(ctx.models_dir);
  std::vector<std::pair<std::string, std::string>> names;  // server path → user's name

  // Stages: one "download" per URL source, then read, hash, write, publish.
  std::vector<const Source*> all{&job.model};
  if (job.vae) all.push_back(&*job.vae);
  if (job.controlnet) all.push_back(&*job.controlnet);
  for (const Source& l : job.loras) all.push_back(&l);
  int downloads = 0;
  for (const Source* s : all) downloads += s->kind == Source::Kind::Url ? 1 : 0;
  const double stages = downloads + 3.0;
  double stages_done = 0;
  auto report = [&](const std::string& stage, const std::string& label, double f,
                    const std::string& text) {
    if (!hooks.progress) return;
    ConvertJobProgress p;
    p.stage = stage;
    p.label = label;
    p.stage_fraction = std::clamp(f, 0.0, 1.0);
    p.fraction = std::clamp((stages_done + p.stage_fraction) / stages, 0.0, 1.0);
    p.text = text;
    hooks.progress(p);
  };

  try {
    std::vector<std::string> paths;  // parallel to `all`
    for (const Source* s : all) {
      if (s->kind != Source::Kind::Url) {
        names.emplace_back(s->path, s->display);
        paths.push_back(s->path);
        continue;
      }
      const std::string label = "download " + s->display;
      transfer::DownloadHooks dh;
      dh.cancelled = hooks.cancelled;
      dh.log = log;
      dh.progress = [&](const transfer::DownloadProgress& dp) {
        const double f = dp.total && *dp.total ? double(dp.received) / double(*dp.total) : 0.0;
        report("download", label, f,
               label + " " + std::to_string(dp.received / (1 << 20)) + " MiB" +
                   (dp.total ? " of " + std::to_string(*dp.total / (1 << 20)) + " MiB" : ""));
      };
      report("download", label, 0, label);
      const transfer::DownloadResult r = transfer::download(
          {s->url, s->token, work.path(), "download.safetensors"}, ctx.downloads, dh);
      log("downloaded " + s->display + " (" + r.file_name + ", " + std::to_string(r.size) +
          " bytes)");
      names.emplace_back(r.path, r.file_name + " (from " + s->display + ")");
      paths.push_back(r.path);
      stages_done += 1;
    }
    names.emplace_back(work.path() + "/" + job.output_name, job.output_name);
    names.emplace_back(work.path(), "(the job's folder)");

    sdc::convert::ConvertSpec spec = job.spec;
    size_t i = 0;
    spec.model = paths[i++];
    if (job.vae) spec.vae = paths[i++];
    if (job.controlnet) spec.controlnet = paths[i++];
    for (const Source& l : job.loras) spec.loras.push_back({paths[i++], l.scale});
    spec.model_config = ctx.model_config;
    spec.threads = ctx.threads;
    spec.tool = ctx.tool;
    spec.output = (fs::path(work.path()) / job.output_name).string();

    sdc::convert::ConvertObserver observer;
    observer.cancelled = hooks.cancelled;
    observer.log = [&](const std::string& line) { log(user_facing(line, names)); };
    sdc::convert::ConvertStage current = sdc::convert::ConvertStage::Read;
    observer.progress = [&](sdc::convert::ConvertStage stage, const std::string& label, size_t done,
                            size_t total) {
      if (stage != current) {
        stages_done += 1;
        current = stage;
      }
      report(sdc::convert::stage_name(stage), label, total ? double(done) / double(total) : 0.0,
             label + " " + std::to_string(done) + "/" + std::to_string(total));
    };
    result.converted = sdc::convert::convert_model(spec, observer);
    // Publish: never over an existing model (two jobs, or a file that appeared meanwhile).
    const fs::path target = fs::path(ctx.models_dir) / job.output_name;
    if (::renameat2(AT_FDCWD, spec.output.c_str(), AT_FDCWD, target.c_str(), RENAME_NOREPLACE) != 0)
      throw Error("models/" + job.output_name, "publish", "a name no model has yet",
                  errno == EEXIST ? std::string("the file exists now (choose another name)")
                                  : std::string(std::strerror(errno)));
    result.file = job.output_name;
    result.path = target.string();
    result.bytes = result.converted.written.bytes;
    result.converted.path = target.string();
    stages_done = stages;
    report("publish", "done", 1, "wrote " + job.output_name);
  } catch (const sdc::convert::ConvertCancelled&) {
    throw sdc::convert::ConvertCancelled(job.output_name);
  } catch (const transfer::DownloadCancelled&) {
    throw;
  } catch (const UsageError& e) {
    throw UsageError(user_facing(e.what(), names));
  } catch (const Error& e) {
    throw Error(user_facing(e.what(), names));
  }
  return result;
}

}  // namespace sdc::server::convert_jobs
