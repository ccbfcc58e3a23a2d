// TAESD file formats: recognising each network by its first layer, the diffusers key shift and
// the SD1.x layout check.
#include "model/taesd_file.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "io/open_file.h"

namespace sdc::model {

namespace fs = std::filesystem;

namespace {

constexpr int64_t C = 64;  // SD1.x TAESD width
constexpr int64_t kLatent = 4;

using Layout = std::map<std::string, Shape>;

void add_conv(Layout& l, const std::string& name, int64_t co, int64_t ci, bool bias = true) {
  l[name + ".weight"] = {co, ci, 3, 3};
  if (bias) l[name + ".bias"] = {co};
}
void add_block(Layout& l, int index) {
  for (const char* c : {".conv.0", ".conv.2", ".conv.4"})
    add_conv(l, std::to_string(index) + c, C, C);
}

// taesd.py Decoder(): 0 Clamp, 1 conv 4->64, 2 ReLU, (3 Blocks, Upsample, conv no bias) x3,
// 18 Block, 19 conv 64->3.
const Layout& decoder_layout() {
  static const Layout l = [] {
    Layout d;
    add_conv(d, "1", C, kLatent);
    for (int i : {3, 4, 5, 8, 9, 10, 13, 14, 15, 18}) add_block(d, i);
    for (int i : {7, 12, 17}) add_conv(d, std::to_string(i), C, C, /*bias=*/false);
    add_conv(d, "19", 3, C);
    return d;
  }();
  return l;
}

// taesd.py Encoder(): 0 conv 3->64, 1 Block, (conv stride 2 no bias, 3 Blocks) x3, 14 conv 64->4.
const Layout& encoder_layout() {
  static const Layout l = [] {
    Layout e;
    add_conv(e, "0", C, 3);
    for (int i : {1, 3, 4, 5, 7, 8, 9, 11, 12, 13}) add_block(e, i);
    for (int i : {2, 6, 10}) add_conv(e, std::to_string(i), C, C, /*bias=*/false);
    add_conv(e, "14", kLatent, C);
    return e;
  }();
  return l;
}

// Checks `tensors` (taesd.py keys) against `layout` and stores them under `prefix`.
void take(const std::string& file, const WeightMap& tensors, const Layout& layout,
          const std::string& prefix, const char* what, WeightMap& into) {
  for (const auto& [name, t] : tensors.all()) {
    auto it = layout.find(name);
    if (it == layout.end())
      throw Error(file, name, std::string("only the SD1.x ") + what + "'s keys", "an unknown key");
    if (t.shape != it->second)
      throw Error(file, name, shape_str(it->second),
                  shape_str(t.shape) +
                      (name == "1.weight" || name == "14.weight"
                           ? " (another latent space: TAESD for SD1.x has 4 latent channels)"
                           : ""));
    if (t.dtype != DType::F32 && t.dtype != DType::F16 && t.dtype != DType::BF16)
      throw Error(file, name, "element type F32, F16 or BF16", std::string(dtype_name(t.dtype)));
  }
  for (const auto& [name, shape] : layout)
    if (!tensors.contains(name))
      throw Error(file, name, std::string("a tensor of the ") + what + " " + shape_str(shape),
                  "missing");
  for (const auto& n : into.names_with_prefix(prefix)) into.erase(n);
  for (const auto& [name, t] : tensors.all()) into.set(prefix + name, t);
}

// Both networks of one source (either may be empty).
TaesdParts take_pair(const std::string& file, const WeightMap& dec, const WeightMap& enc,
                     WeightMap& into) {
  TaesdParts parts;
  if (dec.size()) {
    take(file, dec, decoder_layout(), kTaesdDecoderPrefix, "TAESD decoder", into);
    parts.decoder = true;
  }
  if (enc.size()) {
    take(file, enc, encoder_layout(), kTaesdEncoderPrefix, "TAESD encoder", into);
    parts.encoder = true;
  }
  return parts;
}

// One original-layout file: the decoder's first conv is "1" (after the parameter-free clamp),
// the encoder's is "0".
TaesdParts take_original(const io::TensorFile& f, WeightMap& into, const std::string& flag) {
  if (f.tensors.contains("1.weight") && !f.tensors.contains("0.weight")) {
    take(f.path, f.tensors, decoder_layout(), kTaesdDecoderPrefix, "TAESD decoder", into);
    return {true, false};
  }
  if (f.tensors.contains("0.weight")) {
    take(f.path, f.tensors, encoder_layout(), kTaesdEncoderPrefix, "TAESD encoder", into);
    return {false, true};
  }
  throw Error(f.path, flag,
              "a TAESD decoder or encoder (taesd.py keys 1.weight / 0.weight, or a diffusers "
              "AutoencoderTiny folder)",
              f.tensors.size() == 0 ? std::string("no tensors")
                                    : "keys such as " + f.tensors.all().begin()->first);
}

bool is_autoencoder_tiny_folder(const fs::path& dir) {
  std::error_code ec;
  const fs::path cfg = dir / "config.json";
  if (!fs::is_regular_file(cfg, ec)) return false;
  std::ifstream in(cfg);
  nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  return j.is_object() && j.value("_class_name", "") == "AutoencoderTiny";
}

TaesdParts take_autoencoder_tiny(const fs::path& dir, WeightMap& into) {
  const std::string cfg_path = (dir / "config.json").string();
  std::ifstream in(cfg_path);
  const nlohmann::json cfg = nlohmann::json::parse(in, nullptr, false);
  // The SD1.x variant: 4 latent channels, 64-wide blocks, the raw UNet latents in and out.
  if (cfg.value("latent_channels", int64_t(-1)) != kLatent)
    throw Error(cfg_path, "latent_channels", "4 (TAESD for SD1.x)",
                cfg.contains("latent_channels") ? cfg["latent_channels"].dump() : "missing");
  if (cfg.contains("scaling_factor") && cfg["scaling_factor"] != 1.0)
    throw Error(cfg_path, "scaling_factor", "1.0 (TAESD takes the UNet's latents as they are)",
                cfg["scaling_factor"].dump());
  fs::path weights;
  std::error_code ec;
  for (const char* name :
       {"diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors",
        "diffusion_pytorch_model.bin"})
    if (fs::is_regular_file(dir / name, ec)) {
      weights = dir / name;
      break;
    }
  if (weights.empty())
    throw Error(dir.string(), "weights",
                "diffusion_pytorch_model.safetensors (or .fp16.safetensors, .bin) next to "
                "config.json",
                "none");
  const io::TensorFile f = io::open_tensor_file(weights.string());
  WeightMap dec, enc;
  const std::string kEnc = "encoder.layers.", kDec = "decoder.layers.";
  for (const auto& [name, t] : f.tensors.all()) {
    if (name.starts_with(kEnc)) {
      enc.set(name.substr(kEnc.size()), t);
    } else if (name.starts_with(kDec)) {
      // diffusers' decoder layers skip the parameter-free clamp: its layer N is taesd.py's N+1.
      const std::string rest = name.substr(kDec.size());
      const size_t dot = rest.find('.');
      int layer = -1;
      try {
        layer = std::stoi(rest.substr(0, dot));
      } catch (const std::exception&) {
      }
      if (dot == std::string::npos || layer < 0)
        throw Error(f.path, name, "decoder.layers.<index>.*", "a key without a layer index");
      dec.set(std::to_string(layer + 1) + rest.substr(dot), t);
    } else {
      throw Error(f.path, name, "encoder.layers.* or decoder.layers.* (AutoencoderTiny)",
                  "an unknown key");
    }
  }
  return take_pair(f.path, dec, enc, into);
}

}  // namespace

TaesdParts load_taesd(const std::string& path, WeightMap& into, const std::string& flag) {
  std::error_code ec;
  if (!fs::exists(path, ec))
    throw Error(path, flag, "a TAESD file or folder", "no such file or directory");
  if (!fs::is_directory(path, ec)) return take_original(io::open_tensor_file(path), into, flag);
  const fs::path dir(path);
  if (is_autoencoder_tiny_folder(dir)) return take_autoencoder_tiny(dir, into);
  // A folder of original files (A1111's models/VAE-taesd/), or one AutoencoderTiny folder in it.
  TaesdParts parts;
  for (const char* net : {"taesd_decoder", "taesd_encoder"}) {
    for (const char* ext : {".safetensors", ".pth"}) {
      const fs::path p = dir / (std::string(net) + ext);
      if (!fs::is_regular_file(p, ec)) continue;
      const TaesdParts got = take_original(io::open_tensor_file(p.string()), into, flag);
      parts.decoder |= got.decoder;
      parts.encoder |= got.encoder;
      break;  // .safetensors first: the .pth twin holds the same weights
    }
  }
  if (!parts.decoder && !parts.encoder)
    for (const auto& entry : fs::directory_iterator(dir, ec))
      if (entry.is_directory() && is_autoencoder_tiny_folder(entry.path()))
        return take_autoencoder_tiny(entry.path(), into);
  if (!parts.decoder && !parts.encoder)
    throw Error(path, flag,
                "taesd_decoder.safetensors / .pth, taesd_encoder.* or a diffusers AutoencoderTiny "
                "folder (config.json with _class_name AutoencoderTiny)",
                "none of them in the folder");
  return parts;
}

TaesdParts add_bundled_taesd(const std::string& file, const WeightMap& tensors, WeightMap& into) {
  WeightMap dec, enc;
  const std::string kDec = kTaesdDecoderPrefix, kEnc = kTaesdEncoderPrefix;
  for (const auto& [name, t] : tensors.all()) {
    if (name.starts_with(kDec))
      dec.set(name.substr(kDec.size()), t);
    else if (name.starts_with(kEnc))
      enc.set(name.substr(kEnc.size()), t);
    else
      throw Error(file, name, "taesd.decoder.* or taesd.encoder.*", "an unknown key");
  }
  return take_pair(file, dec, enc, into);
}

TaesdParts taesd_parts(const WeightMap& weights) {
  TaesdParts p;
  p.decoder = weights.contains(std::string(kTaesdDecoderPrefix) + "1.weight");
  p.encoder = weights.contains(std::string(kTaesdEncoderPrefix) + "0.weight");
  return p;
}

}  // namespace sdc::model
