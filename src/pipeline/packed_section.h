// The packed section of a compiled .gguf: every weight the CPU plans of the declared sizes use,
// stored in the blocked layout oneDNN's kernels want on one ISA, so that `generate -m x.gguf`
// maps them instead of packing at load (`sdc convert --target`).
//
// Stored as I8 tensors `sdc.packed.<i>` (64-byte aligned like every GGUF tensor) beside the
// portable weights, which stay: a file packed for another ISA, or planned at another precision
// or size, still loads and packs what it lacks. Metadata: sdc.packed.isa (oneDNN's ISA name),
// sdc.packed.precision ("bf16" | "f32"), and the parallel string arrays sdc.packed.key (the
// weight's graph name, with a row range for split weights), sdc.packed.format (the planner's
// exact format key) and sdc.packed.tensor.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "backend/cpu/plan.h"
#include "io/tensor_file.h"

namespace sdc::pipeline {

struct PackOptions {
  std::string target = "native";  // oneDNN ISA cap (cpu::limit_isa), before any primitive
  cpu::Precision precision = cpu::Precision::BF16;
  bool vae_int8 = false;  // the VAE decoder planned W8A8 (a model converted with -t vae=int8)
  std::vector<std::pair<int, int>> sizes;  // (width, height); empty: 512x512
  int batch = 1;                           // plans at batch and 2·batch (CFG)
  int threads = 0;
};

struct PackResult {
  size_t weights = 0;  // packed tensors stored
  uint64_t bytes = 0;  // their size
  std::string isa;
  double seconds = 0;
};

// Plans the compiled model at `path` (written by sdc convert) for `options` with the packing
// recorded, then rewrites `path` atomically with the packed section added (replacing any
// earlier one). The rest of the file is copied unchanged.
PackResult add_packed_section(const std::string& path, const PackOptions& options,
                              std::ostream& log);

// At load: offers `file`'s packed section to the backend when it was packed for the ISA oneDNN
// uses here; otherwise says in one line to `log` that weights will be packed at load. Returns
// how many packed weights were offered.
size_t offer_packed_section(const io::TensorFile& file, std::ostream& log);

}  // namespace sdc::pipeline
