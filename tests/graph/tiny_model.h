// Shared helpers of the graph tests: the tiny-sd15 fixture's weights and hyper-parameters (from its
// README/cases.json), NCHW <-> NHWC conversion at the fixture boundary, and weight maps without
// data for building full-size graphs cheaply.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "common/fixtures.h"
#include "io/safetensors.h"
#include "model/hparams.h"
#include "model/random_model.h"

namespace sdc::test {

inline const WeightMap& tiny_weights() {
  static const io::TensorFile f = io::read_safetensors(tiny("model.safetensors"));
  return f.tensors;
}

inline const WeightMap& tiny_controlnet_weights() {
  static const io::TensorFile f = io::read_safetensors(tiny("controlnet.safetensors"));
  return f.tensors;
}

inline model::UNetParams tiny_unet_params() {
  model::UNetParams p;
  p.block_out_channels = {32, 32, 64, 64};
  p.num_heads = 8;
  p.context_dim = 32;
  return p;
}

inline model::TextEncoderParams tiny_text_encoder_params() {
  model::TextEncoderParams p;
  p.hidden = 32;
  p.layers = 3;
  p.heads = 4;
  p.intermediate = 128;
  return p;
}

inline model::VaeParams tiny_vae_params() {
  model::VaeParams p;
  p.block_out_channels = {32, 32, 32, 32};
  return p;
}

inline model::ControlNetParams tiny_controlnet_params() {
  model::ControlNetParams p;
  p.unet = tiny_unet_params();
  p.hint_channels = {16, 16, 32, 32};
  return p;
}

// [N, C, H, W] -> [N, H, W, C]
inline std::vector<float> nchw_to_nhwc(const std::vector<float>& x, const Shape& nchw) {
  const int64_t n = nchw[0], c = nchw[1], hw = nchw[2] * nchw[3];
  std::vector<float> out(x.size());
  for (int64_t b = 0; b < n; ++b)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t i = 0; i < hw; ++i)
        out[size_t((b * hw + i) * c + ch)] = x[size_t((b * c + ch) * hw + i)];
  return out;
}

// [N, H, W, C] -> [N, C, H, W], from a raw buffer of `nhwc` shape.
inline std::vector<float> nhwc_to_nchw(const float* x, const Shape& nhwc) {
  const int64_t n = nhwc[0], hw = nhwc[1] * nhwc[2], c = nhwc[3];
  std::vector<float> out(size_t(n * hw * c));
  for (int64_t b = 0; b < n; ++b)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t i = 0; i < hw; ++i)
        out[size_t((b * c + ch) * hw + i)] = x[size_t((b * hw + i) * c + ch)];
  return out;
}

// A reference tensor of integers (ids, timesteps: stored as I64) as int64 values.
inline std::vector<int64_t> ref_i64(const std::string& name) {
  const TensorRef& t = reference().tensors.get(name);
  std::vector<int64_t> out(size_t(t.numel()));
  if (t.dtype != DType::I64) throw std::runtime_error(name + " is not I64");
  std::memcpy(out.data(), t.data, out.size() * sizeof(int64_t));
  return out;
}

inline Shape ref_shape(const std::string& name) {
  return reference().tensors.get(name).shape;
}

// Tensors with names and shapes but no data: enough to build (not run) a graph.
inline WeightMap shapes_only(const model::WeightShapes& shapes, DType dtype = DType::BF16) {
  WeightMap m;
  m.description = "shapes only";
  for (const auto& [name, shape] : shapes) {
    TensorRef t;
    t.dtype = dtype;
    t.shape = shape;
    t.nbytes = size_t(shape_numel(shape)) * dtype_size(dtype);
    m.set(name, t);
  }
  return m;
}

}  // namespace sdc::test
