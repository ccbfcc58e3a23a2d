// openai/CLIP's BPE vocabulary (assets/clip/vocab.json and merges.txt, MIT), embedded into the
// binary so that a checkpoint alone is enough to tokenize prompts.
#pragma once

#include <string_view>

namespace sdc::text {

std::string_view builtin_clip_vocab_json();
std::string_view builtin_clip_merges_txt();

}  // namespace sdc::text
