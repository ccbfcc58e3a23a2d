// ModelProto -> GraphProto -> TensorProto initializers of each component file, memory-mapped
// (inline raw_data and external data alike), renamed back to the LDM tensors they were made from.
#include "export/onnx_reader.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "export/protobuf_reader.h"
#include "io/mapped_file.h"

namespace sdc::exporter {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

struct Initializer {
  std::string name;
  int data_type = 0;
  Shape dims;
  const uint8_t* raw = nullptr;
  size_t raw_size = 0;
  bool external = false;
  std::string location;
  uint64_t offset = 0, length = 0;
};

Initializer parse_tensor(const ProtoField& field, const std::string& what) {
  Initializer t;
  ProtoReader r(field.data, field.size, what + ": TensorProto");
  ProtoField f;
  while (r.next(f)) {
    if (f.number == 1 && f.wire_type == 0) {
      t.dims.push_back(int64_t(f.value));
    } else if (f.number == 1 && f.wire_type == 2) {  // packed dims
      size_t i = 0;
      while (i < f.size) {
        uint64_t v = 0;
        int shift = 0;
        while (true) {
          if (i >= f.size || shift > 63) throw Error(what, "dims", "packed varints", "truncated");
          const uint8_t b = f.data[i++];
          v |= uint64_t(b & 0x7f) << shift;
          shift += 7;
          if (!(b & 0x80)) break;
        }
        t.dims.push_back(int64_t(v));
      }
    } else if (f.number == 2) {
      t.data_type = int(f.value);
    } else if (f.number == 8) {
      t.name = std::string(f.bytes());
    } else if (f.number == 9) {
      t.raw = f.data;
      t.raw_size = f.size;
    } else if (f.number == 13) {
      std::string key, value;
      ProtoReader e(f.data, f.size, what + ": external_data");
      ProtoField kv;
      while (e.next(kv)) {
        if (kv.number == 1) key = std::string(kv.bytes());
        if (kv.number == 2) value = std::string(kv.bytes());
      }
      try {
        if (key == "location") t.location = value;
        if (key == "offset") t.offset = std::stoull(value);
        if (key == "length") t.length = std::stoull(value);
      } catch (const std::exception&) {
        throw Error(what, t.name + " external_data " + key, "a number", value);
      }
    } else if (f.number == 14) {
      t.external = f.value == 1;
    }
  }
  return t;
}

class Reader {
 public:
  explicit Reader(std::string dir) : dir_(std::move(dir)) {}

  void component(const std::string& rel) {
    const std::string path = (fs::path(dir_) / rel).string();
    const auto file = io::MappedFile::open(path);
    bytes_ += file->size();
    ProtoReader model(file->data(), file->size(), path + ": ModelProto");
    ProtoField f;
    bool graph = false;
    while (model.next(f)) {
      if (f.number != 7 || f.wire_type != 2) continue;
      graph = true;
      ProtoReader g(f.data, f.size, path + ": GraphProto");
      ProtoField gf;
      while (g.next(gf))
        if (gf.number == 5 && gf.wire_type == 2)
          add(parse_tensor(gf, path), file, fs::path(path).parent_path());
    }
    if (!graph) throw Error(path, "graph", "an ONNX ModelProto with a graph", "none");
  }

  io::TensorFile finish(json metadata) {
    // The text encoder's position table is written as the [1, T*C] view the graph adds.
    for (auto& [name, t] : tensors_.all()) {
      if (!ends_with(name, "embeddings.position_embedding.weight") || t.shape.size() != 2 ||
          t.shape[0] != 1)
        continue;
      const std::string token =
          name.substr(0, name.size() - std::string("position_embedding.weight").size()) +
          "token_embedding.weight";
      const TensorRef* tok = tensors_.find(token);
      if (!tok || tok->shape.size() != 2 || t.shape[1] % tok->shape[1] != 0)
        throw Error(dir_, name, "a position table of the token embedding's width",
                    shape_str(t.shape));
      t.shape = {t.shape[1] / tok->shape[1], tok->shape[1]};
    }
    io::TensorFile out;
    out.path = dir_;
    out.format = io::FileFormat::Gguf;
    out.file_size = bytes_;
    out.tensors = std::move(tensors_);
    out.tensors.description = dir_ + " (ONNX export)";
    out.metadata = std::move(metadata);
    return out;
  }

 private:
  void add(const Initializer& init, const std::shared_ptr<const io::MappedFile>& file,
           const fs::path& folder) {
    if (init.name.rfind("const_", 0) == 0) return;  // the writer's own constants
    std::string name = init.name;
    if (ends_with(name, ".f16")) name.resize(name.size() - 4);
    enum { Stored, Transposed, Conv1x1, PerChannel } form = Stored;
    for (const auto& [suffix, f] :
         {std::pair{".T", Transposed}, std::pair{".1x1", Conv1x1}, std::pair{".chw", PerChannel}})
      if (ends_with(name, suffix)) {
        name.resize(name.size() - std::string(suffix).size());
        form = f;
      }
    if (tensors_.contains(name)) return;  // the same weight in another form
    const std::string where = file->path() + ": " + init.name;
    TensorRef t;
    if (init.data_type == 1)
      t.dtype = DType::F32;
    else if (init.data_type == 10)
      t.dtype = DType::F16;
    else
      throw Error(where, "data_type", "1 (float) or 10 (float16)", std::to_string(init.data_type));
    t.shape = init.dims;
    t.nbytes = size_t(shape_numel(t.shape)) * dtype_size(t.dtype);
    if (init.external) {
      const std::string data_path = (folder / init.location).string();
      auto it = data_.find(data_path);
      if (it == data_.end()) {
        it = data_.emplace(data_path, io::MappedFile::open(data_path)).first;
        bytes_ += it->second->size();
      }
      const auto& m = it->second;
      if (init.length != t.nbytes || init.offset > m->size() || m->size() - init.offset < t.nbytes)
        throw Error(
            where, "external data", std::to_string(t.nbytes) + " bytes inside " + data_path,
            "offset " + std::to_string(init.offset) + ", length " + std::to_string(init.length));
      t.data = m->data() + init.offset;
      t.owner = m;
      t.source = data_path;
    } else {
      if (init.raw_size != t.nbytes)
        throw Error(where, "raw_data", std::to_string(t.nbytes) + " bytes",
                    std::to_string(init.raw_size));
      t.source = file->path();
      if (reinterpret_cast<uintptr_t>(init.raw) % dtype_size(t.dtype) == 0) {
        t.data = init.raw;
        t.owner = file;
        t.file_backed = true;
      } else {  // inline raw_data sits at any byte offset: an aligned copy for typed reads
        auto copy = std::make_shared<std::vector<uint64_t>>((t.nbytes + 7) / 8);
        std::memcpy(copy->data(), init.raw, t.nbytes);
        t.data = copy->data();
        t.owner = copy;
      }
    }
    if (init.external) t.file_backed = true;
    if (form == Transposed) {
      if (t.shape.size() != 2) throw Error(where, "shape", "2-D", shape_str(t.shape));
      const int64_t ci = t.shape[0], co = t.shape[1];
      const std::vector<float> v = t.to_f32();
      std::vector<float> back(v.size());
      for (int64_t i = 0; i < ci; ++i)
        for (int64_t o = 0; o < co; ++o) back[size_t(o * ci + i)] = v[size_t(i * co + o)];
      t = TensorRef::from_f32(back, {co, ci}, t.dtype, t.source);
    } else if (form == Conv1x1) {
      if (t.shape.size() != 4) throw Error(where, "shape", "[co, ci, 1, 1]", shape_str(t.shape));
      t.shape = {t.shape[0], t.shape[1]};
    } else if (form == PerChannel) {
      if (t.shape.size() != 3) throw Error(where, "shape", "[C, 1, 1]", shape_str(t.shape));
      t.shape = {t.shape[0]};
    }
    tensors_.set(name, std::move(t));
  }

  std::string dir_;
  WeightMap tensors_;
  std::map<std::string, std::shared_ptr<const io::MappedFile>> data_;
  uint64_t bytes_ = 0;
};

json read_model_json(const std::string& dir) {
  const std::string path = (fs::path(dir) / "model.json").string();
  std::ifstream in(path);
  if (!in) throw Error(path, "", "a readable model.json", "cannot open it");
  json m;
  try {
    m = json::parse(in);
  } catch (const json::exception& e) {
    throw Error(path, "", "JSON", e.what());
  }
  if (!m.is_object() || m.value("format", "") != "sdc-onnx")
    throw Error(path, "format", "\"sdc-onnx\" (an export of sdc convert --format onnx)",
                m.is_object() && m.contains("format") ? m["format"].dump() : "none");
  if (m.value("version", 0) != 1)
    throw Error(path, "version", "1", m.contains("version") ? m["version"].dump() : "none");
  if (!m.contains("components") || !m["components"].is_object() || !m.contains("configs"))
    throw Error(path, "components", "components and configs", "missing");
  return m;
}

}  // namespace

bool is_onnx_export(const std::string& dir) {
  std::error_code ec;
  return fs::is_regular_file(fs::path(dir) / "model.json", ec);
}

io::TensorFile read_onnx_export(const std::string& dir) {
  const json m = read_model_json(dir);
  Reader r(dir);
  for (const auto& [id, c] : m["components"].items()) {
    if (!c.contains("file") || !c["file"].is_string())
      throw Error((fs::path(dir) / "model.json").string(), "components." + id + ".file",
                  "a file name", "none");
    const std::string rel = c["file"].get<std::string>();
    if (fs::path(rel).is_absolute() || rel.find("..") != std::string::npos)
      throw Error((fs::path(dir) / "model.json").string(), "components." + id + ".file",
                  "a path inside the export folder", rel);
    r.component(rel);
  }
  json metadata = json::object();
  for (const auto& [name, config] : m["configs"].items())
    metadata["sdc.config." + name] = config.dump();
  if (m.contains("name") && m["name"].is_string()) metadata["general.name"] = m["name"];
  return r.finish(std::move(metadata));
}

}  // namespace sdc::exporter
