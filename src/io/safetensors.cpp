// Safetensors: 8-byte little-endian header length, a JSON header, then the data area.
#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "common/error.h"
#include "io/atomic_file.h"
#include "io/mapped_file.h"

namespace sdc::io {

const char* format_name(FileFormat f) {
  switch (f) {
    case FileFormat::Safetensors:
      return "safetensors";
    case FileFormat::Ckpt:
      return "ckpt";
    case FileFormat::Diffusers:
      return "diffusers";
    case FileFormat::Gguf:
      return "gguf";
  }
  return "?";
}

namespace {
// Headers are JSON text; anything larger than this is not a real header but a hostile length.
constexpr uint64_t kMaxHeader = 100ull << 20;
constexpr int kMaxRank = 8;

uint64_t read_u64le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
}  // namespace

TensorFile parse_safetensors(const uint8_t* data, size_t size, const std::string& path,
                             std::shared_ptr<const void> owner) {
  if (size == 0) throw Error(path, "", "a safetensors file", "an empty file");
  if (size < 8)
    throw Error(path, "header length", "8 bytes", std::to_string(size) + " bytes (truncated)");
  const uint64_t hlen = read_u64le(data);
  if (hlen > size - 8 || hlen > kMaxHeader)
    throw Error(path, "header length",
                "at most " + std::to_string(std::min<uint64_t>(size - 8, kMaxHeader)) + " bytes",
                std::to_string(hlen) + " (past the end of the file)");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(data + 8, data + 8 + hlen);
  } catch (const nlohmann::json::exception& e) {
    throw Error(path, "header", "valid JSON", std::string("invalid JSON (") + e.what() + ")");
  }
  if (!header.is_object()) throw Error(path, "header", "a JSON object", header.type_name());

  const uint8_t* base = data + 8 + hlen;
  const uint64_t data_size = size - 8 - hlen;
  TensorFile tf;
  tf.path = path;
  tf.format = FileFormat::Safetensors;
  tf.file_size = size;
  tf.metadata = nlohmann::json::object();
  tf.tensors.description = path;
  struct Span {
    uint64_t begin, end;
    std::string name;
  };
  std::vector<Span> spans;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const auto& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) throw Error(path, name, "an object of strings", v.type_name());
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string())
          throw Error(path, "__metadata__." + m.key(), "a string", m.value().type_name());
      }
      tf.metadata = v;
      continue;
    }
    if (!v.is_object())
      throw Error(path, name, "an object {dtype, shape, data_offsets}", v.type_name());
    auto dt = v.find("dtype");
    auto sh = v.find("shape");
    auto off = v.find("data_offsets");
    if (dt == v.end() || !dt->is_string()) throw Error(path, name + ".dtype", "a string", "none");
    auto dtype = dtype_from_name(dt->get<std::string>());
    if (!dtype)
      throw Error(path, name + ".dtype", "one of F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL",
                  dt->get<std::string>());
    if (sh == v.end() || !sh->is_array() || sh->size() > kMaxRank)
      throw Error(path, name + ".shape", "an array of at most 8 sizes",
                  sh == v.end() ? "none" : sh->dump());
    Shape shape;
    // The product of the non-zero sizes must fit too, so an empty [0, 2^40, 2^40] cannot
    // overflow a product taken later in another order.
    uint64_t extent = 1;
    bool empty = false;
    for (const auto& d : *sh) {
      if (!d.is_number_unsigned())
        throw Error(path, name + ".shape", "non-negative integers", sh->dump());
      uint64_t n = d.get<uint64_t>();
      if (n > data_size || (n != 0 && extent > data_size / n))
        throw Error(path, name + ".shape", "a size that fits in the file", sh->dump());
      if (n == 0) empty = true;
      extent *= std::max<uint64_t>(n, 1);
      shape.push_back(int64_t(n));
    }
    const uint64_t numel = empty ? 0 : extent;
    if (off == v.end() || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
        !(*off)[1].is_number_unsigned())
      throw Error(path, name + ".data_offsets", "[begin, end]",
                  off == v.end() ? "none" : off->dump());
    const uint64_t b = (*off)[0].get<uint64_t>(), e = (*off)[1].get<uint64_t>();
    if (b > e || e > data_size)
      throw Error(path, name + ".data_offsets",
                  "a span inside the data area of " + std::to_string(data_size) + " bytes",
                  "[" + std::to_string(b) + ", " + std::to_string(e) + "]");
    const uint64_t want = numel * dtype_size(*dtype);
    if (e - b != want)
      throw Error(path, name,
                  std::to_string(want) + " bytes for " + std::string(dt->get<std::string>()) + " " +
                      shape_str(shape),
                  std::to_string(e - b) + " bytes");
    spans.push_back({b, e, name});
    TensorRef t;
    t.dtype = *dtype;
    t.shape = std::move(shape);
    t.data = base + b;
    t.nbytes = size_t(want);
    t.owner = owner;
    t.source = path;
    tf.tensors.set(name, std::move(t));
  }
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  for (size_t i = 1; i < spans.size(); ++i)
    if (spans[i].begin < spans[i - 1].end)
      throw Error(path, spans[i].name + ".data_offsets", "no overlap with other tensors",
                  "overlaps " + spans[i - 1].name);
  return tf;
}

TensorFile read_safetensors(const std::string& path) {
  auto file = MappedFile::open(path);
  TensorFile tf = parse_safetensors(file->data(), file->size(), path, file);
  file->mark_file_backed(tf.tensors);
  return tf;
}

void write_safetensors(const std::string& path, const WeightMap& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors.all()) {
    // Checked before anything is written: a bad tensor must not leave a half-written file.
    if (name == "__metadata__")
      throw Error(path, name, "a tensor name", "the reserved key __metadata__");
    for (int64_t d : t.shape)
      if (d < 0) throw Error(path, name, "non-negative sizes", shape_str(t.shape));
    if (uint64_t(t.numel()) * dtype_size(t.dtype) != t.nbytes)
      throw Error(path, name,
                  std::to_string(uint64_t(t.numel()) * dtype_size(t.dtype)) + " bytes for " +
                      std::string(dtype_name(t.dtype)) + " " + shape_str(t.shape),
                  std::to_string(t.nbytes) + " bytes");
    header[name] = {{"dtype", std::string(dtype_name(t.dtype))},
                    {"shape", t.shape},
                    {"data_offsets", {offset, offset + t.nbytes}}};
    offset += t.nbytes;
  }
  // Names come from files and need not be UTF-8; JSON must be.
  std::string h = header.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  while ((h.size() + 8) % 8 != 0) h += ' ';  // keep the data area 8-byte aligned
  AtomicFile out(path, AtomicFile::AfterCommit::DropCached);
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = uint8_t((uint64_t(h.size()) >> (8 * i)) & 0xff);
  out.write(len, 8);
  out.write(h.data(), h.size());
  for (const auto& [name, t] : tensors.all()) out.write(t.data, t.nbytes);
  out.commit();
}

}  // namespace sdc::io
