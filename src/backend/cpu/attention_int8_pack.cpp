// The layout of one head's K/V pack for the int8 attention (the rules: attention_int8_pack.h).
#include "backend/cpu/attention_int8_pack.h"

#include "backend/cpu/memory_plan.h"

namespace sdc::cpu::attn_int8 {

size_t packed_head_bytes(int64_t Tk, int64_t d) {
  const int64_t d4 = (d + 3) / 4, g = (Tk + 3) / 4;
  return arena_aligned(size_t(Tk * d4 * 4)) + 2 * arena_aligned(size_t(Tk) * 4) +
         arena_aligned(size_t(g * d * 4)) + 2 * arena_aligned(size_t(d) * 4);
}

PackedHead packed_head_at(uint8_t* base, int64_t Tk, int64_t d) {
  const int64_t d4 = (d + 3) / 4, g = (Tk + 3) / 4;
  PackedHead p{};
  p.k = reinterpret_cast<int8_t*>(base);
  base += arena_aligned(size_t(Tk * d4 * 4));
  p.comp = reinterpret_cast<int32_t*>(base);
  base += arena_aligned(size_t(Tk) * 4);
  p.k_scale = reinterpret_cast<float*>(base);
  base += arena_aligned(size_t(Tk) * 4);
  p.v = reinterpret_cast<int8_t*>(base);
  base += arena_aligned(size_t(g * d * 4));
  p.v_scale = reinterpret_cast<float*>(base);
  base += arena_aligned(size_t(d) * 4);
  p.k_mean = reinterpret_cast<float*>(base);
  return p;
}

}  // namespace sdc::cpu::attn_int8
