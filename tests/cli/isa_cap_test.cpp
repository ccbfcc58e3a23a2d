// The AVX2-only path, tested on any machine: DNNL_MAX_CPU_ISA=AVX2 caps oneDNN and sdc's own
// kernels alike, `--precision auto` then plans f32, bf16 and int8 are refused as on an AVX2 CPU
// without VNNI, and a fixture pipeline still matches diffusers within its tolerance.
#include <gtest/gtest.h>

#include <cstdlib>

#include "common/fixtures.h"
#include "io/safetensors.h"

namespace sdc {
namespace {

struct IsaCap {
  explicit IsaCap(const char* isa) { setenv("DNNL_MAX_CPU_ISA", isa, 1); }
  ~IsaCap() { unsetenv("DNNL_MAX_CPU_ISA"); }
};

TEST(IsaCap, Avx2PathMatchesTheDdimPipeline) {
  const nlohmann::json& c = test::find_case("pipeline/txt2img_ddim");
  test::TempDir dir;
  std::vector<std::string> args = test::tiny_generate(
      {"--precision", "auto", "-o", dir.file("out.png"), "--save-latents", dir.file("l.st")});
  const std::vector<std::string> own = test::case_args(c);
  args.insert(args.end(), own.begin(), own.end());
  args.insert(args.end(), {"--sampler", "ddim"});
  IsaCap cap("AVX2");
  const test::CommandResult r = test::run_sdc(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<float> mine =
      io::read_safetensors(dir.file("l.st")).tensors.get("latents").to_f32();
  const std::vector<float> all =
      test::ref_f32(c["tensors"]["latents_after_each_step"].get<std::string>());
  ASSERT_GE(all.size(), mine.size());
  const std::vector<float> last(all.end() - std::ptrdiff_t(mine.size()), all.end());
  EXPECT_LE(test::rel_max_diff(mine.data(), last), test::tolerance("pipeline_latents"));
}

TEST(IsaCap, Bf16IsRefusedUnderAnAvx2Cap) {
  test::TempDir dir;
  IsaCap cap("AVX2");
  const test::CommandResult r =
      test::run_sdc(test::tiny_generate({"--precision", "bf16", "-p", "x", "-W", "64", "-H", "64",
                                         "--steps", "1", "-o", dir.file("out.png")}));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("bf16 needs AVX-512"), std::string::npos) << r.err;
  EXPECT_TRUE(dir.list().empty());
}

TEST(IsaCap, Int8IsRefusedWithoutAVnniDotProduct) {
  // AVX2 and AVX-512 without VNNI sum int8 pairs in 16 bits; oneDNN halves the weights there,
  // which the W8A8 steps do not account for: refused rather than silently less accurate.
  for (const char* isa : {"AVX2", "AVX512_CORE"}) {
    test::TempDir dir;
    IsaCap cap(isa);
    const test::CommandResult r =
        test::run_sdc(test::tiny_generate({"--precision", "int8", "-p", "x", "-W", "64", "-H", "64",
                                           "--steps", "1", "-o", dir.file("out.png")}));
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("int8 needs AVX512-VNNI or AVX-VNNI"), std::string::npos) << r.err;
    EXPECT_TRUE(dir.list().empty());
    // The int8 image decoders likewise, refused at load (not after the sampling).
    const test::CommandResult v =
        test::run_sdc(test::tiny_generate({"--vae-precision", "int8", "-p", "x", "-W", "64", "-H",
                                           "64", "--steps", "1", "-o", dir.file("out.png")}));
    EXPECT_EQ(v.exit_code, 2) << v.err;
    EXPECT_NE(v.err.find("--vae-precision: expected float decoders on this CPU (int8 needs "
                         "AVX512-VNNI or AVX-VNNI"),
              std::string::npos)
        << v.err;
    EXPECT_EQ(v.err.find("step 1/1"), std::string::npos) << v.err;
    EXPECT_TRUE(dir.list().empty());
  }
}

TEST(IsaCap, EveryPrecisionRunsOnOneDnnsFastKernels) {
  // oneDNN answers a descriptor no fast kernel takes with its reference loops, silently: an int8
  // linear with a residual did so on AVX-VNNI CPUs (a 256x256 UNet step took minutes). sdc warns
  // when a plan holds such a step; no precision a CPU class takes may hold one.
  struct Run {
    const char* isa;
    std::vector<std::string> flags;
  };
  const std::vector<Run> runs = {
      {"AVX2", {"--precision", "f32"}},
      {"AVX2_VNNI", {"--precision", "int8", "--vae-precision", "int8"}},
      {"AVX512_CORE", {"--precision", "bf16"}},
      {"AVX512_CORE_VNNI", {"--precision", "int8", "--vae-precision", "int8"}},
      {"ALL", {"--precision", "int8", "--vae-precision", "int8"}},
      {"ALL", {"--precision", "bf16"}},
      {"ALL", {"--precision", "auto"}},
  };
  int ran = 0;
  for (const Run& run : runs) {
    test::TempDir dir;
    IsaCap cap(run.isa);
    std::vector<std::string> args = test::tiny_generate(
        {"-p", "x", "-W", "64", "-H", "64", "--steps", "2", "-o", dir.file("out.png")});
    args.insert(args.end(), run.flags.begin(), run.flags.end());
    const test::CommandResult r = test::run_sdc(args);
    if (r.exit_code == 2 && r.err.find("on this CPU") != std::string::npos)
      continue;  // this CPU lacks the cap's ISA (no AVX-VNNI, say): refused as it should be
    ++ran;
    EXPECT_EQ(r.exit_code, 0) << run.isa << ": " << r.err;
    EXPECT_EQ(r.err.find("reference code"), std::string::npos) << run.isa << ": " << r.err;
  }
  EXPECT_GE(ran, 2);  // f32 under AVX2 and auto natively run on any CPU sdc runs on
}

}  // namespace
}  // namespace sdc
