// libFuzzer target: arbitrary bytes through the restricted unpickler. Refusals are sdc::Error;
// anything else escaping (another exception, a sanitizer report, a hang) is a finding.
#include <cstddef>
#include <cstdint>

#include "common/error.h"
#include "io/pickle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const sdc::io::pickle::Unpickled u =
        sdc::io::pickle::unpickle(data, size, "fuzz.ckpt", "archive/data.pkl");
    // Check the promise ckpt.cpp relies on for every tensor a reader would look at (the root
    // dict or its state_dict): a non-empty view stays inside its storage.
    const sdc::io::pickle::Value& root = u.root();
    const sdc::io::pickle::Value* sd = root.find("state_dict");
    const sdc::io::pickle::Value& dict = sd ? *sd : root;
    for (size_t i = 0; dict.kind == sdc::io::pickle::Kind::Dict && i < dict.dict_size(); ++i) {
      const sdc::io::pickle::Value& v = dict.dict_value(i);
      if (v.kind != sdc::io::pickle::Kind::Tensor) continue;
      const sdc::io::pickle::TensorDesc& t = *v.tensor;
      unsigned __int128 last = t.offset, numel = 1;
      for (size_t d = 0; d < t.shape.size(); ++d) numel *= uint64_t(t.shape[d]);
      if (numel == 0) continue;
      for (size_t d = 0; d < t.shape.size(); ++d)
        last += (unsigned __int128)(uint64_t(t.shape[d]) - 1) * uint64_t(t.stride[d]);
      if (last >= t.storage->storage->numel) __builtin_trap();
    }
  } catch (const sdc::Error&) {
  }
  return 0;
}
