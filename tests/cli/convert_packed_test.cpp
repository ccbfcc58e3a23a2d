// `sdc convert --target`: the packed section is written, used at load (same latents as the
// portable file, weights mapped instead of packed), ignored by the model layer, refused for an
// unknown ISA name with nothing written, and never applied to another file's tensors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>

#include <cstring>
#include <fstream>
#include <sstream>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/plan.h"
#include "backend/cpu/prepacked_weights.h"
#include "backend/cpu/weight_cache.h"
#include "common/error.h"
#include "common/fixtures.h"
#include "io/gguf.h"
#include "io/image.h"
#include "io/open_file.h"
#include "model/classify.h"
#include "model/compiled_model.h"
#include "pipeline/model_bundle.h"
#include "pipeline/packed_section.h"
#include "pipeline/plan_cache.h"

namespace sdc {
namespace {

std::vector<std::string> convert_args(const std::string& out, bool packed) {
  std::vector<std::string> a = {"convert",
                                "-u",
                                test::tiny("model.safetensors"),
                                "--model-config",
                                test::tiny("diffusers"),
                                "-t",
                                "bf16",
                                "-s",
                                "64",
                                "64",
                                "-o",
                                out};
  if (packed) {
    a.push_back("--target");
    a.push_back("native");
  }
  return a;
}

std::vector<std::string> generate_args(const std::string& model, const std::string& latents,
                                       const std::string& png) {
  return {"generate", "-m", model,    "-p", "a cat",     "-W",    "64", "-H", "64",
          "--steps",  "3",  "--seed", "5",  "--sampler", "euler", "-o", png,  "--save-latents",
          latents};
}

TEST(ConvertPacked, SameLatentsWithWeightsMappedPacked) {
  test::TempDir dir;
  const std::string plain = dir.file("plain.gguf"), packed = dir.file("packed.gguf");
  ASSERT_EQ(test::run_sdc(convert_args(plain, false)).exit_code, 0);
  const auto c = test::run_sdc(convert_args(packed, true));
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_NE(c.err.find("packed "), std::string::npos) << c.err;

  const io::GgufFile g = io::read_gguf(packed);
  ASSERT_NE(g.find("sdc.packed.isa"), nullptr);
  EXPECT_EQ(g.find("sdc.packed.isa")->string_value, cpu::effective_isa_name());
  const size_t n = g.find("sdc.packed.key")->items.size();
  EXPECT_GT(n, 100u);
  EXPECT_EQ(g.find("sdc.packed.tensor")->items.size(), n);
  // The model layer sees the same model as in the portable file.
  const model::Classification cp = model::classify(io::open_tensor_file(packed));
  const model::Classification cu = model::classify(io::open_tensor_file(plain));
  EXPECT_EQ(model::kind_name(cp.kind), model::kind_name(cu.kind));
  EXPECT_TRUE(cp.has_unet && cp.has_vae && cp.has_text_encoder);

  const auto a = test::run_sdc(generate_args(plain, dir.file("a.safetensors"), dir.file("a.png")));
  const auto b = test::run_sdc(generate_args(packed, dir.file("b.safetensors"), dir.file("b.png")));
  ASSERT_EQ(a.exit_code, 0) << a.err;
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_EQ(a.err.find("already packed"), std::string::npos);
  EXPECT_NE(b.err.find("weights mapped already packed"), std::string::npos) << b.err;
  EXPECT_EQ(b.err.find("packed again"), std::string::npos) << b.err;
  const io::TensorFile la = io::open_tensor_file(dir.file("a.safetensors"));
  const io::TensorFile lb = io::open_tensor_file(dir.file("b.safetensors"));
  const TensorRef& ta = la.tensors.get("latents");
  const TensorRef& tb = lb.tensors.get("latents");
  ASSERT_EQ(ta.nbytes, tb.nbytes);
  EXPECT_EQ(std::memcmp(ta.data, tb.data, ta.nbytes), 0);

  // Planned at another precision, the layouts differ: packed at load, and the log says so. (An
  // AVX2 CPU packed the file for f32, the one precision it plans.)
  if (cpu::parse_precision("auto") != cpu::Precision::F32) {
    auto f32_args = generate_args(packed, dir.file("c.safetensors"), dir.file("c.png"));
    f32_args.insert(f32_args.end(), {"--precision", "f32"});
    const auto f = test::run_sdc(f32_args);
    ASSERT_EQ(f.exit_code, 0) << f.err;
    EXPECT_NE(f.err.find("packed again: the file stores them in another layout"), std::string::npos)
        << f.err;
  }

  // Packing a packed file again replaces its section instead of stacking a second one.
  const auto again = test::run_sdc({"convert", "-u", packed, "-t", "bf16", "-s", "64", "64",
                                    "--target", "native", "-o", dir.file("again.gguf")});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  const io::GgufFile g2 = io::read_gguf(dir.file("again.gguf"));
  EXPECT_EQ(g2.find("sdc.packed.key")->items.size(), n);
}

// Planning from a packed file reads no source tensor: every weight a plan uses, down to the
// biases and norm weights, is mapped from the packed section (cold, each source read would pull
// a 2 MiB page-cache folio from disk), so the shared cache packs nothing.
TEST(ConvertPacked, PlansFromAPackedFileTakeEveryWeightFromItsSection) {
  test::TempDir dir;
  const std::string packed = dir.file("packed.gguf");
  const auto c = test::run_sdc(convert_args(packed, true));
  ASSERT_EQ(c.exit_code, 0) << c.err;
  cpu::PrepackedWeights::global().clear();
  pipeline::BundleOptions o;
  o.model = packed;
  std::ostringstream log;
  const pipeline::ModelBundle b = pipeline::load_bundle(o, log);
  cpu::PlanOptions po;
  po.precision = cpu::parse_precision("auto");  // what the file was packed for
  {
    pipeline::PlanCache plans(b.model, po);
    plans.text_encoder(1, 1);
    plans.unet(2, 8, 8, 77, false);
    plans.vae_decoder(1, 8, 8);
    EXPECT_GT(cpu::PrepackedWeights::global().hits(), 100u);
    EXPECT_EQ(cpu::PrepackedWeights::global().misses(), 0u);
    EXPECT_EQ(cpu::WeightCache::global().live_entries(), 0u)
        << "weights packed at load instead of mapped from the file";
  }
  cpu::PrepackedWeights::global().clear();
}

// The tiny model converted twice into `dir`: f16.gguf (plain f16) and int8.gguf (`-t type`, packed
// for this CPU); the second read back.
io::GgufFile convert_plain_and_int8(const test::TempDir& dir, const std::string& type) {
  auto args = convert_args(dir.file("f16.gguf"), false);
  args[6] = "f16";
  EXPECT_EQ(test::run_sdc(args).exit_code, 0);
  args = convert_args(dir.file("int8.gguf"), true);
  args[6] = type;
  const auto c = test::run_sdc(args);
  EXPECT_EQ(c.exit_code, 0) << c.err;
  EXPECT_NE(c.err.find("int8"), std::string::npos) << c.err;
  return io::read_gguf(dir.file("int8.gguf"));
}

// -t unet=int8: stored f16, marked (sdc.compute.unet) so that --precision auto runs the UNet W8A8,
// and packed at INT8 by --target: the same latents as the f16 file generated with --precision
// int8, with the int8 weights mapped from the file.
TEST(ConvertPacked, Int8UNetIsMarkedPackedAndFollowedByAuto) {
  if (!cpu::isa_has_int8_dot()) GTEST_SKIP() << "no VNNI: int8 plans are refused here";
  test::TempDir dir;
  const std::string f16 = dir.file("f16.gguf"), int8 = dir.file("int8.gguf");
  const io::GgufFile g = convert_plain_and_int8(dir, "unet=int8");
  ASSERT_NE(g.find("sdc.compute.unet"), nullptr);
  EXPECT_EQ(g.find("sdc.compute.unet")->string_value, "int8");
  EXPECT_EQ(g.find("sdc.precision.unet")->string_value, "f16");
  EXPECT_EQ(g.find("sdc.packed.precision")->string_value, "int8");
  size_t int8_weights = 0;
  for (const auto& f : g.find("sdc.packed.format")->items)
    int8_weights += f.string_value.rfind("dnnl int8 ", 0) == 0;
  EXPECT_GT(int8_weights, 50u);

  auto generate = [&](const std::string& model, const std::string& name,
                      const std::string& precision) {
    auto a = generate_args(model, dir.file(name + ".safetensors"), dir.file(name + ".png"));
    a.insert(a.end(), {"--precision", precision});
    const auto r = test::run_sdc(a);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const io::TensorFile f = io::open_tensor_file(dir.file(name + ".safetensors"));
    const TensorRef& t = f.tensors.get("latents");
    const auto* p = static_cast<const uint8_t*>(t.data);
    return std::make_pair(r.err, std::vector<uint8_t>(p, p + t.nbytes));
  };
  const auto [auto_log, auto_latents] = generate(int8, "auto", "auto");
  EXPECT_NE(auto_log.find("UNet int8 (compiled with -t unet=int8)"), std::string::npos) << auto_log;
  EXPECT_NE(auto_log.find("weights mapped already packed"), std::string::npos) << auto_log;
  const auto [asked_log, asked_latents] = generate(f16, "asked", "int8");
  EXPECT_EQ(auto_latents, asked_latents);
  const auto [float_log, float_latents] = generate(f16, "float", "auto");
  EXPECT_NE(float_latents, auto_latents);
  // An explicit precision wins over the file's mark.
  const auto [f32_log, f32_latents] = generate(int8, "f32", "f32");
  EXPECT_EQ(f32_log.find("UNet int8"), std::string::npos) << f32_log;
}

// -t vae=int8: the VAE stored f16 and marked (sdc.compute.vae), its decoder's int8 weights packed
// by --target while the UNet stays float; `--precision auto` follows the mark — the same image as
// the f16 file generated with --vae-precision int8, and the same latents as without it.
TEST(ConvertPacked, Int8VaeIsMarkedPackedAndFollowedByAuto) {
  if (!cpu::isa_has_int8_dot()) GTEST_SKIP() << "no VNNI: int8 plans are refused here";
  test::TempDir dir;
  const std::string f16 = dir.file("f16.gguf"), int8 = dir.file("int8.gguf");
  const io::GgufFile g = convert_plain_and_int8(dir, "vae=int8");
  ASSERT_NE(g.find("sdc.compute.vae"), nullptr);
  EXPECT_EQ(g.find("sdc.compute.vae")->string_value, "int8");
  EXPECT_EQ(g.find("sdc.compute.unet"), nullptr);
  EXPECT_EQ(g.find("sdc.precision.vae")->string_value, "f16");
  size_t int8_vae = 0, int8_other = 0;
  const auto& keys = g.find("sdc.packed.key")->items;
  const auto& formats = g.find("sdc.packed.format")->items;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (formats[i].string_value.rfind("dnnl int8 ", 0) != 0) continue;
    (keys[i].string_value.find("decoder.") != std::string::npos ? int8_vae : int8_other)++;
  }
  EXPECT_GT(int8_vae, 10u);
  EXPECT_EQ(int8_other, 0u);

  auto generate = [&](const std::string& model, const std::string& name,
                      std::vector<std::string> extra) {
    auto a = generate_args(model, dir.file(name + ".safetensors"), dir.file(name + ".png"));
    a.insert(a.end(), extra.begin(), extra.end());
    const auto r = test::run_sdc(a);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.err;
  };
  // Pixels (the PNGs' text differs: model name and hash) and latent bytes, hashed so that a
  // failure prints two numbers.
  auto bytes = [&](const std::string& name) {
    if (name.ends_with(".png")) {
      const io::Image im = io::read_image(dir.file(name));
      return std::hash<std::string>{}(std::string(im.rgb.begin(), im.rgb.end()));
    }
    const io::TensorFile f = io::open_tensor_file(dir.file(name));
    const TensorRef& t = f.tensors.get("latents");
    return std::hash<std::string>{}(std::string(static_cast<const char*>(t.data), t.nbytes));
  };
  const std::string auto_log = generate(int8, "auto", {});
  EXPECT_NE(auto_log.find("VAE decoder int8 (compiled with -t vae=int8)"), std::string::npos)
      << auto_log;
  generate(f16, "asked", {"--vae-precision", "int8"});
  generate(f16, "float", {});
  EXPECT_EQ(bytes("auto.png"), bytes("asked.png"));
  EXPECT_NE(bytes("float.png"), bytes("auto.png"));
  EXPECT_EQ(bytes("float.safetensors"), bytes("auto.safetensors"));  // the UNet is untouched
  // An explicit precision wins over the file's mark.
  const std::string f32_log = generate(int8, "f32", {"--precision", "f32"});
  EXPECT_EQ(f32_log.find("VAE decoder int8"), std::string::npos) << f32_log;
  // Against the plain file at f32: auto is bf16 on CPUs where bf16 is faster (AMD, AMX).
  generate(f16, "plain-f32", {"--precision", "f32"});
  EXPECT_EQ(bytes("f32.png"), bytes("plain-f32.png"));
}

TEST(ConvertPacked, VaePrecisionOtherThanAutoOrInt8IsRefused) {
  test::TempDir dir;
  auto a =
      generate_args(test::tiny("model.safetensors"), dir.file("l.safetensors"), dir.file("y.png"));
  a.insert(a.end(), {"--vae-precision", "fp8"});
  const auto bad = test::run_sdc(a);
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--vae-precision: expected auto or int8, found \"fp8\""),
            std::string::npos)
      << bad.err;
  EXPECT_TRUE(dir.list().empty());
}

// A named ISA (a file made for other machines): convert checks the name before any work and packs
// under it at the end, one oneDNN cap for both, with sdc's own kernels capped alike; the file
// records the ISA, generates here, and on that CPU class (emulated by oneDNN's variable) maps
// every weight its plans use.
TEST(ConvertPacked, ANamedTargetPacksForThatIsa) {
  test::TempDir dir;
  const std::string out = dir.file("avx2.gguf");
  auto args = convert_args(out, false);
  args.insert(args.end(), {"--target", "avx2"});
  const auto c = test::run_sdc(args);
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_NE(c.err.find(" for avx2, f32"), std::string::npos) << c.err;
  const io::GgufFile g = io::read_gguf(out);
  ASSERT_NE(g.find("sdc.packed.isa"), nullptr);
  EXPECT_EQ(g.find("sdc.packed.isa")->string_value, "avx2");
  EXPECT_EQ(dir.list(), std::vector<std::string>{"avx2.gguf"});  // the staged file is gone
  EXPECT_GT(g.find("sdc.packed.key")->items.size(), 0u);
  const auto r = test::run_sdc(generate_args(out, dir.file("a.safetensors"), dir.file("a.png")));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  setenv("DNNL_MAX_CPU_ISA", "AVX2", 1);
  const auto there =
      test::run_sdc(generate_args(out, dir.file("b.safetensors"), dir.file("b.png")));
  unsetenv("DNNL_MAX_CPU_ISA");
  ASSERT_EQ(there.exit_code, 0) << there.err;
  EXPECT_NE(there.err.find("weights mapped already packed"), std::string::npos) << there.err;
  EXPECT_EQ(there.err.find("packed again"), std::string::npos) << there.err;

  // An int8 UNet for AVX-VNNI desktops, made on a machine with AVX-512: with only oneDNN capped
  // the planner asked it for AVX-512 layouts and convert failed.
  if (!cpu::cpu_features().avx_vnni) GTEST_SKIP() << "no AVX-VNNI here to check the int8 case on";
  const std::string vnni = dir.file("avx2_vnni.gguf");
  auto int8_args = convert_args(vnni, false);
  *(std::find(int8_args.begin(), int8_args.end(), "-t") + 1) = "unet=int8";
  int8_args.insert(int8_args.end(), {"--target", "avx2_vnni"});
  const auto ci = test::run_sdc(int8_args);
  ASSERT_EQ(ci.exit_code, 0) << ci.err;
  setenv("DNNL_MAX_CPU_ISA", "AVX2_VNNI", 1);
  const auto gi = test::run_sdc(generate_args(vnni, dir.file("c.safetensors"), dir.file("c.png")));
  unsetenv("DNNL_MAX_CPU_ISA");
  ASSERT_EQ(gi.exit_code, 0) << gi.err;
  EXPECT_NE(gi.err.find("weights mapped already packed"), std::string::npos) << gi.err;
  EXPECT_EQ(gi.err.find("packed again"), std::string::npos) << gi.err;
}

TEST(ConvertPacked, UnknownTargetIsRefusedWithNothingWritten) {
  test::TempDir dir;
  auto args = convert_args(dir.file("x.gguf"), false);
  args.push_back("--target");
  args.push_back("pentium4");
  const auto r = test::run_sdc(args);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--target"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("pentium4"), std::string::npos) << r.err;
  EXPECT_TRUE(dir.list().empty());
}

// An int8 component packed for an ISA without a VNNI dot product: refused before any work (it
// used to fail in packing, after the unpacked file had replaced whatever was at the output).
TEST(ConvertPacked, Int8ForATargetWithoutVnniIsRefusedAndTheOutputKept) {
  test::TempDir dir;
  const std::string out = dir.file("x.gguf");
  std::ofstream(out) << "an earlier model";
  auto args = convert_args(out, false);
  *(std::find(args.begin(), args.end(), "-t") + 1) = "unet=int8";
  args.insert(args.end(), {"--target", "avx2"});
  const auto r = test::run_sdc(args);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--target: expected an ISA with a VNNI dot product"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("\"avx2\" (oneDNN runs avx2)"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("cast + write"), std::string::npos) << r.err;  // nothing converted
  EXPECT_EQ(dir.list(), std::vector<std::string>{"x.gguf"});
  std::ifstream in(out);
  std::string kept;
  std::getline(in, kept);
  EXPECT_EQ(kept, "an earlier model");
}

TEST(PrepackedWeights, AnEntryAppliesOnlyToTensorsOfItsOwner) {
  auto& reg = cpu::PrepackedWeights::global();
  reg.clear();
  auto owner = std::make_shared<std::vector<uint8_t>>(256, 7);
  auto other = std::make_shared<std::vector<uint8_t>>(256, 7);
  reg.add("w", "fmt", owner->data(), 128, owner);
  TensorRef mine, theirs;
  mine.owner = owner;
  theirs.owner = other;
  EXPECT_EQ(reg.find("w", "fmt", theirs), nullptr);
  EXPECT_EQ(reg.misses(), 0u);  // another owner's key: not this file's layout
  EXPECT_EQ(reg.find("w", "other fmt", mine), nullptr);
  EXPECT_EQ(reg.misses(), 1u);  // this file's key in another layout
  EXPECT_EQ(reg.find("v", "fmt", mine), nullptr);
  EXPECT_EQ(reg.misses(), 1u);  // a key the file does not store
  auto p = reg.find("w", "fmt", mine);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->data(), owner->data());
  EXPECT_EQ(p->bytes(), 128u);
  EXPECT_TRUE(p->external());
  // The registry holds its owner weakly: once the model is gone, so is the entry.
  p.reset();
  std::weak_ptr<std::vector<uint8_t>> gone = owner;
  owner.reset();
  mine.owner.reset();
  EXPECT_TRUE(gone.expired());
  TensorRef again;
  again.owner = other;
  EXPECT_EQ(reg.find("w", "fmt", again), nullptr);
  reg.clear();
}

TEST(PackedSection, AFileForAnotherIsaIsPackedAtLoadWithANotice) {
  io::TensorFile f;
  f.path = "model.gguf";
  f.format = io::FileFormat::Gguf;
  f.metadata = {{"sdc.packed.isa", "sse41_from_elsewhere"},
                {"sdc.packed.key", {"k"}},
                {"sdc.packed.format", {"f"}},
                {"sdc.packed.tensor", {"sdc.packed.0"}}};
  std::ostringstream log;
  EXPECT_EQ(pipeline::offer_packed_section(f, log), 0u);
  EXPECT_NE(log.str().find("packed for sse41_from_elsewhere"), std::string::npos) << log.str();
  EXPECT_NE(log.str().find("packing them at load"), std::string::npos);
}

TEST(PackedSection, AMalformedSectionIsAnErrorNamingTheKey) {
  io::TensorFile f;
  f.path = "model.gguf";
  f.format = io::FileFormat::Gguf;
  f.metadata = {{"sdc.packed.isa", cpu::effective_isa_name()},
                {"sdc.packed.key", {"k", "l"}},
                {"sdc.packed.format", {"f"}},
                {"sdc.packed.tensor", {"sdc.packed.0"}}};
  std::ostringstream log;
  try {
    pipeline::offer_packed_section(f, log);
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sdc.packed.format"), std::string::npos) << e.what();
  }
  f.metadata["sdc.packed.format"] = {"f", "g"};
  f.metadata["sdc.packed.tensor"] = {"sdc.packed.0", "sdc.packed.1"};
  try {
    pipeline::offer_packed_section(f, log);
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sdc.packed.0"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace sdc
