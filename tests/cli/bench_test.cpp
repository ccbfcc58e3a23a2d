// `sdc bench`: a quick run on the tiny fixture model produces every figure (positive) in its JSON
// and table, TAESD's included (random weights, or the model's with --taesd); bad option values
// exit 2 with one line; which process measures which component; the child-result JSON round-trips
// and a malformed one is refused; --write-taesd writes a TAESD folder sdc loads. Nothing about
// time is asserted.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>

#include "backend/cpu/plan.h"
#include "backend/cpu/prepacked_weights.h"
#include "bench/benchmark.h"
#include "common/error.h"
#include "common/fixtures.h"
#include "model/taesd_file.h"

namespace sdc::test {
namespace {

using bench::Component;
using nlohmann::json;

int line_count(const std::string& s) {
  return int(std::count(s.begin(), s.end(), '\n'));
}

void expect_positive(const json& j, const char* key, const std::string& where) {
  ASSERT_TRUE(j.contains(key)) << where << ": no " << key;
  ASSERT_TRUE(j[key].is_number()) << where << ": " << key << " = " << j[key].dump();
  EXPECT_GT(j[key].get<double>(), 0.0) << where << ": " << key;
}

TEST(BenchCommand, QuickRunOnTinyModelReportsEveryFigure) {
  TempDir dir;
  // "both": f32 and bf16, or f32 alone where bf16 is refused (AVX2 CPUs); the profiles name the
  // last of them.
  const bool bf16 = cpu::precision_available(cpu::Precision::BF16);
  const std::string last = bf16 ? "bf16" : "f32";
  const std::string json_path = dir.file("bench.json"), steps_path = dir.file("steps.tsv");
  CommandResult r =
      run_sdc({"bench", "--quick", "-m", tiny("model.safetensors"), "--model-config",
               tiny("diffusers"), "--control-net", tiny("controlnet.safetensors"), "--precision",
               "both", "--profile", "--profile-steps", steps_path, "--json", json_path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("UNet step, batch 1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("lcm256"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("peak RSS"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("UNet step profile, lcm256 " + last), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("VAE decode profile, lcm256 " + last), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("TAESD decode profile, lcm256 " + last), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("TAESD decode"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("TAESD encode"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("LCM 4 steps + TAESD"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("process RSS"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Huge pages for activations and packed weights: "), std::string::npos)
      << r.out;

  std::ifstream in(json_path);
  ASSERT_TRUE(in.good());
  const json j = json::parse(in);
  EXPECT_EQ(j.at("model").get<std::string>(), tiny("model.safetensors"));
  EXPECT_TRUE(j.at("quick").get<bool>());
  expect_positive(j, "hardware_threads", "report");
  // The bench process's own decision (its probe's figures differ from this process's).
  const std::string huge = j.at("huge_pages").get<std::string>();
  EXPECT_TRUE(huge.starts_with("advised") || huge.starts_with("not advised") ||
              huge.starts_with("left to the system") || huge.starts_with("no transparent"))
      << huge;
  for (const std::string& p : {std::string("f32"), last})
    expect_positive(j.at("peak").at(p), "gflops", p);

  const json& cases = j.at("cases");
  ASSERT_EQ(cases.size(), bf16 ? 2u : 1u);  // --quick: lcm256 only, at f32 (and bf16)
  std::set<std::string> precisions;
  for (const json& c : cases) {
    const std::string where =
        c.at("case").get<std::string>() + " " + c.at("precision").get<std::string>();
    EXPECT_EQ(c.at("case"), "lcm256");
    EXPECT_EQ(c.at("width"), 256);
    EXPECT_EQ(c.at("unet_batch"), 1);
    precisions.insert(c.at("precision").get<std::string>());
    for (const char* key :
         {"load_s", "rss_after_load_bytes", "peak_rss_bytes", "s_per_image_estimated",
          "s_per_image_measured", "cold_first_image_s", "steps"})
      expect_positive(c, key, where);
    for (const char* key : {"s", "text_encoder_ms", "sampling_ms", "vae_decode_ms"})
      expect_positive(c.at("end_to_end"), key, where + " end_to_end");
    // No --taesd: a random full-size TAESD stands in.
    EXPECT_EQ(c.at("taesd"), "random (seed 3)") << where;
    expect_positive(c, "s_per_image_taesd_estimated", where);
    for (const char* key : {"s", "sampling_ms", "taesd_decode_ms"})
      expect_positive(c.at("end_to_end_taesd"), key, where + " end_to_end_taesd");
    // One `sdc generate` of the case in a fresh process, with the VAE and with TAESD: a process
    // that loads the model holds at least its UNet's weights at some point.
    for (const char* run : {"process", "process_taesd"}) {
      expect_positive(c.at(run), "s", where + " " + run);
      EXPECT_GT(c.at(run).at("peak_rss_bytes").get<double>(), 1 << 20) << where << " " << run;
    }
    EXPECT_GE(c.at("peak_rss_bytes").get<double>(), c.at("rss_after_load_bytes").get<double>());
    EXPECT_EQ(c.at("note"), "");
    ASSERT_FALSE(c.at("unet_profile").empty()) << where;
    double profiled_macs = 0;
    for (const json& e : c.at("unet_profile")) {
      expect_positive(e, "count", where + " profile");
      profiled_macs += e.at("macs").get<double>();
    }
    EXPECT_GT(profiled_macs, 0) << where;
    EXPECT_FALSE(c.at("vae_profile").empty()) << where;
    EXPECT_FALSE(c.at("taesd_profile").empty()) << where;
    std::set<std::string> seen;
    for (const json& t : c.at("components")) {
      const std::string name = where + " " + t.at("component").get<std::string>();
      seen.insert(t.at("component").get<std::string>());
      for (const char* key : {"ms", "cpu_ms", "compile_s", "first_run_ms", "macs", "gflops",
                              "peak_percent", "weight_bytes", "arena_bytes"})
        expect_positive(t, key, name);
      EXPECT_EQ(t.at("run_ms").size(), 1u) << name;
    }
    EXPECT_EQ(seen, (std::set<std::string>{"text_encoder", "unet_batch1", "unet_batch2",
                                           "vae_decode", "vae_encode", "controlnet_unet_batch1",
                                           "taesd_decode", "taesd_encode"}))
        << where;
  }
  EXPECT_EQ(precisions, (std::set<std::string>{"f32", last}));

  // --profile-steps: a header, then every profiled step of each (case, precision, plan), as many
  // as the profile tables count, with its layer and a time.
  std::ifstream steps(steps_path);
  std::string line;
  ASSERT_TRUE(std::getline(steps, line));
  EXPECT_EQ(line, "case\tprecision\tplan\tindex\tkind\tlayer\tms\tcpu_ms\tgflops");
  std::map<std::string, int> per_plan;
  bool some_layer = false;
  while (std::getline(steps, line)) {
    std::vector<std::string> f;
    for (size_t at = 0;;) {
      const size_t tab = line.find('\t', at);
      f.push_back(line.substr(at, tab - at));
      if (tab == std::string::npos) break;
      at = tab + 1;
    }
    ASSERT_EQ(f.size(), 9u) << line;
    EXPECT_EQ(f[0], "lcm256") << line;
    EXPECT_EQ(std::stoi(f[3]), per_plan[f[1] + " " + f[2]]++) << line;  // in run order
    EXPECT_FALSE(f[4].empty()) << line;
    some_layer |= f[5].find("input_blocks") != std::string::npos;
    EXPECT_GE(std::stod(f[6]), 0.0) << line;
  }
  EXPECT_TRUE(some_layer);
  for (const json& c : cases) {
    const std::string p = c.at("precision").get<std::string>();
    int counted = 0;
    for (const json& e : c.at("unet_profile")) counted += e.at("count").get<int>();
    EXPECT_EQ(per_plan[p + " unet batch 1"], counted) << p;
    EXPECT_GT(per_plan[p + " vae decode"], 0) << p;
  }
}

TEST(BenchCommand, ModelWithoutControlNetSkipsTheControlNetStepWithANote) {
  TempDir dir;
  CommandResult r = run_sdc({"bench", "--quick", "-m", tiny("model.safetensors"), "--model-config",
                             tiny("diffusers"), "--taesd", tiny("taesd"), "--precision", "f32",
                             "--e2e-max-steps", "0", "--json", dir.file("b.json")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::ifstream in(dir.file("b.json"));
  const json j = json::parse(in);
  ASSERT_EQ(j.at("cases").size(), 1u);
  const json& c = j.at("cases")[0];
  EXPECT_TRUE(c.at("end_to_end").is_null());  // --e2e-max-steps 0
  EXPECT_TRUE(c.at("s_per_image_measured").is_null());
  EXPECT_TRUE(c.at("end_to_end_taesd").is_null());
  EXPECT_EQ(c.at("taesd"), "the model's");  // --taesd reached the measuring process
  std::set<std::string> seen;
  for (const json& t : c.at("components")) seen.insert(t.at("component").get<std::string>());
  EXPECT_TRUE(seen.count("taesd_decode") && seen.count("taesd_encode"));
  EXPECT_NE(c.at("note").get<std::string>().find("no ControlNet"), std::string::npos);
  for (const json& t : c.at("components")) EXPECT_NE(t.at("component"), "controlnet_unet_batch1");
}

TEST(BenchCommand, BadPrecisionExits2WithOneLine) {
  CommandResult r = run_sdc({"bench", "--precision", "f16"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "sdc: --precision: expected one of f32, bf16, auto, int8, both, all, found 'f16'\n");
}

TEST(BenchCommand, BadCasesExit2WithOneLine) {
  for (const char* cases : {"lcm1024", "lcm512,", "lcm512,,lcm256", ""}) {
    CommandResult r = run_sdc({"bench", "--cases", cases});
    EXPECT_EQ(r.exit_code, 2) << cases;
    EXPECT_EQ(line_count(r.err), 1) << r.err;
    EXPECT_NE(
        r.err.find("--cases: expected a comma-separated list of lcm512, euler512, lcm256, or all"),
        std::string::npos)
        << r.err;
  }
}

TEST(BenchCommand, OtherBadValuesExit2WithOneLine) {
  TempDir dir;
  const std::vector<std::pair<std::vector<std::string>, std::string>> bad = {
      {{"bench", "--unet-steps", "0"}, "--unet-steps: expected 1 or more, found 0"},
      {{"bench", "--threads", "-1"}, "--threads: expected 0 (all cores) or more, found -1"},
      {{"bench", "--e2e-max-steps", "-1"}, "--e2e-max-steps: expected 0 or more, found -1"},
      {{"bench", "--json", dir.file("missing/b.json")},
       "--json: expected an existing output directory"},
      {{"bench", "--profile-steps", dir.file("s.tsv")},
       "--profile-steps: expected --profile beside it, found no --profile"},
      {{"bench", "--profile", "--profile-steps", dir.file("missing/s.tsv")},
       "--profile-steps: expected a writable file"},
  };
  for (const auto& [args, message] : bad) {
    CommandResult r = run_sdc(args);
    EXPECT_EQ(r.exit_code, 2) << args[1];
    EXPECT_EQ(line_count(r.err), 1) << r.err;
    EXPECT_NE(r.err.find(message), std::string::npos) << r.err;
  }
}

TEST(BenchCommand, MissingModelExits2NamingIt) {
  TempDir dir;
  CommandResult r =
      run_sdc({"bench", "--quick", "--precision", "f32", "-m", dir.file("none.safetensors")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "sdc: " + dir.file("none.safetensors") +
                ": expected an existing model file or diffusers folder, found No such file or "
                "directory\n");
}

TEST(BenchPlan, EachSizeMeasuresEveryComponentOnce) {
  const auto cases = bench::parse_bench_cases("all", "--cases");
  ASSERT_EQ(cases.size(), 3u);
  const auto extras = bench::plan_extras(cases);
  // lcm512 runs UNet batch 1 itself and euler512 batch 2; the ControlNet step goes to 512x512.
  EXPECT_EQ(extras[0], (std::vector<Component>{Component::VaeEncode, Component::TaesdEncode,
                                               Component::ControlNetStep}));
  EXPECT_TRUE(extras[1].empty());
  EXPECT_EQ(extras[2], (std::vector<Component>{Component::UNetBatch2, Component::VaeEncode,
                                               Component::TaesdEncode}));

  const auto one = bench::plan_extras(bench::parse_bench_cases("lcm256", "--cases"));
  EXPECT_EQ(one[0], (std::vector<Component>{Component::UNetBatch2, Component::VaeEncode,
                                            Component::TaesdEncode, Component::ControlNetStep}));
  const auto euler = bench::plan_extras(bench::parse_bench_cases("euler512", "--cases"));
  EXPECT_EQ(euler[0], (std::vector<Component>{Component::UNetBatch1, Component::VaeEncode,
                                              Component::TaesdEncode, Component::ControlNetStep}));
}

TEST(BenchPlan, CasesKeepTheStandardOrderAndPrecisionsParse) {
  const auto cases = bench::parse_bench_cases("lcm256,lcm512", "--cases");
  ASSERT_EQ(cases.size(), 2u);
  EXPECT_EQ(cases[0].name, "lcm512");
  EXPECT_EQ(cases[1].name, "lcm256");
  EXPECT_EQ(bench::standard_cases()[1].unet_batch(), 2);
  EXPECT_EQ(bench::standard_cases()[1].text_encoder_passes(), 2);
  // bf16 only where Plan::compile takes it (AVX-512); an AVX2 CPU measures f32 alone.
  EXPECT_EQ(bench::parse_bench_precisions("both", "--precision"),
            cpu::precision_available(cpu::Precision::BF16)
                ? (std::vector<cpu::Precision>{cpu::Precision::F32, cpu::Precision::BF16})
                : (std::vector<cpu::Precision>{cpu::Precision::F32}));
  EXPECT_EQ(bench::parse_bench_precisions("bf16", "--precision"),
            (std::vector<cpu::Precision>{cpu::Precision::BF16}));
}

bench::CaseResult sample_result() {
  bench::CaseResult r;
  r.bench_case = bench::standard_cases()[1];  // euler512: 20 steps, CFG batch 2, 2 text passes
  r.precision = cpu::Precision::BF16;
  r.load_s = 2;
  r.rss_after_load = 1000;
  r.peak_rss = 3000;
  auto timing = [](Component c, double ms) {
    bench::ComponentTiming t;
    t.component = c;
    t.width = t.height = 512;
    t.precision = cpu::Precision::BF16;
    t.compile_s = 1;
    t.first_run_ms = ms + 100;
    t.run_ms = {ms - 10, ms + 10};
    t.cpu_ms = 2 * ms;
    t.macs = int64_t(ms * 1e6);
    t.weight_bytes = 7;
    t.arena_bytes = 8;
    t.scratch_bytes = 9;
    return t;
  };
  r.components = {timing(Component::TextEncoder, 50), timing(Component::UNetBatch2, 3000),
                  timing(Component::VaeDecode, 4000), timing(Component::TaesdDecode, 300)};
  r.end_to_end_s = 61;
  r.process_s = 66;
  r.process_peak_rss = 2500;
  r.process_taesd_s = 62;
  r.process_taesd_peak_rss = 2400;
  r.e2e_text_encoder_ms = 99;
  r.e2e_sampling_ms = 60000;
  r.e2e_vae_decode_ms = 900;
  r.e2e_taesd_s = 57;
  r.e2e_taesd_sampling_ms = 56000;
  r.e2e_taesd_decode_ms = 280;
  r.taesd = "random (seed 3)";
  r.unet_profile = {{"Conv2d+sum", 30, 1500, 2900, 1000000}, {"Attention", 16, 700, 1400, 0}};
  r.vae_profile = {{"Conv2d.int8+sum", 12, 800, 1600, 2000000}};
  r.taesd_profile = {{"Conv2d.int8+relu", 9, 60, 118, 900000}};
  r.components[0].int8 = true;
  return r;
}

// --vae-precision int8: the VAE and TAESD decode rows say so and are measured against the int8
// peak (measured even for an f32 run), float rows of both follow for comparison, the VAE profile
// shows int8 convolutions, and the fresh generate process gets the option too.
TEST(BenchCommand, VaeInt8IsMeasuredAgainstTheInt8Peak) {
  if (!cpu::isa_has_int8_dot()) GTEST_SKIP() << "no VNNI: int8 plans are refused here";
  TempDir dir;
  const std::string json_path = dir.file("bench.json");
  CommandResult r = run_sdc({"bench", "--quick", "-m", tiny("model.safetensors"), "--model-config",
                             tiny("diffusers"), "--precision", "f32", "--vae-precision", "int8",
                             "--profile", "--json", json_path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("VAE decode (int8)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("VAE decode profile, lcm256 f32 (int8 VAE)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("TAESD decode profile, lcm256 f32 (int8 TAESD)"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("--vae-precision int8"), std::string::npos) << r.out;  // the command line
  std::ifstream in(json_path);
  const json j = json::parse(in);
  expect_positive(j.at("peak").at("int8"), "gflops", "int8 peak");
  const json& c = j.at("cases").at(0);
  // The pipeline's decoders at int8, then the float ones measured beside them; nothing else int8.
  std::map<std::string, std::vector<bool>> int8_of;
  for (const json& t : c.at("components")) {
    int8_of[t.at("component").get<std::string>()].push_back(t.at("int8").get<bool>());
    expect_positive(t, "peak_percent", t.at("component").get<std::string>());
  }
  EXPECT_EQ(int8_of["vae_decode"], (std::vector<bool>{true, false}));
  EXPECT_EQ(int8_of["taesd_decode"], (std::vector<bool>{true, false}));
  EXPECT_EQ(int8_of["unet_batch1"], (std::vector<bool>{false}));
  EXPECT_NE(r.out.find("TAESD decode (int8)"), std::string::npos) << r.out;
  bool int8_conv = false;
  for (const json& e : c.at("vae_profile"))
    int8_conv |= e.at("kind").get<std::string>().starts_with("Conv2d.int8");
  EXPECT_TRUE(int8_conv) << c.at("vae_profile").dump();
  int8_conv = false;
  for (const json& e : c.at("taesd_profile"))
    int8_conv |= e.at("kind").get<std::string>().starts_with("Conv2d.int8");
  EXPECT_TRUE(int8_conv) << c.at("taesd_profile").dump();
  expect_positive(c.at("process"), "s", "process");
}

TEST(BenchResult, EstimatesFromComponentTimes) {
  const bench::CaseResult r = sample_result();
  EXPECT_DOUBLE_EQ(r.seconds_per_image(), (2 * 50 + 20 * 3000 + 4000) / 1000.0);
  EXPECT_DOUBLE_EQ(r.seconds_per_image_taesd(), (2 * 50 + 20 * 3000 + 300) / 1000.0);
  // + load 2 s + three plans of 1 s + three first runs each 100 ms slower than steady.
  EXPECT_DOUBLE_EQ(r.cold_first_image_s(), r.seconds_per_image() + 2 + 3 + 0.3);
  EXPECT_DOUBLE_EQ(r.components[1].gflops(), 2.0 * 3000e6 / (3000 * 1e6));
}

TEST(BenchResult, JsonRoundTripsAndMalformedIsRefused) {
  const bench::CaseResult r = sample_result();
  const json j = bench::case_to_json(r);
  const bench::CaseResult back = bench::case_from_json(j);
  EXPECT_EQ(bench::case_to_json(back), j);

  json missing = j;
  missing.erase("peak_rss_bytes");
  try {
    bench::case_from_json(missing);
    FAIL() << "accepted a result without peak_rss_bytes";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "benchmark result: peak_rss_bytes: expected a value, found none");
  }
  json bad_component = j;
  bad_component["components"][0]["component"] = "unet_batch3";
  EXPECT_THROW(bench::case_from_json(bad_component), Error);
  json no_taesd = j;
  no_taesd.erase("end_to_end_taesd");
  EXPECT_THROW(bench::case_from_json(no_taesd), Error);
  // A result from before the TAESD profile: read, with none.
  json older = j;
  older.erase("taesd_profile");
  EXPECT_TRUE(bench::case_from_json(older).taesd_profile.empty());
}

TEST(BenchCommand, WriteTaesdWritesAnAutoencoderTinyFolderSdcLoads) {
  TempDir dir;
  const std::string taesd = dir.file("taesd");
  CommandResult r = run_sdc({"bench", "--write-taesd", taesd});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "");  // nothing measured
  std::ifstream in(taesd + "/config.json");
  EXPECT_EQ(json::parse(in).at("_class_name"), "AutoencoderTiny");
  WeightMap weights;
  const model::TaesdParts parts = model::load_taesd(taesd, weights, "--taesd");
  EXPECT_TRUE(parts.decoder);
  EXPECT_TRUE(parts.encoder);
}

TEST(BenchCommand, WriteCheckpointRefusesAModelAndAMissingFolder) {
  TempDir dir;
  const std::vector<std::pair<std::vector<std::string>, std::string>> bad = {
      {{"bench", "--write-checkpoint", dir.file("m.safetensors"), "-m", tiny("model.safetensors")},
       "--write-checkpoint: expected no -m"},
      {{"bench", "--write-checkpoint", dir.file("missing/m.safetensors")},
       "--write-checkpoint: expected an existing output directory"},
  };
  for (const auto& [args, message] : bad) {
    CommandResult r = run_sdc(args);
    EXPECT_EQ(r.exit_code, 2) << args[2];
    EXPECT_EQ(line_count(r.err), 1) << r.err;
    EXPECT_NE(r.err.find(message), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace sdc::test
