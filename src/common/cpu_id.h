// What the OS lets the CPU's vector registers hold: XCR0, read by XGETBV. The one reading shared by
// the bulk fp16 conversion (dtype.cpp, F16C) and the backend's feature probe (cpu_features.cpp),
// which both must check that the OS saves the YMM / ZMM state before using AVX or AVX-512.
#pragma once

#include <cstdint>

namespace sdc {

// XCR0, or 0 where the OS has not enabled XSAVE (CPUID leaf 1, ECX bit 27): no AVX state at all.
uint64_t os_saved_vector_state();

}  // namespace sdc
