// libFuzzer target: prompt text as a request sends it — the <lora:name:weight> tags cut out of it
// (every LoRA name free of paths, every weight finite as a float) or
// sdc::Error; and A1111's infotext reader (/png-info, the `infotext` field) on the same text.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/error.h"
#include "server/a1111/extra_networks.h"
#include "server/a1111/png_info.h"

using namespace sdc::server::a1111;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const PromptNetworks n = extract_extra_networks(text);
    if (n.prompt.size() > text.size()) std::abort();
    for (const LoraTag& l : n.loras) {
      if (l.name.empty() || l.name.find('/') != std::string::npos ||
          l.name.find("..") != std::string::npos || !std::isfinite(float(l.weight)))
        std::abort();
    }
  } catch (const sdc::Error&) {
  }
  (void)parse_generation_parameters(text).dump(-1, ' ', false,
                                               nlohmann::json::error_handler_t::replace);
  return 0;
}
