// Range checks of GenerationRequest: each bad value names the option, the range and the value.
#include <gtest/gtest.h>

#include <cmath>

#include "common/error.h"
#include "pipeline/generation_request.h"

namespace sdc::pipeline {
namespace {

std::string error_of(const GenerationRequest& r) {
  try {
    validate(r);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "no error";
}

TEST(GenerationRequest, DefaultsAreA1111s) {
  GenerationRequest r;
  EXPECT_EQ(r.sampler, "euler_a");
  EXPECT_EQ(r.steps, 20);
  EXPECT_EQ(r.cfg_scale, 7.0f);
  EXPECT_EQ(r.width, 512);
  EXPECT_EQ(r.height, 512);
  EXPECT_EQ(error_of(r), "no error");
}

TEST(GenerationRequest, RefusesBadValues) {
  GenerationRequest r;
  r.width = 500;
  EXPECT_EQ(error_of(r), "--width: expected a multiple of 8 from 64 to 2048, found 500");
  r = {};
  r.height = 4096;
  EXPECT_EQ(error_of(r), "--height: expected a multiple of 8 from 64 to 2048, found 4096");
  r = {};
  r.steps = 0;
  EXPECT_EQ(error_of(r), "--steps: expected 1 to 1000, found 0");
  r.steps = 1001;
  EXPECT_EQ(error_of(r), "--steps: expected 1 to 1000, found 1001");
  r = {};
  r.cfg_scale = -1;
  EXPECT_EQ(error_of(r), "--cfg-scale: expected a number from 0 to 100, found -1");
  r = {};
  r.init_image = "x.png";
  r.strength = 0;
  EXPECT_EQ(error_of(r), "--strength: expected a value in (0, 1], found 0");
  r.strength = 1.5f;
  EXPECT_EQ(error_of(r), "--strength: expected a value in (0, 1], found 1.5");
  r = {};
  r.resize_mode = "zoom";
  EXPECT_EQ(error_of(r), "--resize-mode: expected one of resize, crop, fill, found zoom");
  r = {};
  r.control_start = 0.8f;
  r.control_end = 0.2f;
  EXPECT_NE(error_of(r).find("--control-start"), std::string::npos);
  r = {};
  r.canny_blur = -1;
  EXPECT_EQ(error_of(r), "--canny-blur: expected a sigma from 0 (no blur) to 20 pixels, found -1");
  r.canny_blur = std::nanf("");
  EXPECT_NE(error_of(r).find("--canny-blur"), std::string::npos);
  r = {};
  r.canny_low = 300;
  EXPECT_NE(error_of(r).find("--canny-low"), std::string::npos);
}

}  // namespace
}  // namespace sdc::pipeline
