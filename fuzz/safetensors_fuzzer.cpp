// libFuzzer target: io::parse_safetensors on arbitrary bytes must either return tensors whose
// spans lie inside the input or throw sdc::Error — never crash, hang or over-allocate.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "common/error.h"
#include "io/safetensors.h"

namespace {
volatile uint8_t sink;
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    sdc::io::TensorFile f = sdc::io::parse_safetensors(data, size, "fuzz", nullptr);
    for (const auto& [name, t] : f.tensors.all()) {
      const auto* p = static_cast<const uint8_t*>(t.data);
      if (t.nbytes > 0 && (p < data || p + t.nbytes > data + size)) std::abort();
      // Read the first and last byte so ASan sees any out-of-bounds view.
      if (t.nbytes > 0) sink = uint8_t(p[0] ^ p[t.nbytes - 1]);
    }
  } catch (const sdc::Error&) {
  }
  return 0;
}
