// The Canny edge detector used as the ControlNet "canny" preprocessor.
//
// It reproduces what ControlNet's canny annotator computes: cv2.Canny(img, low, high) called
// directly on the RGB image (no blur first, aperture 3, L2gradient=false), then HWC3 to three
// channels. OpenCV's semantics, matched exactly:
//   - 3×3 Sobel per colour channel with replicated borders; at each pixel the channel with the
//     largest |dx| + |dy| wins (the first one on ties, R before G before B);
//   - thresholds on that L1 magnitude, floored to integers and swapped if low > high; a pixel is
//     a candidate when its magnitude is > low and a strong edge when it is > high;
//   - non-maximum suppression along the gradient direction quantised to 0°/45°/90°/135° with
//     OpenCV's tan 22.5° fixed-point test and its tie rules (strict on one side);
//   - hysteresis: candidates 8-connected to a strong edge are kept.
// The result is white (255) edges on black, in all three channels, the size of the input.
//
// A Gaussian blur before the edges (`--canny-blur SIGMA`) is optional: the ControlNet annotator
// does not blur, so the default (0) gives the hints the canny ControlNets were trained on; a
// blur suppresses the edges of noise and fine texture in photographs.
#pragma once

#include "io/image.h"

namespace sdc::imaging {

io::Image canny(const io::Image& image, float low_threshold, float high_threshold);

// Gaussian blur of each channel with standard deviation `sigma` (> 0) pixels: OpenCV's kernel size
// for 8-bit images (2·round(3σ)+1 taps), normalised weights exp(-x²/2σ²), reflect-101 borders,
// separable in f32 and rounded to the nearest level. sigma <= 0 returns the image unchanged.
// `radius` > 0 sets the taps (2·radius+1) instead, as a caller passing cv2 a kernel size does.
io::Image gaussian_blur(const io::Image& image, float sigma, int radius = 0);

}  // namespace sdc::imaging
