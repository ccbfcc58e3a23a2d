// Multi-head attention without a (tokens x tokens) matrix: each work item is one (image, head,
// block of Bq query rows); it computes the Bq x Tk scores with a oneDNN matmul straight from the
// strided q/k columns of that head, a row softmax in f32 (causal mask: key j > query i is
// dropped), and P V with a second matmul written straight into the head's output columns.
// Scratch per thread is Bq x Tk scores (+ bf16 probabilities), Bq chosen to keep it cache-sized.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "common/dtype.h"

namespace sdc::cpu {

struct AttentionShape {
  int64_t N = 1, Tq = 1, Tk = 1, C = 1, heads = 1;
  bool causal = false;
  DType in = DType::F32;   // q, k, v storage (F32 or BF16)
  DType out = DType::F32;  // output storage
  bool int8 = false;       // the plan allows int8 QK^T and PV (attention_int8.h) where supported
};

class FlashAttention;
class Int8Attention;

// Picks the int8 path (attention_int8.h) when the shape allows int8 and the CPU supports it, else
// the AVX-512 micro-kernel path (attention_avx512.h) where the CPU has it (for bf16, heads at
// most kMaxFlashHeadWidth wide), else tiles of oneDNN matmuls (any CPU).
class AttentionKernel {
 public:
  static constexpr int64_t kMaxFlashHeadWidth = 160;  // wider bf16 heads: the matmul tiles
  AttentionKernel(const AttentionShape& shape, const dnnl::engine& engine, int threads);
  ~AttentionKernel();
  size_t scratch_bytes() const;
  // q [N,Tq,C], k, v [N,Tk,C], out [N,Tq,C]; scratch: scratch_bytes(), 64-byte aligned.
  void run(const void* q, const void* k, const void* v, void* out, void* scratch) const;
  int64_t block_rows() const { return bq_; }

 private:
  struct Mm {
    dnnl::primitive prim;
    std::vector<dnnl::memory> src, wei, dst, pad;  // one per thread (handles set at run)
  };
  Mm make_mm(const dnnl::memory::desc& a, const dnnl::memory::desc& b, const dnnl::memory::desc& c);
  void exec(const Mm& mm, int t, const void* a, const void* b, void* c, void* pad) const;

  AttentionShape s_;
  dnnl::engine engine_;
  int threads_;
  int64_t d_, bq_;
  Mm qk_full_, qk_tail_, pv_full_, pv_tail_;
  size_t pad_bytes_ = 0, scratch_per_thread_ = 0;
  std::vector<dnnl::stream> streams_;
  std::unique_ptr<FlashAttention> flash_;
  std::unique_ptr<Int8Attention> int8_;
};

}  // namespace sdc::cpu
