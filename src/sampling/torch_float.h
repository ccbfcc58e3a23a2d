// Float32 building blocks that round exactly as PyTorch 1.13 does on an x86-64 CPU, shared by the
// noise schedules and the samplers: torch.linspace's vectorised kernel, and the element-wise
// transcendental functions of short tensors (PyTorch's scalar path calls glibc's float functions).
#pragma once

#include <span>
#include <vector>

namespace sdc::sampling {

// Element-wise float32 functions over a contiguous tensor as PyTorch 1.13's AVX2 CPU kernels
// apply them. log, exp, tan go through at::vml: every element, a 0-dim tensor included, through
// SLEEF's 8-lane u10 functions (the tail as a partial vector). pow(Tensor, Scalar) is a plain
// element-wise kernel: the first floor(n / 16) * 16 elements through SLEEF, the tail through
// std::pow(float, double); exponents 1, 2, 3 and 0.5 are special-cased exactly.
void torch_log_f32(std::span<float> values);
void torch_exp_f32(std::span<float> values);
void torch_tan_f32(std::span<float> values);
void torch_expm1_f32(std::span<float> values);
void torch_pow_f32(std::span<float> values, double exponent);  // Tensor ** Python float

// The same on a 0-dim tensor (one float32 value): what `sigma.log()` etc. give in k-diffusion.
float t_log(float x);
float t_exp(float x);
float t_expm1(float x);

// torch.linspace(start, end, n) in float32 (PyTorch 1.13's AVX2 CPU kernel, see torch_float.cpp).
std::vector<float> torch_linspace_f32(float start, float end, int n);

// numpy.linspace(start, stop, n) in float64: i * ((stop - start) / (n - 1)) + start, the last
// value exactly `stop`.
std::vector<double> numpy_linspace(double start, double stop, int n);

// Python's round(x, ndigits) for a finite double: the decimal value nearest to x (ties to even on
// the exact binary value), read back as a double.
double python_round(double x, int ndigits);

}  // namespace sdc::sampling
