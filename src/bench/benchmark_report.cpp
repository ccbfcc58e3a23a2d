// Benchmark results as JSON (also the format a measuring child process hands back) and as the
// table `sdc bench` prints.
#include <cstdio>
#include <string>

#include "bench/benchmark.h"
#include "common/error.h"

namespace sdc::bench {
namespace {

using nlohmann::json;

std::string format(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

std::string time_text(double ms) {
  return ms < 1000 ? format("%.1f ms", ms) : format("%.2f s", ms / 1000);
}

std::string mib(int64_t bytes) {
  return format("%.0f MiB", double(bytes) / double(1 << 20));
}

std::string gib(int64_t bytes) {
  return format("%.2f GiB", double(bytes) / double(1 << 30));
}

json component_to_json(const ComponentTiming& t) {
  return {{"component", component_key(t.component)},
          {"title", component_title(t.component)},
          {"width", t.width},
          {"height", t.height},
          {"precision", cpu::precision_name(t.precision)},
          {"compile_s", t.compile_s},
          {"first_run_ms", t.first_run_ms},
          {"run_ms", t.run_ms},
          {"ms", t.ms()},
          {"cpu_ms", t.cpu_ms},
          {"macs", t.macs},
          {"gflops", t.gflops()},
          {"int8", t.int8},
          {"weight_bytes", t.weight_bytes},
          {"arena_bytes", t.arena_bytes},
          {"scratch_bytes", t.scratch_bytes}};
}

template <typename T>
T field(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key)) throw Error("benchmark result", key, "a value", "none");
  try {
    return j.at(key).get<T>();
  } catch (const json::exception&) {
    throw Error("benchmark result", key, "a value of the right type", j.at(key).dump());
  }
}

cpu::Precision precision_from(const std::string& name) {
  if (name == "bf16") return cpu::Precision::BF16;
  if (name == "f32") return cpu::Precision::F32;
  if (name == "int8") return cpu::Precision::INT8;
  throw Error("benchmark result", "precision", "f32, bf16 or int8", "'" + name + "'");
}

ComponentTiming component_from_json(const json& j) {
  ComponentTiming t;
  t.component = parse_component(field<std::string>(j, "component"));
  t.width = field<int>(j, "width");
  t.height = field<int>(j, "height");
  t.precision = precision_from(field<std::string>(j, "precision"));
  t.compile_s = field<double>(j, "compile_s");
  t.first_run_ms = field<double>(j, "first_run_ms");
  t.run_ms = field<std::vector<double>>(j, "run_ms");
  t.cpu_ms = field<double>(j, "cpu_ms");
  t.macs = field<int64_t>(j, "macs");
  t.int8 = field<bool>(j, "int8");
  t.weight_bytes = field<int64_t>(j, "weight_bytes");
  t.arena_bytes = field<int64_t>(j, "arena_bytes");
  t.scratch_bytes = field<int64_t>(j, "scratch_bytes");
  return t;
}

json profile_to_json(const std::vector<ProfileEntry>& entries) {
  json out = json::array();
  for (const ProfileEntry& e : entries)
    out.push_back({{"kind", e.kind},
                   {"count", e.count},
                   {"ms", e.ms},
                   {"cpu_ms", e.cpu_ms},
                   {"macs", e.macs}});
  return out;
}

std::vector<ProfileEntry> profile_from_json(const json& j, const char* key) {
  const json profile = field<json>(j, key);
  if (!profile.is_array()) throw Error("benchmark result", key, "an array", profile.dump());
  std::vector<ProfileEntry> out;
  for (const json& e : profile)
    out.push_back({field<std::string>(e, "kind"), field<int>(e, "count"), field<double>(e, "ms"),
                   field<double>(e, "cpu_ms"), field<int64_t>(e, "macs")});
  return out;
}

// "TITLE one profiled run, TOTAL):" and the entries as a table; nothing when there are none.
void print_profile(std::ostream& out, const std::string& title,
                   const std::vector<ProfileEntry>& entries) {
  if (entries.empty()) return;
  double total = 0;
  for (const ProfileEntry& e : entries) total += e.ms;
  out << "\n" << title << "one profiled run, " << time_text(total) << "):\n";
  char line[256];
  std::snprintf(line, sizeof line, "  %-36s %6s %10s %7s %10s %8s\n", "step kind", "count", "wall",
                "share", "cpu", "GFLOP/s");
  out << line;
  for (const ProfileEntry& e : entries) {
    std::snprintf(line, sizeof line, "  %-36s %6d %10s %6.1f%% %10s %8.1f\n",
                  e.kind.substr(0, 36).c_str(), e.count, time_text(e.ms).c_str(),
                  total > 0 ? 100 * e.ms / total : 0.0, time_text(e.cpu_ms).c_str(),
                  e.ms > 0 ? 2.0 * double(e.macs) / (e.ms * 1e6) : 0.0);
    out << line;
  }
}

}  // namespace

json case_to_json(const CaseResult& r) {
  const BenchCase& c = r.bench_case;
  json components = json::array();
  for (const ComponentTiming& t : r.components) components.push_back(component_to_json(t));
  return {
      {"case", c.name},
      {"sampler", c.sampler},
      {"width", c.width},
      {"height", c.height},
      {"steps", c.steps},
      {"cfg_scale", c.cfg_scale},
      {"unet_batch", c.unet_batch()},
      {"text_encoder_passes", c.text_encoder_passes()},
      {"precision", cpu::precision_name(r.precision)},
      {"load_s", r.load_s},
      {"rss_after_load_bytes", r.rss_after_load},
      {"peak_rss_bytes", r.peak_rss},
      {"s_per_image_estimated", r.seconds_per_image()},
      {"s_per_image_measured", r.end_to_end_s > 0 ? json(r.end_to_end_s) : json(nullptr)},
      {"end_to_end", r.end_to_end_s > 0 ? json{{"s", r.end_to_end_s},
                                               {"text_encoder_ms", r.e2e_text_encoder_ms},
                                               {"sampling_ms", r.e2e_sampling_ms},
                                               {"vae_decode_ms", r.e2e_vae_decode_ms}}
                                        : json(nullptr)},
      {"cold_first_image_s", r.cold_first_image_s()},
      {"taesd", r.taesd},
      {"s_per_image_taesd_estimated",
       r.seconds_per_image_taesd() > 0 ? json(r.seconds_per_image_taesd()) : json(nullptr)},
      {"end_to_end_taesd", r.e2e_taesd_s > 0 ? json{{"s", r.e2e_taesd_s},
                                                    {"sampling_ms", r.e2e_taesd_sampling_ms},
                                                    {"taesd_decode_ms", r.e2e_taesd_decode_ms}}
                                             : json(nullptr)},
      {"process", r.process_s > 0 ? json{{"s", r.process_s}, {"peak_rss_bytes", r.process_peak_rss}}
                                  : json(nullptr)},
      {"process_taesd", r.process_taesd_s > 0 ? json{{"s", r.process_taesd_s},
                                                     {"peak_rss_bytes", r.process_taesd_peak_rss}}
                                              : json(nullptr)},
      {"loadavg_start", r.loadavg_start},
      {"loadavg_end", r.loadavg_end},
      {"note", r.note},
      {"components", components},
      {"unet_profile", profile_to_json(r.unet_profile)},
      {"vae_profile", profile_to_json(r.vae_profile)},
      {"taesd_profile", profile_to_json(r.taesd_profile)}};
}

CaseResult case_from_json(const json& j) {
  CaseResult r;
  const std::string name = field<std::string>(j, "case");
  for (const BenchCase& c : standard_cases())
    if (c.name == name) r.bench_case = c;
  if (r.bench_case.name != name) throw Error("benchmark result", "case", "a standard case", name);
  r.precision = precision_from(field<std::string>(j, "precision"));
  r.load_s = field<double>(j, "load_s");
  r.rss_after_load = field<int64_t>(j, "rss_after_load_bytes");
  r.peak_rss = field<int64_t>(j, "peak_rss_bytes");
  r.loadavg_start = field<double>(j, "loadavg_start");
  r.loadavg_end = field<double>(j, "loadavg_end");
  r.note = field<std::string>(j, "note");
  const json e2e = field<json>(j, "end_to_end");
  if (!e2e.is_null()) {
    r.end_to_end_s = field<double>(e2e, "s");
    r.e2e_text_encoder_ms = field<double>(e2e, "text_encoder_ms");
    r.e2e_sampling_ms = field<double>(e2e, "sampling_ms");
    r.e2e_vae_decode_ms = field<double>(e2e, "vae_decode_ms");
  }
  r.taesd = field<std::string>(j, "taesd");
  const json e2e_taesd = field<json>(j, "end_to_end_taesd");
  if (!e2e_taesd.is_null()) {
    r.e2e_taesd_s = field<double>(e2e_taesd, "s");
    r.e2e_taesd_sampling_ms = field<double>(e2e_taesd, "sampling_ms");
    r.e2e_taesd_decode_ms = field<double>(e2e_taesd, "taesd_decode_ms");
  }
  // Filled by the parent after the child's JSON (absent there).
  if (j.contains("process") && !j.at("process").is_null()) {
    r.process_s = field<double>(j.at("process"), "s");
    r.process_peak_rss = field<int64_t>(j.at("process"), "peak_rss_bytes");
  }
  if (j.contains("process_taesd") && !j.at("process_taesd").is_null()) {
    r.process_taesd_s = field<double>(j.at("process_taesd"), "s");
    r.process_taesd_peak_rss = field<int64_t>(j.at("process_taesd"), "peak_rss_bytes");
  }
  const json components = field<json>(j, "components");
  if (!components.is_array())
    throw Error("benchmark result", "components", "an array", components.dump());
  for (const json& c : components) r.components.push_back(component_from_json(c));
  r.unet_profile = profile_from_json(j, "unet_profile");
  r.vae_profile = profile_from_json(j, "vae_profile");
  // Results written before the TAESD profile existed have none.
  if (j.contains("taesd_profile")) r.taesd_profile = profile_from_json(j, "taesd_profile");
  return r;
}

void BenchReport::print_taesd_cases(std::ostream& out) const {
  bool any = false;
  for (const CaseResult& r : cases) any |= r.seconds_per_image_taesd() > 0;
  if (!any) return;
  out << "\nThe same cases with TAESD decoding the image instead of the VAE (TAESD: "
      << cases.front().taesd
      << "); estimated = as above with TAESD decode,\n"
         "measured = one image through the generate pipeline with --decode-with taesd,\n"
         "process = one `sdc generate --decode-with taesd` in a fresh process\n";
  char line[256];
  std::snprintf(line, sizeof line, "%-9s %-5s %-26s %9s %9s %12s %12s %9s %11s\n", "case", "prec",
                "pipeline", "estimated", "measured", "TAESD dec", "VAE dec", "process",
                "process RSS");
  out << line;
  for (const CaseResult& r : cases) {
    if (r.seconds_per_image_taesd() <= 0) continue;
    const std::string measured = r.e2e_taesd_s > 0 ? format("%.2f", r.e2e_taesd_s) : "-";
    const ComponentTiming* taesd = r.find(Component::TaesdDecode);
    const ComponentTiming* vae = r.find(Component::VaeDecode);
    const std::string process = r.process_taesd_s > 0 ? format("%.2f", r.process_taesd_s) : "-";
    const std::string process_rss = r.process_taesd_s > 0 ? gib(r.process_taesd_peak_rss) : "-";
    std::snprintf(line, sizeof line, "%-9s %-5s %-26s %9.2f %9s %12s %12s %9s %11s\n",
                  r.bench_case.name.c_str(), cpu::precision_name(r.precision),
                  (r.bench_case.title() + " + TAESD").c_str(), r.seconds_per_image_taesd(),
                  measured.c_str(), taesd ? time_text(taesd->ms()).c_str() : "-",
                  vae ? time_text(vae->ms()).c_str() : "-", process.c_str(), process_rss.c_str());
    out << line;
  }
}

const PeakResult* BenchReport::peak(cpu::Precision p) const {
  for (const PeakResult& r : peaks)
    if (r.precision == p) return &r;
  return nullptr;
}

const PeakResult* BenchReport::peak_for(const ComponentTiming& t) const {
  if (t.int8) return peak(cpu::Precision::INT8);
  if (t.precision == cpu::Precision::INT8) return peak(cpu::parse_precision("auto"));
  return peak(t.precision);
}

json BenchReport::to_json() const {
  json peak_json = json::object();
  for (const PeakResult& p : peaks)
    peak_json[cpu::precision_name(p.precision)] = {{"gflops", p.gflops}, {"kernel", p.best_kernel}};
  json cases_json = json::array();
  for (const CaseResult& r : cases) {
    json j = case_to_json(r);
    for (size_t i = 0; i < r.components.size(); ++i) {
      json& c = j["components"][i];
      const PeakResult* p = peak_for(r.components[i]);
      c["peak_percent"] = p && p->gflops > 0 ? 100.0 * c["gflops"].get<double>() / p->gflops : 0.0;
    }
    cases_json.push_back(std::move(j));
  }
  return {{"model", model},
          {"cpu", cpu},
          {"huge_pages", huge_pages},
          {"hardware_threads", hardware_threads},
          {"threads", threads},
          {"quick", quick},
          {"unet_timed_steps", unet_runs},
          {"end_to_end_max_steps", e2e_max_steps},
          {"command", command},
          {"loadavg_start", loadavg_start},
          {"loadavg_end", loadavg_end},
          {"peak", peak_json},
          {"cases", cases_json}};
}

void BenchReport::print_table(std::ostream& out) const {
  out << "sdc bench: " << model << "\n";
  out << "CPU: " << cpu << ", " << hardware_threads << " hardware threads, "
      << (threads > 0 ? std::to_string(threads) : std::string("all")) << " used; load average "
      << format("%.2f", loadavg_start) << " at start, " << format("%.2f", loadavg_end)
      << " at end\n";
  if (!huge_pages.empty())
    out << "Huge pages for activations and packed weights: " << huge_pages << "\n";
  out << "Peak (best large conv/matmul through the same backend, measured now):";
  for (const PeakResult& p : peaks)
    out << " " << cpu::precision_name(p.precision) << " " << format("%.1f", p.gflops)
        << " GFLOP/s (" << p.best_kernel << ");";
  out << "\n\n";

  out << "Components: steady time per run (mean of the timed runs after the first; UNet "
      << unet_runs
      << " steps per batch size); plan = graph build + compile; 1st = first run;\n"
         "            weights/arena = the plan's packed weights and activation arena; load = 1-min "
         "load average after the case\n";
  char line[256];
  std::snprintf(line, sizeof line, "%-9s %-5s %-27s %10s %8s %7s %8s %10s %9s %9s %6s\n", "size",
                "prec", "component", "time", "GFLOP/s", "% peak", "plan s", "1st run", "weights",
                "arena", "load");
  out << line;
  for (const CaseResult& r : cases) {
    for (const ComponentTiming& t : r.components) {
      const PeakResult* p = peak_for(t);
      const double pct = p && p->gflops > 0 ? 100.0 * t.gflops() / p->gflops : 0.0;
      const bool decoder =
          t.component == Component::VaeDecode || t.component == Component::TaesdDecode;
      const std::string title =
          std::string(component_title(t.component)) + (t.int8 && decoder ? " (int8)" : "");
      std::snprintf(line, sizeof line,
                    "%-9s %-5s %-27s %10s %8.1f %6.0f%% %8.2f %10s %9s %9s %6.2f\n",
                    (std::to_string(t.width) + "x" + std::to_string(t.height)).c_str(),
                    cpu::precision_name(t.precision), title.c_str(), time_text(t.ms()).c_str(),
                    t.gflops(), pct, t.compile_s, time_text(t.first_run_ms).c_str(),
                    mib(t.weight_bytes).c_str(), mib(t.arena_bytes).c_str(), r.loadavg_end);
      out << line;
    }
    if (!r.note.empty()) out << "  (" << r.bench_case.name << ": " << r.note << ")\n";
  }

  out << "\nCases: estimated s/image = text encoder x passes + steps x UNet step + VAE decode "
         "from the times above;\n       measured = one image through the generate pipeline (warm "
         "plans; cases of up to "
      << e2e_max_steps
      << " steps);\n       cold = a fresh process's "
         "first image (load + plans + first runs + estimated s/image);\n       warm RSS = peak RSS "
         "with the case's plans compiled and resident (a server), one process per case and "
         "precision;\n       process = one `sdc generate` of the case in a fresh process: "
         "whole-process wall time and peak RSS\n";
  std::snprintf(line, sizeof line, "%-9s %-5s %-8s %5s %5s %6s %9s %9s %8s %8s %10s %9s %11s\n",
                "case", "prec", "sampler", "steps", "cfg", "batch", "estimated", "measured",
                "cold s", "load s", "warm RSS", "process", "process RSS");
  out << line;
  for (const CaseResult& r : cases) {
    const BenchCase& c = r.bench_case;
    const std::string measured = r.end_to_end_s > 0 ? format("%.2f", r.end_to_end_s) : "-";
    const std::string process = r.process_s > 0 ? format("%.2f", r.process_s) : "-";
    const std::string process_rss = r.process_s > 0 ? gib(r.process_peak_rss) : "-";
    std::snprintf(line, sizeof line,
                  "%-9s %-5s %-8s %5d %5.1f %6d %9.2f %9s %8.1f %8.1f %10s %9s %11s\n",
                  c.name.c_str(), cpu::precision_name(r.precision), c.sampler.c_str(), c.steps,
                  double(c.cfg_scale), c.unet_batch(), r.seconds_per_image(), measured.c_str(),
                  r.cold_first_image_s(), r.load_s, gib(r.peak_rss).c_str(), process.c_str(),
                  process_rss.c_str());
    out << line;
  }
  print_taesd_cases(out);
  for (const CaseResult& r : cases) {
    const std::string what = r.bench_case.name + " " + cpu::precision_name(r.precision);
    print_profile(out,
                  "UNet step profile, " + what + " (batch " +
                      std::to_string(r.bench_case.unet_batch()) + ", ",
                  r.unet_profile);
    const ComponentTiming* vae = r.find(Component::VaeDecode);
    print_profile(out,
                  "VAE decode profile, " + what + (vae && vae->int8 ? " (int8 VAE)" : "") + " (",
                  r.vae_profile);
    const ComponentTiming* taesd = r.find(Component::TaesdDecode);
    print_profile(
        out, "TAESD decode profile, " + what + (taesd && taesd->int8 ? " (int8 TAESD)" : "") + " (",
        r.taesd_profile);
  }
  if (!command.empty()) out << "\nCommand: " << command << "\n";
}

}  // namespace sdc::bench
