// A1111 EmphasisOriginal.after_transformers: z *= w[token]; z *= mean_before / mean_after.
#include "text/prompt_embedding.h"

#include <algorithm>
#include <cstddef>
#include <string>

#include "common/error.h"

namespace sdc::text {

namespace {

double mean(const float* z, size_t n) {
  double sum = 0;  // accumulate in double: the ratio of two means must not drift
  for (size_t i = 0; i < n; ++i) sum += z[i];
  return sum / static_cast<double>(n);
}

}  // namespace

void apply_emphasis(float* z, int tokens, int channels, const float* weights) {
  if (tokens <= 0 || channels <= 0)
    throw Error("prompt", "emphasis", "a positive number of tokens and channels",
                std::to_string(tokens) + " × " + std::to_string(channels));
  if (std::all_of(weights, weights + tokens, [](float w) { return w == 1.0f; }))
    return;  // nothing to do
  const size_t n = static_cast<size_t>(tokens) * static_cast<size_t>(channels);
  const double before = mean(z, n);
  for (int t = 0; t < tokens; ++t) {
    float* row = z + static_cast<size_t>(t) * static_cast<size_t>(channels);
    for (int c = 0; c < channels; ++c) row[c] *= weights[t];
  }
  const double after = mean(z, n);
  if (after == 0.0)
    throw Error("prompt", "emphasis", "weights that keep the embedding's mean non-zero",
                "mean 0 after weighting");
  const auto scale = static_cast<float>(before / after);
  for (size_t i = 0; i < n; ++i) z[i] *= scale;
}

}  // namespace sdc::text
