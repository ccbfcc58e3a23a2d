// libFuzzer target: an A1111 txt2img/img2img body (the first byte picks the route) read into a
// generation request must either succeed or throw the adapter's ValidationError / ApiError —
// never crash, hang, throw anything else or over-allocate. An accepted request is checked
// against the caps and turned into a response, as the route would.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "server/a1111/api_error.h"
#include "server/a1111/generation_body.h"
#include "server/a1111/generation_response.h"

using namespace sdc::server::a1111;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const GenerationMode mode = data[0] & 1 ? GenerationMode::Img2Img : GenerationMode::Txt2Img;
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  RequestLimits limits;
  limits.image.max_side = 256;
  limits.image.max_pixels = 256 * 256;
  try {
    A1111Generation g = parse_generation(body, "application/json", mode, limits);
    const auto& r = g.request;
    if (r.width < limits.min_side || r.width > limits.max_side || r.width % 8 || r.steps < 1 ||
        r.steps > limits.max_steps || r.batch_size < 1 || r.batch_size > limits.max_batch_size ||
        r.batch_count < 1 || r.batch_count > limits.max_n_iter)
      std::abort();  // a value beyond the caps was accepted
    if (mode == GenerationMode::Img2Img && !r.init_image_data) std::abort();
    GenerationOutput out;
    out.seeds = {r.seed};
    out.infotexts = {"x"};
    out.pngs = {"PNG"};
    (void)generation_response(g, out).dump(-1, ' ', false,
                                           nlohmann::json::error_handler_t::replace);
  } catch (const ValidationError& e) {
    (void)e.body().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } catch (const ApiError& e) {
    (void)e.body().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  return 0;
}
