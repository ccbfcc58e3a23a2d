// Prompt weights applied to the text encoder's output, as AUTOMATIC1111's default ("Original")
// emphasis does: each token's hidden state is multiplied by its weight, then the whole chunk is
// rescaled so that its mean equals the mean before weighting.
#pragma once

namespace sdc::text {

// z: one chunk's hidden states, [tokens, channels] row-major (tokens = 77); weights: [tokens]
// (PromptChunk::weights). A1111 takes the mean over the batch of the chunk; with one prompt per
// call, that is this chunk. Throws sdc::Error if the weighted mean is 0 (the rescale would divide
// by zero) or a size is not positive.
void apply_emphasis(float* z, int tokens, int channels, const float* weights);

}  // namespace sdc::text
