// int8_gemm.h's entry points: which ISA's build runs (int8_gemm_kernels.h), and the row codes'
// buffer layout.
#include "backend/cpu/int8_gemm.h"

#include <stdexcept>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/int8_gemm_kernels.h"
#include "backend/cpu/memory_plan.h"

namespace sdc::cpu {
namespace {

// The build for the own kernels' ISA now (tests cap it with force_kernel_isa), or null.
const Int8GemmKernels* active() {
  switch (own_int8_dot()) {
    case Int8Dot::Avx512Vnni:
      return &kInt8GemmAvx512Vnni;
    case Int8Dot::AvxVnni:
      return &kInt8GemmAvxVnni;
    case Int8Dot::None:
      return nullptr;
  }
  return nullptr;
}

const Int8GemmKernels& kernels() {
  const Int8GemmKernels* k = active();
  if (!k) throw std::logic_error("int8_gemm: no int8 GEMM kernel on this CPU (int8_gemm_fits)");
  return *k;
}

}  // namespace

const char* int8_gemm_isa() {
  const Int8GemmKernels* k = active();
  return k ? k->isa : "";
}

bool int8_gemm_fits(int64_t K, int64_t N) {
  return active() && K > 0 && K % 16 == 0 && N > 0 && N % 64 == 0;
}

RowQuantiser row_quantiser() {
  return kernels().quantise_row;
}

size_t row_codes_bytes(int64_t M, int64_t K) {
  return arena_aligned(size_t(M * K)) + size_t(2 * M) * sizeof(float);
}

RowCodes row_codes_in(void* buffer, int64_t M, int64_t K) {
  RowCodes c;
  c.q = static_cast<uint8_t*>(buffer);
  c.scale = reinterpret_cast<float*>(c.q + arena_aligned(size_t(M * K)));
  c.zero = c.scale + M;
  return c;
}

void quantise_rows(const void* x, DType type, int64_t M, int64_t K, const RowCodes& c) {
  kernels().quantise_rows(x, type, M, K, c);
}

void int8_gemm(const RowCodes& c, int64_t M, const Int8GemmWeights& w, const Int8GemmOutput& out) {
  kernels().gemm(c, M, w, out);
}

void int8_gemm_geglu(const RowCodes& c, int64_t M, const Int8GemmWeights& value,
                     const Int8GemmWeights& gate, const Int8GemmOutput& out) {
  kernels().geglu(c, M, value, gate, out);
}

}  // namespace sdc::cpu
