// Int8Attention: who packs which head, which thread runs which query block.
#include "backend/cpu/attention_int8.h"

#include <omp.h>

#include <cmath>
#include <stdexcept>

#include "backend/cpu/attention_int8_kernels.h"
#include "backend/cpu/attention_int8_pack.h"
#include "backend/cpu/cpu_features.h"

namespace sdc::cpu {

const attn_int8::Kernels* Int8Attention::kernels_for(const AttentionShape& s) {
  if (s.causal || s.C / s.heads > 1024) return nullptr;
  if (s.in == DType::BF16 && !cpu_features().avx512_bf16) return nullptr;
  switch (own_int8_dot()) {
    case Int8Dot::Avx512Vnni:
      return &attn_int8::kAvx512Vnni;
    case Int8Dot::AvxVnni:
      return &attn_int8::kAvxVnni;
    case Int8Dot::None:
      return nullptr;
  }
  return nullptr;
}

Int8Attention::Int8Attention(const AttentionShape& s, int threads)
    : s_(s), k_(kernels_for(s)), threads_(threads) {
  if (!k_) throw std::logic_error("Int8Attention: no int8 attention kernel takes this shape here");
  d_ = s.C / s.heads;
  R_ = k_->block_queries(d_);
  pack_bytes_ = attn_int8::packed_head_bytes(s.Tk, d_);
  tile_bytes_ = k_->tile_bytes(d_);
}

void Int8Attention::run(const void* q, const void* k, const void* v, void* out,
                        void* scratch) const {
  const AttentionShape& s = s_;
  const bool in_bf16 = s.in == DType::BF16, out_bf16 = s.out == DType::BF16;
  const size_t in_size = in_bf16 ? 2 : 4, out_size = out_bf16 ? 2 : 4;
  auto* base = static_cast<uint8_t*>(scratch);
  const int64_t nqb = (s.Tq + R_ - 1) / R_, heads = s.N * s.heads;
  auto packed = [&](int64_t nh) {
    return attn_int8::packed_head_at(base + size_t(nh) * pack_bytes_, s.Tk, d_);
  };
  const float scale = 1.f / std::sqrt(float(d_));
#pragma omp parallel num_threads(threads_)
  {
#pragma omp for schedule(static)
    for (int64_t nh = 0; nh < heads; ++nh) {
      const size_t off = size_t((nh / s.heads) * s.Tk * s.C + (nh % s.heads) * d_) * in_size;
      k_->pack_head(static_cast<const uint8_t*>(k) + off, static_cast<const uint8_t*>(v) + off,
                    in_bf16, s.C, s.Tk, d_, packed(nh));
    }
    // The implicit barrier of the loop above: all packs are ready.
    uint8_t* tile = base + pack_bytes_ * size_t(heads) + tile_bytes_ * size_t(omp_get_thread_num());
#pragma omp for schedule(dynamic)
    for (int64_t item = 0; item < heads * nqb; ++item) {
      const int64_t nh = item / nqb, q0 = item % nqb * R_;
      const size_t row = size_t(((nh / s.heads) * s.Tq + q0) * s.C + (nh % s.heads) * d_);
      attn_int8::QueryBlock b{};
      b.q = static_cast<const uint8_t*>(q) + row * in_size;
      b.q_bf16 = in_bf16;
      b.out = static_cast<uint8_t*>(out) + row * out_size;
      b.out_bf16 = out_bf16;
      b.C = s.C;
      b.d = d_;
      b.rows = std::min(R_, s.Tq - q0);
      b.kv = packed(nh);
      b.Tk = s.Tk;
      b.scale = scale;
      b.tile = tile;
      k_->run_block(b);
    }
  }
}

}  // namespace sdc::cpu
