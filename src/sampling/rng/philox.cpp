// Philox-4x32-10 + Box-Muller as A1111's rng_philox.py; see philox.h.

#include "common/strict_float.h"  // first: numpy rounding, no fused multiply-add

#include "sampling/rng/philox.h"

#include <cmath>

namespace sdc::sampling {
namespace {

constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;

void philox_round(uint32_t c[4], const uint32_t key[2]) {
  const uint64_t v1 = static_cast<uint64_t>(c[0]) * kM0;
  const uint64_t v2 = static_cast<uint64_t>(c[2]) * kM1;
  const uint32_t v1_lo = static_cast<uint32_t>(v1), v1_hi = static_cast<uint32_t>(v1 >> 32);
  const uint32_t v2_lo = static_cast<uint32_t>(v2), v2_hi = static_cast<uint32_t>(v2 >> 32);
  c[0] = v2_hi ^ c[1] ^ key[0];
  c[1] = v2_lo;
  c[2] = v1_hi ^ c[3] ^ key[1];
  c[3] = v1_lo;
}

}  // namespace

void philox4x32(uint32_t counter[4], uint32_t key[2], int rounds) {
  for (int r = 0; r < rounds - 1; ++r) {
    philox_round(counter, key);
    key[0] += kW0;
    key[1] += kW1;
  }
  philox_round(counter, key);
}

void PhiloxGenerator::randn(float* out, size_t n) {
  // rng_philox's constants are float32 arrays; numpy computes uint32 * float32 in float64.
  const double two_pow32_inv = static_cast<float>(2.3283064e-10);
  const double two_pow32_inv_2pi = static_cast<float>(2.3283064e-10 * 6.2831855);
  for (size_t i = 0; i < n; ++i) {
    uint32_t counter[4] = {offset_, 0u, static_cast<uint32_t>(i), 0u};
    uint32_t key[2] = {static_cast<uint32_t>(seed_), static_cast<uint32_t>(seed_ >> 32)};
    philox4x32(counter, key);
    const double u = counter[0] * two_pow32_inv + two_pow32_inv / 2;
    const double v = counter[1] * two_pow32_inv_2pi + two_pow32_inv_2pi / 2;
    const double s = std::sqrt(-2.0 * std::log(u));
    out[i] = static_cast<float>(s * std::sin(v));
  }
  ++offset_;
}

std::vector<float> PhiloxGenerator::randn(size_t n) {
  std::vector<float> out(n);
  randn(out.data(), n);
  return out;
}

}  // namespace sdc::sampling
