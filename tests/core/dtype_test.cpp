// f16/bf16 conversions (round to nearest even, subnormals, infinities) and Error formatting.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "common/dtype.h"
#include "common/error.h"

namespace sdc {

TEST(DType, F16RoundTripsEveryHalf) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = f16_to_f32(uint16_t(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_f16(f), h) << "half bits " << h;
  }
}

// The bulk conversion (F16C where the CPU has it, eight at a time, then a scalar tail) gives every
// half the scalar function's value; NaNs stay NaN with their sign.
TEST(DType, F16BulkConversionIsTheScalarOne) {
  std::vector<uint16_t> all(0x10000 + 5);  // a tail past the last group of eight
  for (size_t h = 0; h < all.size(); ++h) all[h] = uint16_t(h);
  std::vector<float> out(all.size());
  convert_to_f32(DType::F16, all.data(), out.data(), all.size());
  for (size_t h = 0; h < all.size(); ++h) {
    const float f = f16_to_f32(all[h]);
    if (std::isnan(f)) {
      ASSERT_TRUE(std::isnan(out[h])) << "half bits " << h;
      ASSERT_EQ(std::signbit(out[h]), std::signbit(f)) << "half bits " << h;
    } else {
      uint32_t a, b;
      std::memcpy(&a, &out[h], 4);
      std::memcpy(&b, &f, 4);
      ASSERT_EQ(a, b) << "half bits " << h;
    }
  }
}

TEST(DType, F16RoundsToNearestEven) {
  EXPECT_EQ(f32_to_f16(1.0f + 1.0f / 2048), 0x3c00);    // tie -> even (1.0)
  EXPECT_EQ(f32_to_f16(1.0f + 3.0f / 2048), 0x3c02);    // tie -> even (up)
  EXPECT_EQ(f32_to_f16(65520.f), 0x7c00);               // overflow -> inf
  EXPECT_EQ(f32_to_f16(std::ldexp(1.f, -25)), 0x0000);  // tie at half the smallest subnormal
  EXPECT_EQ(f32_to_f16(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(f32_to_f16(-0.0f), 0x8000);
}

TEST(DType, Bf16RoundsToNearestEven) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(3.140625f)), 3.140625f);
  EXPECT_EQ(f32_to_bf16(1.0f + 1.0f / 256), 0x3f80);  // tie -> even
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
}

TEST(DType, NamesRoundTrip) {
  for (DType t : {DType::F64, DType::F32, DType::F16, DType::BF16, DType::I64, DType::I32,
                  DType::I16, DType::I8, DType::U8, DType::Bool})
    EXPECT_EQ(dtype_from_name(dtype_name(t)), t);
  EXPECT_FALSE(dtype_from_name("F8_E4M3"));
}

TEST(ErrorMessage, NamesFileKeyExpectedFound) {
  Error e("a.safetensors", "model.x.weight", "shape [4]", "[5]");
  EXPECT_STREQ(e.what(), "a.safetensors: model.x.weight: expected shape [4], found [5]");
  EXPECT_STREQ(Error("", "k", "", "nothing").what(), "k: found nothing");
}

}  // namespace sdc
