// Dropping components after their last use (a process that makes one image): the same images as
// keeping everything, only the decoder's plans left behind, a later batch compiling what it needs
// again, the hires fix releasing only after its second pass, and mapped packed weights staying
// readable through another holder after one holder gave their pages back.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "backend/cpu/weight_cache.h"
#include "common/fixtures.h"
#include "io/mapped_file.h"
#include "pipeline/hires_fix.h"
#include "pipeline/model_bundle.h"
#include "pipeline/stable_diffusion.h"
#include "pipeline/tiny_bundle.h"

namespace sdc::pipeline {
namespace {

struct ReleaseAfterUseTest : ::testing::Test {
  const ModelBundle* bundle = &test::tiny_bundle();
  StableDiffusion make() { return {bundle->model, {}, bundle->tokenizer(), bundle->name}; }
  static GenerationRequest request() {
    GenerationRequest r;
    r.prompt = "a red cube";
    r.negative_prompt = "blurry";
    r.width = r.height = 64;
    r.steps = 3;
    r.cfg_scale = 5;
    r.sampler = "euler";
    r.seed = 11;
    return r;
  }
};

void expect_same_images(const BatchResult& a, const BatchResult& b) {
  ASSERT_EQ(a.images.size(), b.images.size());
  for (size_t i = 0; i < a.images.size(); ++i)
    EXPECT_EQ(a.images[i].image.rgb, b.images[i].image.rgb) << "image " << i;
}

TEST_F(ReleaseAfterUseTest, SameImagesWithOnlyTheDecoderLeft) {
  StableDiffusion keep = make(), drop = make();
  const BatchResult want = keep.generate_batch(request(), 11);
  EXPECT_EQ(keep.plans().plan_count(), 3u);  // text encoder, UNet, VAE decoder
  const BatchResult got = drop.generate_batch(request(), 11, {}, {true, true});
  expect_same_images(want, got);
  EXPECT_EQ(drop.plans().plan_count(), 1u) << "only the VAE decoder stays";
  // A batch after that compiles the UNet again and still draws the same; the text encoder's
  // outputs for this prompt are remembered, so it is not compiled again.
  const BatchResult again = drop.generate_batch(request(), 11);
  expect_same_images(want, again);
  EXPECT_GT(drop.text_encoder_memo().hits(), 0);
  EXPECT_EQ(drop.plans().plan_count(), 2u);
}

TEST_F(ReleaseAfterUseTest, TextEncoderAloneOrDenoiserAlone) {
  StableDiffusion keep = make(), text = make(), denoiser = make();
  const BatchResult want = keep.generate_batch(request(), 11);
  expect_same_images(want, text.generate_batch(request(), 11, {}, {true, false}));
  EXPECT_EQ(text.plans().plan_count(), 2u);
  expect_same_images(want, denoiser.generate_batch(request(), 11, {}, {false, true}));
  EXPECT_EQ(denoiser.plans().plan_count(), 2u);
}

TEST_F(ReleaseAfterUseTest, HiresFixReleasesAfterItsSecondPassOnly) {
  GenerationRequest r = request();
  r.enable_hr = true;
  r.hr_scale = 1.5;
  r.hr_steps = 2;
  r.hr_denoise = 0.5;
  for (const char* upscaler : {"latent", "lanczos"}) {
    r.hr_upscaler = upscaler;
    r.batch_size = 2;
    StableDiffusion keep = make(), drop = make();
    const BatchResult want = generate_hires(keep, r, 11);
    const BatchResult got = generate_hires(drop, r, 11, {}, {true, true});
    expect_same_images(want, got);
    // Left: the decoders (both sizes), and for pixel upscaling the second pass's VAE encoder.
    for (size_t i = 0; i < got.images.size(); ++i) EXPECT_EQ(got.images[i].image.width, 96);
    // Gone: the text encoder and the UNet at both sizes.
    EXPECT_EQ(drop.plans().plan_count() + 3, keep.plans().plan_count()) << upscaler;
  }
}

TEST(PackedWeightRelease, MappedBytesStayReadableAfterAHolderGoes) {
  const auto path = std::filesystem::temp_directory_path() / "sdc-packed-release.bin";
  std::vector<uint8_t> bytes(3 * 4096 + 100);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = uint8_t(i * 7 + 3);
  {
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  }
  std::shared_ptr<const io::MappedFile> file = io::MappedFile::open(path.string());
  const uint8_t* mapped = file->data() + 50;  // not page-aligned: edge pages shared
  const size_t n = bytes.size() - 60;
  auto first = std::make_unique<cpu::PackedWeight>(mapped, n, file, true);
  auto second = std::make_unique<cpu::PackedWeight>(mapped, n, file, true);
  EXPECT_EQ(std::memcmp(first->data(), bytes.data() + 50, n), 0);
  first.reset();  // gives the pages back
  EXPECT_EQ(std::memcmp(second->data(), bytes.data() + 50, n), 0) << "read again from the file";
  second.reset();
  EXPECT_EQ(std::memcmp(mapped, bytes.data() + 50, n), 0);
  file.reset();
  std::filesystem::remove(path);
}

TEST(PackedWeightRelease, LargeBlocksAreWritableMappings) {
  cpu::PackedWeight w(size_t(3) << 20);
  auto* p = static_cast<uint8_t*>(w.data());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u);
  p[0] = 1;
  p[(size_t(3) << 20) - 1] = 2;
  EXPECT_EQ(p[0] + p[(size_t(3) << 20) - 1], 3);
}

}  // namespace
}  // namespace sdc::pipeline
