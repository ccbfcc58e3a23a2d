// A1111's variation-seed infotext keys: written between Model and Denoising strength, as
// create_infotext orders them, and read back.
#include <gtest/gtest.h>

#include "common/error.h"
#include "pipeline/generation_params.h"

namespace sdc::pipeline {
namespace {

TEST(VariationInfotext, WrittenInA1111OrderAndReadBack) {
  GenerationParams p;
  p.prompt = "a cat";
  p.seed = 1234;
  p.width = 64;
  p.height = 96;
  p.model = "model";
  p.variation_seed = 5678;
  p.variation_strength = 0.6;
  p.seed_resize_from = std::pair{88, 56};
  p.denoising_strength = 0.5;
  const std::string text = format_a1111_parameters(p);
  EXPECT_EQ(text,
            "a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1234, Size: 64x96, Model: "
            "model, Variation seed: 5678, Variation seed strength: 0.6, Seed resize from: 88x56, "
            "Denoising strength: 0.5");
  EXPECT_EQ(parse_a1111_parameters(text), p);
}

TEST(VariationInfotext, MalformedValuesNameTheField) {
  EXPECT_THROW(parse_a1111_parameters("x\nSteps: 1, Seed: 2, Seed resize from: 88"), Error);
}

}  // namespace
}  // namespace sdc::pipeline
