// Streaming export: worker threads merge and cast tensors ahead of the writer, which writes them
// in file order; at most a small window of finished tensors waits in memory at any time.
#include "model/gguf_export.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>

#include "common/error.h"
#include "common/stopwatch.h"
#include "model/key_mapping.h"
#include "model/lora_fused_merge.h"

namespace sdc::model {
namespace {

// One LoRA module to add to a weight, with its scale and file (for messages).
struct Piece {
  const LoraModule* module;
  float scale;
  const std::string* file;
};

// A tensor's bytes, ready to write: a view of the source, or a buffer owned here.
struct Output {
  std::vector<float> f32;
  std::vector<uint8_t> bytes;
  const void* data = nullptr;
  size_t nbytes = 0;
  bool ready = false;
};

__attribute__((target("avx512f"))) void f16_to_f32_avx512(const uint16_t* src, float* dst,
                                                          size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(dst + i,
                     _mm512_maskz_cvtph_ps(
                         0xffff, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i))));
  for (; i < n; ++i) dst[i] = f16_to_f32(src[i]);
}

// convert_to_f32 with the hardware f16 conversion where there is one (exact, like the software
// one; most checkpoints are f16, so this is most of a cast's work).
void to_f32(DType from, const void* src, float* dst, size_t n) {
  static const bool avx512 = __builtin_cpu_supports("avx512f");
  if (from == DType::F16 && avx512)
    f16_to_f32_avx512(static_cast<const uint16_t*>(src), dst, n);
  else
    convert_to_f32(from, src, dst, n);
}

// Casts `n` values of `from` at `src` to `to` at `dst` through small f32 blocks (cache-sized,
// so a cast never needs a whole-tensor f32 copy).
void cast(DType from, const void* src, DType to, void* dst, size_t n) {
  constexpr size_t kBlock = 16384;
  std::vector<float> tmp(std::min(n, kBlock));
  const auto* s = static_cast<const uint8_t*>(src);
  auto* d = static_cast<uint8_t*>(dst);
  for (size_t i = 0; i < n; i += kBlock) {
    const size_t k = std::min(kBlock, n - i);
    to_f32(from, s + i * dtype_size(from), tmp.data(), k);
    convert_from_f32(to, tmp.data(), d + i * dtype_size(to), k);
  }
}

Output produce(const std::string& name, const TensorRef& t, DType out,
               const std::vector<Piece>* pieces) {
  Output o;
  const size_t n = size_t(t.numel());
  if (!pieces && t.dtype == out) {
    o.data = t.data;
    o.nbytes = t.nbytes;
    return o;
  }
  if (!pieces) {
    o.bytes.resize(n * dtype_size(out));
    cast(t.dtype, t.data, out, o.bytes.data(), n);
    o.data = o.bytes.data();
    o.nbytes = o.bytes.size();
    return o;
  }
  // Merge in f32 exactly as merge_lora does (W + scale·ΔW per module, in LoRA order; plain
  // up/down modules through the bit-identical fused kernel), then cast.
  o.f32.resize(n);
  to_f32(t.dtype, t.data, o.f32.data(), n);
  for (const Piece& p : *pieces)
    if (!fused_lora_merge(o.f32, *p.module, p.scale))
      apply_lora_module(o.f32, t.shape, *p.module, p.scale, *p.file, name);
  if (out == DType::F32) {
    o.data = o.f32.data();
    o.nbytes = n * sizeof(float);
    return o;
  }
  o.bytes.resize(n * dtype_size(out));
  convert_from_f32(out, o.f32.data(), o.bytes.data(), n);
  o.f32 = {};
  o.data = o.bytes.data();
  o.nbytes = o.bytes.size();
  return o;
}

}  // namespace

DType ComponentTypes::for_tensor(const std::string& ldm_name, DType dtype) const {
  if (!is_float(dtype)) return dtype;
  const auto c = component_of(ldm_name);
  if (!c) return dtype;
  switch (*c) {
    case Component::UNet:
      return unet;
    case Component::TextEncoder:
      return text_encoder;
    case Component::Vae:
      return vae;
    case Component::ControlNet:
      return controlnet;
  }
  return dtype;
}

std::map<std::string, DType> ComponentTypes::by_component() const {
  return {{"unet", unet}, {"text_encoder", text_encoder}, {"vae", vae}, {"controlnet", controlnet}};
}

LoraBake prepare_lora_bake(const WeightMap& weights, const LoraTargets& targets,
                           const LoraFile& lora, float scale, bool ignore_unmatched,
                           LoraReport& report) {
  report = LoraReport{};
  report.file = lora.path;
  report.format = lora.format();
  report.scale = scale;
  if (!std::isfinite(scale))
    throw Error(lora.path, "scale", "a finite number", std::to_string(scale));
  LoraBake bake;
  bake.lora = &lora;
  bake.scale = scale;
  bake.matches = match_lora(weights, targets, lora, ignore_unmatched, &report.skipped);
  for (const LoraMatch& m : bake.matches) {
    if (m.component == LoraComponent::UNet)
      ++report.unet_modules;
    else
      ++report.text_encoder_modules;
    if (m.module->rank > 0) report.ranks.insert(m.module->rank);
  }
  return bake;
}

ExportResult export_gguf(const std::string& path, const WeightMap& weights,
                         const std::vector<LoraBake>& loras, const ComponentTypes& types,
                         const io::GgufMetadata& metadata, const ExportOptions& options) {
  Stopwatch clock;
  std::map<std::string, std::vector<Piece>> pieces;
  for (const LoraBake& b : loras)
    for (const LoraMatch& m : b.matches)
      pieces[m.weight].push_back({m.module, b.scale, &b.lora->path});

  struct Job {
    const std::string* name;
    const TensorRef* tensor;
    DType out;
    const std::vector<Piece>* pieces;
  };
  std::vector<Job> jobs;
  std::vector<io::GgufTensorInfo> infos;
  ExportResult result;
  for (const auto& [name, t] : weights.all()) {
    auto it = pieces.find(name);
    if (it != pieces.end()) ++result.merged;
    const DType out = types.for_tensor(name, t.dtype);
    jobs.push_back({&name, &t, out, it == pieces.end() ? nullptr : &it->second});
    infos.push_back({name, out, t.shape});
  }
  for (const auto& [name, _] : pieces)
    if (!weights.contains(name))
      throw Error(path, name, "a weight of the model for the LoRA to merge into", "none");

  io::GgufWriter writer(path, std::move(infos), metadata, 64);
  const size_t n = jobs.size();
  int workers = options.threads > 0 ? options.threads : int(std::thread::hardware_concurrency());
  workers = std::max(1, std::min(workers, int(std::max<size_t>(n, 1))));
  const size_t window = size_t(2 * workers + 1);  // finished tensors waiting to be written

  std::mutex mu;
  std::condition_variable cv;
  std::vector<Output> slots(n);
  size_t next = 0, written = 0;
  bool stop = false;
  std::exception_ptr error;
  auto fail = [&](std::exception_ptr e) {
    std::lock_guard<std::mutex> lock(mu);
    if (!error) error = e;
    stop = true;
    cv.notify_all();
  };

  std::vector<std::thread> pool;
  for (int w = 0; w < workers; ++w)
    pool.emplace_back([&] {
      for (;;) {
        size_t i;
        {
          std::unique_lock<std::mutex> lock(mu);
          cv.wait(lock, [&] { return stop || next >= n || next < written + window; });
          if (stop || next >= n) return;
          i = next++;
        }
        try {
          Output o = produce(*jobs[i].name, *jobs[i].tensor, jobs[i].out, jobs[i].pieces);
          std::lock_guard<std::mutex> lock(mu);
          slots[i] = std::move(o);
          slots[i].ready = true;
        } catch (...) {
          fail(std::current_exception());
          return;
        }
        cv.notify_all();
      }
    });

  // The writer: tensors in file order. Anything thrown here (a full disk, the progress callback
  // asking to stop) stops the workers too; they are always joined before the error goes on.
  try {
    for (size_t i = 0; i < n; ++i) {
      Output o;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return stop || slots[i].ready; });
        if (stop) break;
        o = std::move(slots[i]);
      }
      writer.write_tensor(o.data, o.nbytes);
      // Written: the mapped source tensor need not stay resident (convert's RSS stays near the
      // window of tensors in flight, not the whole checkpoint).
      jobs[i].tensor->release_pages();
      {
        std::lock_guard<std::mutex> lock(mu);
        ++written;
      }
      cv.notify_all();
      if (options.on_tensor) options.on_tensor(i + 1, n);
    }
  } catch (...) {
    fail(std::current_exception());
  }
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
  writer.commit();
  result.tensors = n;
  result.bytes = writer.file_size();
  result.seconds = clock.seconds();
  return result;
}

}  // namespace sdc::model
