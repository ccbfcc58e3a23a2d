// What the CPU can do (read once by CPUID), and the kernel path chosen from it. The AVX-512 kernels
// are compiled with per-function target attributes, so one binary runs on AVX2-only machines too.
#pragma once

#include <string>

namespace sdc::cpu {

struct CpuFeatures {
  bool avx2 = false;    // AVX2 + FMA, enabled by the OS
  bool avx512 = false;  // AVX-512 F/BW/VL/DQ, enabled by the OS
  bool avx512_bf16 = false;
  bool avx512_vnni = false;  // the EVEX 512-bit VNNI dot products
  bool avx_vnni = false;     // the VEX-encoded 256-bit VNNI dot products (AVX2 CPUs, Alder Lake on)
  bool amx_bf16 = false;
  bool amd = false;  // vendor AuthenticAMD
};

// Probed once. DNNL_MAX_CPU_ISA (oneDNN's own cap, e.g. AVX2) lowers what is reported, so the
// own kernels and `--precision auto` follow the same cap as oneDNN.
const CpuFeatures& cpu_features();
// Lowers what cpu_features() reports as DNNL_MAX_CPU_ISA=isa would have (oneDNN's names,
// lowercase): `sdc convert --target` packs for another CPU class with oneDNN and the own kernels
// capped alike. Call before planning; it does not raise what was capped already.
void cap_cpu_features(const std::string& isa);

// The own kernels' widest path: AVX-512, AVX2 + FMA (the kernels whose time matters there, as
// attention's softmax; the others take the scalar path) or scalar.
enum class KernelIsa { Scalar, Avx2, Avx512 };
// The CPU's (after DNNL_MAX_CPU_ISA), capped by force_kernel_isa.
KernelIsa kernel_isa();
// Tests: run the own kernels at most at `cap` (Avx512: no cap).
void force_kernel_isa(KernelIsa cap);

// The build of the own int8 kernels (int8 attention, int8_gemm) that runs here: AVX512-VNNI where
// the own kernels run AVX-512, AVX-VNNI where they run AVX2, none elsewhere or where oneDNN was
// capped below an int8 dot product (isa_has_int8_dot). Follows force_kernel_isa.
enum class Int8Dot { None, AvxVnni, Avx512Vnni };
Int8Dot own_int8_dot();

// Whether the own kernels take their AVX-512 path (kernel_isa() is Avx512).
bool use_avx512_kernels();
// force_kernel_isa(Avx2) for true (the portable paths, vectorised where they have an AVX2 one),
// no cap for false.
void force_generic_kernels(bool generic);

// OpenMP threads for oneDNN and the own kernels: `threads` (0 = all cores).
int resolve_threads(int threads);

}  // namespace sdc::cpu
