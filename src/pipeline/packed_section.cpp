// Writing and offering a compiled file's packed section (see packed_section.h).
#include "pipeline/packed_section.h"

#include <map>
#include <memory>

#include "backend/cpu/prepacked_weights.h"
#include "common/error.h"
#include "common/stopwatch.h"
#include "io/gguf.h"
#include "model/compiled_model.h"
#include "model/model_loader.h"
#include "pipeline/plan_cache.h"

namespace sdc::pipeline {
namespace {

struct Recorded {
  std::string key, format;
  std::shared_ptr<cpu::PackedWeight> packed;
};

// Plans every network of `model` at the sizes and batches a generation will ask for, recording
// what the planner packs.
std::vector<Recorded> record_packing(const model::LoadedModel& model, const PackOptions& o) {
  std::map<std::pair<std::string, std::string>, std::shared_ptr<cpu::PackedWeight>> seen;
  cpu::PrepackedWeights& registry = cpu::PrepackedWeights::global();
  registry.set_recorder([&](const std::string& key, const std::string& format,
                            const std::shared_ptr<cpu::PackedWeight>& p) {
    seen.emplace(std::make_pair(key, format), p);
  });
  try {
    cpu::PlanOptions po;
    po.precision = o.precision;
    po.threads = o.threads;
    auto sizes = o.sizes;
    if (sizes.empty()) sizes.emplace_back(512, 512);
    // One plan at a time: the packed weights are what is kept, not the activation arenas.
    for (const auto& [w, h] : sizes) {
      for (int batch : {o.batch, 2 * o.batch}) {
        PlanCache plans(model, po);
        plans.unet(batch, h / 8, w / 8, 77, false);
        if (model.controlnet) {
          plans.unet(batch, h / 8, w / 8, 77, true);
          plans.controlnet(batch, h / 8, w / 8, 77);
        }
      }
      PlanCache plans(model, po, o.vae_int8);
      plans.vae_decoder(1, h / 8, w / 8);
      plans.vae_encoder(1, h / 8, w / 8);
    }
    PlanCache plans(model, po);
    plans.text_encoder(1, 1);
  } catch (...) {
    registry.set_recorder({});
    throw;
  }
  registry.set_recorder({});
  std::vector<Recorded> out;
  for (auto& [k, p] : seen) out.push_back({k.first, k.second, std::move(p)});
  return out;
}

}  // namespace

PackResult add_packed_section(const std::string& path, const PackOptions& o, std::ostream& log) {
  Stopwatch clock;
  cpu::limit_isa(o.target);
  PackResult r;
  r.isa = cpu::effective_isa_name();
  const io::GgufFile g = io::read_gguf(path);
  // A file packed before: plan from its portable weights only, and replace its section.
  const io::TensorFile portable = model::without_packed_section(g.file);
  const model::LoadedModel model = model::load_model(portable, {});
  const std::vector<Recorded> packed = record_packing(model, o);

  std::vector<io::GgufTensorInfo> infos;
  std::vector<const TensorRef*> sources;
  for (const auto& [name, t] : portable.tensors.all()) {
    infos.push_back({name, t.dtype, t.shape});
    sources.push_back(&t);
  }
  io::GgufMetadata kv;
  for (const auto& [key, value] : g.kv)
    if (!model::is_packed_tensor(key)) kv.emplace_back(key, value);
  std::vector<std::string> keys, formats, names;
  for (size_t i = 0; i < packed.size(); ++i) {
    const std::string name = model::kPackedTensorPrefix + std::to_string(i);
    keys.push_back(packed[i].key);
    formats.push_back(packed[i].format);
    names.push_back(name);
    infos.push_back({name, DType::I8, {int64_t(packed[i].packed->bytes())}});
    r.bytes += packed[i].packed->bytes();
  }
  kv.emplace_back("sdc.packed.isa", io::GgufValue::string(r.isa));
  kv.emplace_back("sdc.packed.precision", io::GgufValue::string(cpu::precision_name(o.precision)));
  kv.emplace_back("sdc.packed.key", io::GgufValue::string_array(keys));
  kv.emplace_back("sdc.packed.format", io::GgufValue::string_array(formats));
  kv.emplace_back("sdc.packed.tensor", io::GgufValue::string_array(names));

  io::GgufWriter writer(path, infos, kv, uint32_t(g.alignment));
  for (const TensorRef* t : sources) writer.write_tensor(t->data, t->nbytes);
  for (const Recorded& p : packed) writer.write_tensor(p.packed->data(), p.packed->bytes());
  writer.commit();
  r.weights = packed.size();
  r.seconds = clock.seconds();
  log << "packed " << r.weights << " weights (" << double(r.bytes) / 1e6 << " MB) for " << r.isa
      << ", " << cpu::precision_name(o.precision) << ", in " << r.seconds << " s\n";
  return r;
}

size_t offer_packed_section(const io::TensorFile& file, std::ostream& log) {
  const nlohmann::json& m = file.metadata;
  if (!m.is_object() || !m.contains("sdc.packed.isa")) return 0;
  const auto string_of = [&](const char* key) -> std::string {
    const auto& v = m.at(key);
    if (!v.is_string()) throw Error(file.path, key, "a string", v.dump());
    return v.get<std::string>();
  };
  const auto array_of = [&](const char* key) -> const nlohmann::json& {
    if (!m.contains(key) || !m.at(key).is_array())
      throw Error(file.path, key, "an array of strings",
                  m.contains(key) ? m.at(key).dump() : "none");
    return m.at(key);
  };
  const std::string isa = string_of("sdc.packed.isa");
  const std::string here = cpu::effective_isa_name();
  if (isa != here) {
    log << file.path << ": weights were packed for " << isa << ", this CPU runs " << here
        << ": packing them at load\n";
    return 0;
  }
  const auto& keys = array_of("sdc.packed.key");
  const auto& formats = array_of("sdc.packed.format");
  const auto& tensors = array_of("sdc.packed.tensor");
  if (formats.size() != keys.size() || tensors.size() != keys.size())
    throw Error(file.path, "sdc.packed.format/tensor",
                std::to_string(keys.size()) + " entries like sdc.packed.key",
                std::to_string(formats.size()) + "/" + std::to_string(tensors.size()));
  size_t offered = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (!keys[i].is_string() || !formats[i].is_string() || !tensors[i].is_string())
      throw Error(file.path, "sdc.packed.key[" + std::to_string(i) + "]", "strings",
                  keys[i].dump());
    const TensorRef* t = file.tensors.find(tensors[i].get<std::string>());
    if (!t)
      throw Error(file.path, tensors[i].get<std::string>(), "a packed tensor named in sdc.packed",
                  "no such tensor");
    cpu::PrepackedWeights::global().add(keys[i].get<std::string>(), formats[i].get<std::string>(),
                                        t->data, t->nbytes, t->owner, t->file_backed);
    ++offered;
  }
  return offered;
}

}  // namespace sdc::pipeline
