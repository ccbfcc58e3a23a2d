// Bilinear latent resize against torch.nn.functional.interpolate(mode="bilinear",
// align_corners=False) on a worked example.
#include <gtest/gtest.h>

#include "common/error.h"
#include "imaging/latent_resize.h"

namespace sdc::imaging {
namespace {

TEST(LatentResize, DoublesAsTorchBilinear) {
  // F.interpolate(torch.tensor([[[[1., 2.], [3., 4.]]]]), size=(4, 4), mode="bilinear")
  const std::vector<float> got =
      resize_latents_bilinear(std::vector<float>{1, 2, 3, 4}, 1, 1, 2, 2, 4, 4);
  const std::vector<float> want = {1.0f, 1.25f, 1.75f, 2.0f, 1.5f, 1.75f, 2.25f, 2.5f,
                                   2.5f, 2.75f, 3.25f, 3.5f, 3.0f, 3.25f, 3.75f, 4.0f};
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_FLOAT_EQ(got[i], want[i]) << i;
}

TEST(LatentResize, SameSizeIsIdentityAndPlanesStayApart) {
  std::vector<float> x(2 * 3 * 5 * 7);
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(i) * 0.5f;
  EXPECT_EQ(resize_latents_bilinear(x, 2, 3, 5, 7, 5, 7), x);
  const std::vector<float> up = resize_latents_bilinear(x, 2, 3, 5, 7, 8, 11);
  EXPECT_EQ(up.size(), size_t(2 * 3 * 8 * 11));
  EXPECT_FLOAT_EQ(up[0], x[0]);                   // corners are kept
  EXPECT_FLOAT_EQ(up[8 * 11 - 1], x[5 * 7 - 1]);  // last pixel of plane 0
  EXPECT_FLOAT_EQ(up[8 * 11], x[5 * 7]);          // first pixel of plane 1
}

TEST(LatentResize, RefusesAShapeThatDoesNotMatch) {
  EXPECT_THROW(resize_latents_bilinear(std::vector<float>(10), 1, 1, 2, 2, 4, 4), Error);
}

}  // namespace
}  // namespace sdc::imaging
