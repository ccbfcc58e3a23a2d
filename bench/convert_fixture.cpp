// Writes the inputs of the `sdc convert` benchmark into a folder: a full-size SD1.5 checkpoint
// with random weights (fp16 safetensors, LDM names, ~2.1 GB) and a random full-size rank-64 kohya
// LoRA over every UNet and text-encoder Linear/conv weight a LoRA usually adapts (fp16, with
// kohya metadata naming it an LCM-LoRA, so that `convert` recommends LCM settings).
//
//   sdc_bench_convert_fixture DIR [--rank R]
//   /usr/bin/time -v sdc convert -u DIR/sd15-random-fp16.safetensors
//       -l DIR/lora-random-r64.safetensors -t bf16 -o DIR/out.gguf
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <string>

#include "common/stopwatch.h"
#include "io/safetensors.h"
#include "model/random_model.h"

namespace {

using namespace sdc;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The weights a full LoRA adapts: UNet Linear and conv weights except conv_in, conv_out and the
// time embedding MLP; text-encoder attention and MLP projections.
bool lora_target(const std::string& name, const Shape& shape) {
  if (!ends_with(name, ".weight") || (shape.size() != 2 && shape.size() != 4)) return false;
  const std::string unet = "model.diffusion_model.";
  if (name.rfind(unet, 0) == 0)
    return name.find("input_blocks.0.0.") == std::string::npos &&
           name.find(".out.2.") == std::string::npos &&
           name.find("time_embed.") == std::string::npos;
  return name.find(".encoder.layers.") != std::string::npos &&
         (name.find("_proj.") != std::string::npos || name.find(".fc") != std::string::npos);
}

// kohya module name: lora_unet_<LDM path with '_'> / lora_te_<text_model path with '_'>.
std::string kohya_name(const std::string& weight) {
  std::string path = weight.substr(0, weight.size() - std::string(".weight").size());
  std::string prefix;
  if (path.rfind("model.diffusion_model.", 0) == 0) {
    path = path.substr(std::string("model.diffusion_model.").size());
    prefix = "lora_unet_";
  } else {
    path = path.substr(std::string("cond_stage_model.transformer.").size());
    prefix = "lora_te_";
  }
  for (char& c : path)
    if (c == '.') c = '_';
  return prefix + path;
}

TensorRef random_f16(const Shape& shape, float stddev, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> v(size_t(shape_numel(shape)));
  for (float& x : v) x = dist(rng);
  return TensorRef::from_f32(v, shape, DType::F16);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s DIR [--rank R]\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  int64_t rank = 64;
  if (argc >= 4 && std::string(argv[2]) == "--rank") rank = std::atoll(argv[3]);
  try {
    Stopwatch clock;
    const WeightMap model = model::make_random_sd15(1234, DType::F16);
    io::write_safetensors(dir + "/sd15-random-fp16.safetensors", model, {{"format", "pt"}});
    std::printf("model: %zu tensors in %.1f s\n", model.size(), clock.seconds());

    clock.reset();
    std::mt19937 rng(42);
    WeightMap lora;
    int64_t params = 0;
    int modules = 0;
    for (const auto& [name, t] : model.all()) {
      if (!lora_target(name, t.shape)) continue;
      const int64_t co = t.shape[0], ci = t.shape[1];
      const bool conv = t.shape.size() == 4;
      const Shape down = conv ? Shape{rank, ci, t.shape[2], t.shape[3]} : Shape{rank, ci};
      const Shape up = conv ? Shape{co, rank, 1, 1} : Shape{co, rank};
      const std::string m = kohya_name(name);
      const int64_t fan_in = t.numel() / co;
      lora.set(m + ".lora_down.weight", random_f16(down, 1.0f / std::sqrt(float(fan_in)), rng));
      lora.set(m + ".lora_up.weight", random_f16(up, 0.01f, rng));
      lora.set(m + ".alpha", TensorRef::from_f32({float(rank)}, {}, DType::F16));
      params += shape_numel(down) + shape_numel(up);
      ++modules;
    }
    io::write_safetensors(dir + "/lora-random-r64.safetensors", lora,
                          {{"ss_network_module", "networks.lora"},
                           {"ss_network_dim", std::to_string(rank)},
                           {"ss_network_alpha", std::to_string(rank)},
                           {"ss_output_name", "lcm-lora-sdv1-5-random"}});
    std::printf("LoRA: %d modules, rank %lld, %.1f M parameters in %.1f s\n", modules,
                static_cast<long long>(rank), double(params) / 1e6, clock.seconds());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
