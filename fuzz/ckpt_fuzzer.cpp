// libFuzzer target: arbitrary bytes as a whole PyTorch zip checkpoint (zip parsing through libzip
// and the central-directory walk, the unpickler, storage lookup and strided materialisation).
// Every tensor returned is read in full so that a view outside its buffer trips ASan.
#include <cstddef>
#include <cstdint>

#include "common/error.h"
#include "io/ckpt.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const sdc::io::TensorFile f = sdc::io::parse_ckpt(data, size, "fuzz.ckpt", nullptr);
    uint8_t sum = 0;
    for (const auto& [name, t] : f.tensors.all()) {
      if (t.nbytes != size_t(t.numel()) * sdc::dtype_size(t.dtype)) __builtin_trap();
      const auto* p = static_cast<const uint8_t*>(t.data);
      for (size_t i = 0; i < t.nbytes; ++i) sum = uint8_t(sum + p[i]);
    }
    volatile uint8_t sink = sum;
    (void)sink;
  } catch (const sdc::Error&) {
  }
  return 0;
}
