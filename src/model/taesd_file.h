// TAESD weights (madebyollin's Tiny AutoEncoder for SD1.x) from the forms people download, put
// into a WeightMap under kTaesdDecoderPrefix / kTaesdEncoderPrefix with taesd.py's own keys
// ("1.weight", "3.conv.0.bias", ...). Accepted:
//   - the original files taesd_decoder.{safetensors,pth} / taesd_encoder.{safetensors,pth}
//     (keys of taesd.py's nn.Sequential; .pth through the restricted unpickler), one network each;
//   - a diffusers AutoencoderTiny folder (config.json + weights): encoder.layers.N = encoder N,
//     decoder.layers.N = decoder N+1 (diffusers applies the decoder's input clamp in forward());
//   - a folder holding the original files (A1111's models/VAE-taesd/ layout), or an
//     AutoencoderTiny folder inside it.
// Every tensor is checked against the SD1.x layout (64 channels, 4 latent channels): file, key,
// expected and found on a mismatch; a file that is neither network is refused.
#pragma once

#include <string>

#include "common/tensor.h"

namespace sdc::model {

inline constexpr const char* kTaesdDecoderPrefix = "taesd.decoder.";
inline constexpr const char* kTaesdEncoderPrefix = "taesd.encoder.";

struct TaesdParts {
  bool decoder = false, encoder = false;
};

// Reads `path` (a file or a folder, above) and adds its networks' tensors to `into`, replacing
// any TAESD tensors there. sdc::Error for a path that holds no TAESD network, or a tensor of the
// wrong name, shape or element type (`flag` names the option in messages, e.g. "--taesd").
TaesdParts load_taesd(const std::string& path, WeightMap& into, const std::string& flag);

// The TAESD tensors a compiled .gguf carries (names under the prefixes above), checked like a
// file's and added to `into`; `file` names the .gguf in messages.
TaesdParts add_bundled_taesd(const std::string& file, const WeightMap& tensors, WeightMap& into);

// Which TAESD networks `weights` holds (complete and checked, as load_taesd leaves them).
TaesdParts taesd_parts(const WeightMap& weights);

}  // namespace sdc::model
