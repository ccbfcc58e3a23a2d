// Included first by the files that must round like PyTorch (RNG, schedules, samplers).
//
// PyTorch rounds every tensor operation separately: let no compiler fuse a multiply and an add in
// the including file (explicit std::fma calls stay fused). It must come before the other includes:
// GCC attaches the option to functions when they are declared, and our classes are declared in
// headers.
#pragma once

#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif
