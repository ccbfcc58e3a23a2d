// libFuzzer target: io::parse_gguf on arbitrary bytes must either return tensors whose spans lie
// inside the input (and metadata that converts to JSON) or throw sdc::Error — never crash, hang
// or allocate by an unchecked count.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "common/error.h"
#include "io/gguf.h"

namespace {
volatile uint8_t sink;
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    sdc::io::GgufFile g = sdc::io::parse_gguf(data, size, "fuzz", nullptr);
    for (const auto& [name, t] : g.file.tensors.all()) {
      const auto* p = static_cast<const uint8_t*>(t.data);
      if (t.nbytes > 0 && (p < data || p + t.nbytes > data + size)) std::abort();
      if (t.nbytes > 0) sink = uint8_t(p[0] ^ p[t.nbytes - 1]);
      if (uint64_t(t.numel()) * sdc::dtype_size(t.dtype) != t.nbytes) std::abort();
    }
    // Typed values must agree with their JSON form.
    // (compared as text: NaN != NaN, and strings need not be UTF-8)
    if (g.kv.size() != g.file.metadata.size()) std::abort();
    const auto text = [](const nlohmann::json& j) {
      return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    };
    for (const auto& [key, value] : g.kv)
      if (text(value.to_json()) != text(g.file.metadata[key])) std::abort();
  } catch (const sdc::Error&) {
  }
  return 0;
}
