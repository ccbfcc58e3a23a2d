// CPUID/XGETBV probing and the precision names of plan.h.
#include "backend/cpu/cpu_features.h"

#include <cpuid.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <string>

#include "backend/cpu/plan.h"
#include "backend/cpu/prepacked_weights.h"
#include "common/cpu_id.h"
#include "common/error.h"

namespace sdc::cpu {
namespace {

CpuFeatures probe() {
  CpuFeatures f;
  unsigned a, b, c, d;
  if (__get_cpuid(0, &a, &b, &c, &d))  // vendor string in ebx, edx, ecx: "Auth" "enti" "cAMD"
    f.amd = b == 0x68747541 && d == 0x69746e65 && c == 0x444d4163;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool fma = (c >> 12) & 1;
  const uint64_t xcr0 = os_saved_vector_state();  // 0 without OSXSAVE: no AVX below
  if (!xcr0) return f;
  const bool os_avx = (xcr0 & 0x6) == 0x6;
  const bool os_avx512 = (xcr0 & 0xe6) == 0xe6;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
  const bool avx2 = (b >> 5) & 1;
  const bool f512 = (b >> 16) & 1, dq = (b >> 17) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
  const bool amx_bf16 = (d >> 22) & 1, vnni512 = (c >> 11) & 1;
  f.avx2 = os_avx && avx2 && fma;
  f.avx512 = f.avx2 && os_avx512 && f512 && dq && bw && vl;
  f.avx512_vnni = f.avx512 && vnni512;
  unsigned a1 = 0, b1, c1, d1;
  if (__get_cpuid_count(7, 1, &a1, &b1, &c1, &d1)) {
    f.avx512_bf16 = f.avx512 && ((a1 >> 5) & 1);
    f.avx_vnni = f.avx2 && ((a1 >> 4) & 1);
  }
  f.amx_bf16 = amx_bf16 && ((xcr0 >> 17) & 3) == 3;
  return f;
}

// oneDNN's ISA cap (DNNL_MAX_CPU_ISA, read by oneDNN itself) applies to sdc's own kernels and
// precision choice too, so one variable makes an AVX-512 machine behave as an AVX2-only one —
// which is how the AVX2 path is tested on machines that have more.
void apply_isa_cap(CpuFeatures& f, std::string cap) {
  for (char& ch : cap) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  if (cap.empty() || cap == "all" || cap.rfind("avx512_core_amx", 0) == 0) return;
  f.amx_bf16 = false;
  if (cap.rfind("avx512_core_bf16", 0) == 0) return;
  f.avx512_bf16 = false;
  if (cap.rfind("avx512_core_vnni", 0) == 0) return;
  f.avx512_vnni = false;
  if (cap.rfind("avx512", 0) == 0) return;
  f.avx512 = false;
  if (cap.rfind("avx2_vnni", 0) == 0) return;
  f.avx_vnni = false;
  if (cap.rfind("avx2", 0) == 0) return;
  f.avx2 = false;
}

std::atomic<KernelIsa> g_cap{KernelIsa::Avx512};

CpuFeatures& features() {
  static CpuFeatures f = [] {
    CpuFeatures probed = probe();
    if (const char* cap = std::getenv("DNNL_MAX_CPU_ISA")) apply_isa_cap(probed, cap);
    return probed;
  }();
  return f;
}

}  // namespace

const CpuFeatures& cpu_features() {
  return features();
}

void cap_cpu_features(const std::string& isa) {
  apply_isa_cap(features(), isa);
}

KernelIsa kernel_isa() {
  const CpuFeatures& f = cpu_features();
  const KernelIsa cpu = f.avx512 ? KernelIsa::Avx512 : f.avx2 ? KernelIsa::Avx2 : KernelIsa::Scalar;
  return std::min(cpu, g_cap.load());
}
void force_kernel_isa(KernelIsa cap) {
  g_cap = cap;
}

Int8Dot own_int8_dot() {
  if (!isa_has_int8_dot()) return Int8Dot::None;  // follows DNNL_MAX_CPU_ISA, as oneDNN does
  const CpuFeatures& f = cpu_features();
  const KernelIsa isa = kernel_isa();
  if (isa == KernelIsa::Avx512 && f.avx512_vnni) return Int8Dot::Avx512Vnni;
  if (isa == KernelIsa::Avx2 && f.avx_vnni) return Int8Dot::AvxVnni;
  return Int8Dot::None;
}

bool use_avx512_kernels() {
  return kernel_isa() == KernelIsa::Avx512;
}
void force_generic_kernels(bool generic) {
  force_kernel_isa(generic ? KernelIsa::Avx2 : KernelIsa::Avx512);
}

int resolve_threads(int threads) {
  if (threads < 0)
    throw UsageError("", "threads", "0 (all cores) or a positive count", std::to_string(threads));
  return threads == 0 ? omp_get_num_procs() : threads;
}

bool cpu_has_bf16() {
  return cpu_features().avx512_bf16 || cpu_features().amx_bf16;
}

bool bf16_is_faster() {
  // AMD's AVX512-BF16 (Zen 4/5) runs VDPBF16PS at twice the f32 FMA rate; Intel cores without AMX
  // (Cooper Lake, or Sapphire Rapids with AMX hidden by a hypervisor) issue it on one port, so
  // bf16 convolutions ran at half the f32 speed there (85 vs 167 GMAC/s, 3x3 320->320 at 64x64).
  const CpuFeatures& f = cpu_features();
  return f.amx_bf16 || (f.avx512_bf16 && f.amd);
}

Precision parse_precision(const std::string& name) {
  if (name == "f32") return Precision::F32;
  if (name == "bf16") return Precision::BF16;
  if (name == "auto") return bf16_is_faster() ? Precision::BF16 : Precision::F32;
  if (name == "int8") return Precision::INT8;
  throw UsageError("", "precision", "one of f32, bf16, auto, int8", "'" + name + "'");
}

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::BF16:
      return "bf16";
    case Precision::INT8:
      return "int8";
    default:
      return "f32";
  }
}

}  // namespace sdc::cpu
