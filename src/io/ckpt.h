// PyTorch zip checkpoints (.ckpt, .pt, .bin written by torch.save since 1.6), read without
// executing anything: the archive's <folder>/data.pkl goes through the restricted unpickler
// (pickle.h) and each tensor becomes a view on its storage <folder>/data/<key> — zero-copy for the
// stored, aligned entries torch writes, a copy for compressed entries and non-contiguous views.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "io/tensor_file.h"

namespace sdc::io {

// Reads `path`. Tensors come from the top-level dict's "state_dict" when it has one (Lightning
// and original SD checkpoints), else from its "string_to_param" (an A1111 textual-inversion
// embedding; tensors named "string_to_param.<key>"), else from the top-level dict itself
// (diffusers .bin files). The other top-level entries that are plain scalars (global_step, epoch,
// an embedding's name and step, ...) go to `metadata`.
// Legacy (pre-1.6, non-zip) files and any global outside the allowlist are refused.
TensorFile read_ckpt(const std::string& path);

// The same for a checkpoint image already in memory (used by the reader and by the fuzzer).
// `owner` keeps `data` alive in the returned tensors.
TensorFile parse_ckpt(const uint8_t* data, size_t size, const std::string& path,
                      std::shared_ptr<const void> owner);

}  // namespace sdc::io
