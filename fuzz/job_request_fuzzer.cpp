// libFuzzer target: server::parse_job_request on arbitrary bytes (the body of POST /v1/jobs) must
// either return a request within the server's limits or throw ValidationError (a 422) — never
// crash, hang, over-allocate or let a value past its limit.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "server/job_request_json.h"
#include "server/json_response.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const sdc::server::RequestLimits limits;
  try {
    const sdc::engine::JobRequest r = sdc::server::parse_job_request(
        std::string_view(reinterpret_cast<const char*>(data), size), limits);
    const auto& g = r.generation;
    if (g.width < 64 || g.width > limits.max_side || g.width % 8 || g.height < 64 ||
        g.height > limits.max_side || g.height % 8 || g.steps < 1 || g.steps > limits.max_steps ||
        g.batch_size < 1 || g.batch_count < 1 ||
        int64_t(g.batch_size) * g.batch_count > limits.max_images ||
        g.prompt.size() > limits.max_prompt_chars || g.seed < -1 || r.loras.size() > 16)
      std::abort();
  } catch (const sdc::server::ValidationError&) {
  }
  return 0;
}
