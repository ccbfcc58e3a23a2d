// The own CPU kernels (everything oneDNN does not do for us): norms, activations, broadcasting
// arithmetic, layout moves, embeddings. All take NHWC / [..., C] row-major data, compute in f32,
// parallelise with OpenMP over the current thread count, and pick their AVX-512 path at run time
// (use_avx512_kernels()). Outputs marked `void* y, DType ydt` may be F32 or BF16 (a bf16 consumer
// such as a bf16 convolution reads them directly); inputs are f32.
#pragma once

#include <cstddef>
#include <cstdint>

#include "backend/cpu/int8_gemm.h"
#include "common/dtype.h"

namespace sdc::cpu {

// GroupNorm over x [N, P, C] (P = pixels or tokens): statistics per (n, group of C/G channels)
// over P x C/G values, accumulated with per-channel shifts in double (accurate at any size).
// add_nc [N, C] (optional) is added to x first (the fused ResNet time-embedding add).
// `scratch` holds group_norm_scratch_bytes(N, C, threads) bytes.
// x may be BF16 (a bf16 convolution output whose only consumer is the norm); statistics are f32.
// `stats` (optional) shares statistics between calls (VAE tiling): with replay_mean/replay_var
// set they are used instead of computing them (x is read once); with record_mean/record_var set
// the computed ones are written there. Each is [N, G], in double like the kernel's own.
struct GroupNormStatsIo {
  const double* replay_mean = nullptr;
  const double* replay_var = nullptr;
  double* record_mean = nullptr;
  double* record_var = nullptr;
};
size_t group_norm_scratch_bytes(int64_t N, int64_t C, int threads);
void group_norm(const void* x, DType xdt, const float* add_nc, const float* gamma,
                const float* beta, int64_t N, int64_t P, int64_t C, int64_t G, float eps, bool silu,
                void* y, DType ydt, void* scratch, const GroupNormStatsIo& stats = {});

// GroupNorm (as group_norm) whose output is only ever read as W8A8 row codes: each pixel's C
// normalised values (f32) go straight to quantise_row (int8_gemm.h), N P rows of C codes; the
// output itself is never written. AVX-512 only, as layer_norm_row_codes.
void group_norm_row_codes(const void* x, DType xdt, const float* add_nc, const float* gamma,
                          const float* beta, int64_t N, int64_t P, int64_t C, int64_t G, float eps,
                          bool silu, const RowCodes& codes, void* scratch,
                          const GroupNormStatsIo& stats = {});

// LayerNorm over the last axis of x [rows, C] (x F32 or BF16) whose output is only ever read as
// W8A8 row codes: each normalised row (f32) goes straight to quantise_row (int8_gemm.h), rows
// rows of C codes; the output itself is never written. AVX-512 only (the
// planner fuses it only where int8_gemm runs).
void layer_norm_row_codes(const void* x, DType xdt, const float* gamma, const float* beta,
                          int64_t rows, int64_t C, float eps, const RowCodes& codes);

// LayerNorm over the last axis of x [rows, C] (x F32 or BF16).
void layer_norm(const void* x, DType xdt, const float* gamma, const float* beta, int64_t rows,
                int64_t C, float eps, void* y, DType ydt);

enum class Unary { Gelu, QuickGelu, Silu, Relu, Tanh, Scale };
// y = op(x) elementwise over n values (Scale: x * scale + bias). y may alias x when ydt is F32.
void unary(Unary op, const float* x, void* y, DType ydt, int64_t n, float scale = 1.f,
           float bias = 0.f);

// x [rows, 2D] -> y [rows, D] = x[:, :D] * gelu(x[:, D:]).
void geglu(const float* x, void* y, DType ydt, int64_t rows, int64_t D);

enum class Binary { Add, Mul };
enum class Broadcast {
  None,          // b has a's shape
  BatchChannel,  // a [N, inner, C], b [N, C]
  Scalar,        // b [1]
};
// y = a op b; y may alias a (or b when Broadcast::None).
void binary(Binary op, Broadcast bc, const float* a, const float* b, float* y, int64_t N,
            int64_t inner, int64_t C);

void convert_to_bf16(const float* x, uint16_t* y, int64_t n);

// W8A8 activations, asymmetric per tensor: with lo = min(x, 0) and hi = max(x, 0),
// scale = (hi - lo) / 255 (1 when both are 0) and zero_point = round(-lo / scale), each value
// becomes q = clamp(round(x / scale) + zero_point, 0, 255) (rounding to nearest, ties to even),
// so x ~ (q - zero_point) * scale. One-sided inputs (after SiLU/GELU) get twice the resolution a
// symmetric scale would give them. x is F32 or BF16, n values. `min_scale` raises the scale
// to at least that (the steps whose bias must fit their s32 sums ask for it; 0: no floor).
struct ActivationScale {
  float scale = 1.f;
  int32_t zero_point = 0;
};
ActivationScale quantize_u8(const void* x, DType xdt, int64_t n, uint8_t* q, float min_scale = 0.f);

// Channels-last images [N, H, W, C] whose codes go into a zero-padded frame
// [N, top + H + bottom, left + W + right, C] for a convolution without padding of its own: the
// frame holds the zero point, the code of 0, so that a convolution over it sees what one with
// padding sees in x (oneDNN's own zero-point path for padded u8 convolutions gives wrong sums
// for some shapes: 1920 -> 640 channels at every size, 960 -> 320 at 128x128, in 2.6).
struct PaddedImages {
  int64_t N = 1, H = 1, W = 1, C = 0;
  int64_t top = 0, left = 0, bottom = 0, right = 0;
  int64_t values() const { return N * H * W * C; }
  int64_t codes() const { return N * (top + H + bottom) * (left + W + right) * C; }
};
ActivationScale quantize_u8_padded(const void* x, DType xdt, const PaddedImages& g, uint8_t* q,
                                   float min_scale = 0.f);

// Nearest upsampling of x [N, H, W, C] to [N, Ho, Wo, C] (PyTorch 'nearest': source index
// floor(dst * in / out) computed with a float scale in/out, clamped to in - 1).
// y may be BF16 (the upsampled tensor feeding a bf16 convolution).
void upsample_nearest(const float* x, void* y, DType ydt, int64_t N, int64_t H, int64_t W,
                      int64_t C, int64_t Ho, int64_t Wo);

// The last move of a 3x3 convolution over a 2x nearest-upsampled image computed as one 2x2
// convolution over the small image (see upsample_conv.h): t [N, H+1, W+1, 4C] holds the four
// output phases (py, px) side by side in channels; y [N, 2H, 2W, C] gets
// y[n, 2i+py, 2j+px, c] = t[n, i+py, j+px, (2py+px)C + c]. Both of type `dt` (F32 or BF16).
void interleave_upsample_phases(const void* t, void* y, DType dt, int64_t N, int64_t H, int64_t W,
                                int64_t C);

// Concatenation / slicing along the last axis of row-major [rows, C] data.
void concat_last(const float* a, const float* b, float* y, int64_t rows, int64_t Ca, int64_t Cb);
void slice_last(const float* x, float* y, int64_t rows, int64_t C, int64_t begin, int64_t end);

// diffusers get_timestep_embedding: t [N] -> [N, dim].
void timestep_embedding(const float* t, float* y, int64_t N, int64_t dim, bool flip_sin_to_cos,
                        float freq_shift);

// y [n, C] = table[ids[i]] as f32, the table [V, C] in its stored float type (F32/F16/BF16/F64);
// throws sdc::Error for an id outside [0, V).
void embedding(const int32_t* ids, const void* table, DType table_dtype, float* y, int64_t n,
               int64_t V, int64_t C);

// Copies n values (f32) - used when an output must be materialised.
void copy_f32(const float* x, float* y, int64_t n);

}  // namespace sdc::cpu
