// GGUF reading (bounds-checked cursor over the mapping) and writing (header built in memory,
// tensor data streamed through AtomicFile).
#include "io/gguf.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <set>

#include "common/error.h"
#include "io/atomic_file.h"
#include "io/mapped_file.h"

namespace sdc::io {

namespace {

constexpr uint32_t kMaxDims = 4;   // GGML_MAX_DIMS
constexpr int kMaxArrayDepth = 8;  // nested arrays deeper than this are not real metadata
constexpr uint64_t kDefaultAlignment = 32;

// Smallest number of bytes one value of type `t` occupies in the file (0 for unknown types).
uint64_t min_value_size(GgufType t) {
  switch (t) {
    case GgufType::U8:
    case GgufType::I8:
    case GgufType::Bool:
      return 1;
    case GgufType::U16:
    case GgufType::I16:
      return 2;
    case GgufType::U32:
    case GgufType::I32:
    case GgufType::F32:
      return 4;
    case GgufType::U64:
    case GgufType::I64:
    case GgufType::F64:
      return 8;
    case GgufType::String:
      return 8;  // length field
    case GgufType::Array:
      return 12;  // element type + length
  }
  return 0;
}

bool known_type(uint32_t t) {
  return t <= uint32_t(GgufType::F64);
}

std::string printable(const uint8_t* p, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    if (p[i] >= 0x20 && p[i] < 0x7f) {
      s += char(p[i]);
    } else {
      static const char* digits = "0123456789abcdef";
      s += "\\x";
      s += digits[p[i] >> 4];
      s += digits[p[i] & 0xf];
    }
  }
  return s;
}

// Name of a GGML tensor type id, for messages about types we do not handle.
std::string ggml_type_label(uint32_t id) {
  static const char* names[] = {"F32",   "F16",   "Q4_0",    "Q4_1",   "Q4_2",    "Q4_3",  "Q5_0",
                                "Q5_1",  "Q8_0",  "Q8_1",    "Q2_K",   "Q3_K",    "Q4_K",  "Q5_K",
                                "Q6_K",  "Q8_K",  "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL",
                                "IQ3_S", "IQ2_S", "IQ4_XS",  "I8",     "I16",     "I32",   "I64",
                                "F64",   "IQ1_M", "BF16"};
  std::string s = "GGML type " + std::to_string(id);
  if (id < sizeof(names) / sizeof(names[0])) s += std::string(" (") + names[id] + ")";
  return s;
}

std::optional<DType> dtype_of_ggml(uint32_t id) {
  switch (id) {
    case uint32_t(GgmlType::F32):
      return DType::F32;
    case uint32_t(GgmlType::F16):
      return DType::F16;
    case uint32_t(GgmlType::BF16):
      return DType::BF16;
    case uint32_t(GgmlType::F64):
      return DType::F64;
    case uint32_t(GgmlType::I8):
      return DType::I8;
    case uint32_t(GgmlType::I16):
      return DType::I16;
    case uint32_t(GgmlType::I32):
      return DType::I32;
    case uint32_t(GgmlType::I64):
      return DType::I64;
  }
  return std::nullopt;
}

std::optional<GgmlType> ggml_of_dtype(DType t) {
  switch (t) {
    case DType::F32:
      return GgmlType::F32;
    case DType::F16:
      return GgmlType::F16;
    case DType::BF16:
      return GgmlType::BF16;
    case DType::F64:
      return GgmlType::F64;
    case DType::I8:
      return GgmlType::I8;
    case DType::I16:
      return GgmlType::I16;
    case DType::I32:
      return GgmlType::I32;
    case DType::I64:
      return GgmlType::I64;
    default:
      return std::nullopt;
  }
}

// A bounds-checked little-endian cursor over the file image.
class Cursor {
 public:
  Cursor(const uint8_t* data, size_t size, const std::string& path)
      : data_(data), size_(size), path_(path) {}

  size_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }

  void need(uint64_t n, const std::string& what) const {
    if (n > remaining())
      throw Error(path_, what, std::to_string(n) + " more bytes at offset " + std::to_string(pos_),
                  "end of file after " + std::to_string(remaining()) + " (truncated)");
  }
  const uint8_t* take(uint64_t n, const std::string& what) {
    need(n, what);
    const uint8_t* p = data_ + pos_;
    pos_ += size_t(n);
    return p;
  }
  uint64_t uint(int bytes, const std::string& what) {
    const uint8_t* p = take(uint64_t(bytes), what);
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
    return v;
  }
  uint32_t u32(const std::string& what) { return uint32_t(uint(4, what)); }
  uint64_t u64(const std::string& what) { return uint(8, what); }
  std::string str(const std::string& what) {
    const uint64_t n = u64(what + " length");
    if (n > remaining())
      throw Error(path_, what + " length",
                  "at most the " + std::to_string(remaining()) + " bytes left in the file",
                  std::to_string(n));
    const uint8_t* p = take(n, what);
    return std::string(reinterpret_cast<const char*>(p), size_t(n));
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& path_;
};

GgufValue read_value(Cursor& c, GgufType type, const std::string& key, const std::string& path,
                     int depth) {
  GgufValue v;
  v.type = type;
  switch (type) {
    case GgufType::U8:
      v.uint_value = c.uint(1, key);
      break;
    case GgufType::U16:
      v.uint_value = c.uint(2, key);
      break;
    case GgufType::U32:
      v.uint_value = c.uint(4, key);
      break;
    case GgufType::U64:
      v.uint_value = c.uint(8, key);
      break;
    case GgufType::I8:
      v.int_value = int8_t(c.uint(1, key));
      break;
    case GgufType::I16:
      v.int_value = int16_t(c.uint(2, key));
      break;
    case GgufType::I32:
      v.int_value = int32_t(c.uint(4, key));
      break;
    case GgufType::I64:
      v.int_value = int64_t(c.uint(8, key));
      break;
    case GgufType::F32: {
      const uint32_t bits = uint32_t(c.uint(4, key));
      float f;
      std::memcpy(&f, &bits, 4);
      v.float_value = f;
      break;
    }
    case GgufType::F64: {
      const uint64_t bits = c.uint(8, key);
      std::memcpy(&v.float_value, &bits, 8);
      break;
    }
    case GgufType::Bool: {
      const uint64_t b = c.uint(1, key);
      if (b > 1) throw Error(path, key, "a bool (0 or 1)", std::to_string(b));
      v.bool_value = b == 1;
      break;
    }
    case GgufType::String:
      v.string_value = c.str(key);
      break;
    case GgufType::Array: {
      if (depth >= kMaxArrayDepth)
        throw Error(path, key, "arrays nested at most " + std::to_string(kMaxArrayDepth) + " deep",
                    "deeper nesting");
      const uint32_t et = c.u32(key + " element type");
      if (!known_type(et))
        throw Error(path, key + " element type", "a GGUF value type 0..12", std::to_string(et));
      v.element_type = GgufType(et);
      const uint64_t n = c.u64(key + " array length");
      const uint64_t min = min_value_size(v.element_type);
      if (n > c.remaining() / min)
        throw Error(path, key + " array length",
                    "at most " + std::to_string(c.remaining() / min) + " elements (the bytes left)",
                    std::to_string(n));
      v.items.reserve(size_t(n));
      for (uint64_t i = 0; i < n; ++i)
        v.items.push_back(read_value(c, v.element_type, key, path, depth + 1));
      break;
    }
  }
  return v;
}

}  // namespace

const char* gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::U8:
      return "u8";
    case GgufType::I8:
      return "i8";
    case GgufType::U16:
      return "u16";
    case GgufType::I16:
      return "i16";
    case GgufType::U32:
      return "u32";
    case GgufType::I32:
      return "i32";
    case GgufType::F32:
      return "f32";
    case GgufType::Bool:
      return "bool";
    case GgufType::String:
      return "string";
    case GgufType::Array:
      return "array";
    case GgufType::U64:
      return "u64";
    case GgufType::I64:
      return "i64";
    case GgufType::F64:
      return "f64";
  }
  return "?";
}

// --- GgufValue -----------------------------------------------------------------------------

namespace {
GgufValue make_uint(GgufType t, uint64_t v) {
  GgufValue g;
  g.type = t;
  g.uint_value = v;
  return g;
}
GgufValue make_int(GgufType t, int64_t v) {
  GgufValue g;
  g.type = t;
  g.int_value = v;
  return g;
}
GgufValue make_float(GgufType t, double v) {
  GgufValue g;
  g.type = t;
  g.float_value = v;
  return g;
}
}  // namespace

GgufValue GgufValue::u8(uint8_t v) {
  return make_uint(GgufType::U8, v);
}
GgufValue GgufValue::u16(uint16_t v) {
  return make_uint(GgufType::U16, v);
}
GgufValue GgufValue::u32(uint32_t v) {
  return make_uint(GgufType::U32, v);
}
GgufValue GgufValue::u64(uint64_t v) {
  return make_uint(GgufType::U64, v);
}
GgufValue GgufValue::i8(int8_t v) {
  return make_int(GgufType::I8, v);
}
GgufValue GgufValue::i16(int16_t v) {
  return make_int(GgufType::I16, v);
}
GgufValue GgufValue::i32(int32_t v) {
  return make_int(GgufType::I32, v);
}
GgufValue GgufValue::i64(int64_t v) {
  return make_int(GgufType::I64, v);
}
GgufValue GgufValue::f32(float v) {
  return make_float(GgufType::F32, v);
}
GgufValue GgufValue::f64(double v) {
  return make_float(GgufType::F64, v);
}

GgufValue GgufValue::boolean(bool v) {
  GgufValue g;
  g.type = GgufType::Bool;
  g.bool_value = v;
  return g;
}

GgufValue GgufValue::string(std::string v) {
  GgufValue g;
  g.type = GgufType::String;
  g.string_value = std::move(v);
  return g;
}

GgufValue GgufValue::array(GgufType element_type, std::vector<GgufValue> items) {
  GgufValue g;
  g.type = GgufType::Array;
  g.element_type = element_type;
  g.items = std::move(items);
  return g;
}

GgufValue GgufValue::string_array(const std::vector<std::string>& items) {
  std::vector<GgufValue> v;
  v.reserve(items.size());
  for (const auto& s : items) v.push_back(string(s));
  return array(GgufType::String, std::move(v));
}

nlohmann::json GgufValue::to_json() const {
  switch (type) {
    case GgufType::U8:
    case GgufType::U16:
    case GgufType::U32:
    case GgufType::U64:
      return uint_value;
    case GgufType::I8:
    case GgufType::I16:
    case GgufType::I32:
    case GgufType::I64:
      return int_value;
    case GgufType::F32:
    case GgufType::F64:
      return float_value;
    case GgufType::Bool:
      return bool_value;
    case GgufType::String:
      // JSON needs UTF-8; bytes that are not valid UTF-8 are replaced when dumped by callers.
      return string_value;
    case GgufType::Array: {
      nlohmann::json a = nlohmann::json::array();
      for (const auto& it : items) a.push_back(it.to_json());
      return a;
    }
  }
  return nullptr;
}

bool GgufValue::operator==(const GgufValue& o) const {
  if (type != o.type) return false;
  switch (type) {
    case GgufType::U8:
    case GgufType::U16:
    case GgufType::U32:
    case GgufType::U64:
      return uint_value == o.uint_value;
    case GgufType::I8:
    case GgufType::I16:
    case GgufType::I32:
    case GgufType::I64:
      return int_value == o.int_value;
    case GgufType::F32:
    case GgufType::F64:
      return std::memcmp(&float_value, &o.float_value, sizeof(double)) == 0 ||
             float_value == o.float_value;
    case GgufType::Bool:
      return bool_value == o.bool_value;
    case GgufType::String:
      return string_value == o.string_value;
    case GgufType::Array:
      return element_type == o.element_type && items == o.items;
  }
  return false;
}

GgufValue gguf_value_from_json(const nlohmann::json& j, const std::string& key) {
  if (j.is_string()) return GgufValue::string(j.get<std::string>());
  if (j.is_boolean()) return GgufValue::boolean(j.get<bool>());
  if (j.is_number_unsigned()) return GgufValue::u64(j.get<uint64_t>());
  if (j.is_number_integer()) return GgufValue::i64(j.get<int64_t>());
  if (j.is_number_float()) return GgufValue::f64(j.get<double>());
  if (j.is_array()) {
    std::vector<GgufValue> items;
    items.reserve(j.size());
    for (const auto& e : j) items.push_back(gguf_value_from_json(e, key));
    // Mixed unsigned/negative integers become I64 so that one element type fits all.
    bool any_signed = false, any_unsigned = false;
    for (const auto& it : items) {
      any_signed |= it.type == GgufType::I64;
      any_unsigned |= it.type == GgufType::U64;
    }
    if (any_signed && any_unsigned) {
      for (auto& it : items)
        if (it.type == GgufType::U64) {
          if (it.uint_value > uint64_t(INT64_MAX))
            throw Error("", key, "integers that fit in i64", std::to_string(it.uint_value));
          it = GgufValue::i64(int64_t(it.uint_value));
        }
    }
    const GgufType et = items.empty() ? GgufType::String : items.front().type;
    for (const auto& it : items)
      if (it.type != et)
        throw Error("", key, "an array whose items share one type",
                    std::string(gguf_type_name(et)) + " mixed with " + gguf_type_name(it.type));
    return GgufValue::array(et, std::move(items));
  }
  throw Error("", key, "a string, number, bool or array (GGUF has no other value types)",
              j.type_name());
}

const GgufValue* GgufFile::find(const std::string& key) const {
  for (const auto& [k, v] : kv)
    if (k == key) return &v;
  return nullptr;
}

// --- reading ---------------------------------------------------------------------------------

GgufFile parse_gguf(const uint8_t* data, size_t size, const std::string& path,
                    std::shared_ptr<const void> owner) {
  if (size == 0) throw Error(path, "", "a GGUF file", "an empty file");
  Cursor c(data, size, path);
  if (size < 4 || std::memcmp(data, "GGUF", 4) != 0)
    throw Error(path, "magic", "\"GGUF\"",
                "\"" + printable(data, std::min<size_t>(size, 4)) + "\"");
  c.take(4, "magic");
  GgufFile g;
  g.version = c.u32("version");
  if (g.version != 3 && g.version != 2)
    throw Error(path, "version", "3 (or 2)", std::to_string(g.version));
  const uint64_t tensor_count = c.u64("tensor count");
  const uint64_t kv_count = c.u64("metadata key/value count");
  // Each key/value takes at least 13 bytes (key length, type, 1 byte of value) and each tensor
  // info at least 24 (name length, dim count, type, offset): anything more cannot fit.
  if (kv_count > c.remaining() / 13)
    throw Error(path, "metadata key/value count",
                "at most " + std::to_string(c.remaining() / 13) + " (what the file can hold)",
                std::to_string(kv_count));
  if (tensor_count > c.remaining() / 24)
    throw Error(path, "tensor count",
                "at most " + std::to_string(c.remaining() / 24) + " (what the file can hold)",
                std::to_string(tensor_count));

  TensorFile& tf = g.file;
  tf.path = path;
  tf.format = FileFormat::Gguf;
  tf.file_size = size;
  tf.metadata = nlohmann::json::object();
  tf.tensors.description = path;

  std::set<std::string> keys;
  g.kv.reserve(size_t(kv_count));
  for (uint64_t i = 0; i < kv_count; ++i) {
    const std::string key = c.str("metadata key " + std::to_string(i));
    if (!keys.insert(key).second)
      throw Error(path, "metadata key " + key, "unique keys", "a duplicate");
    const uint32_t type = c.u32("metadata " + key + " type");
    if (!known_type(type))
      throw Error(path, "metadata " + key + " type", "a GGUF value type 0..12",
                  std::to_string(type));
    GgufValue v = read_value(c, GgufType(type), "metadata " + key, path, 0);
    tf.metadata[key] = v.to_json();
    g.kv.emplace_back(key, std::move(v));
  }

  g.alignment = kDefaultAlignment;
  if (const GgufValue* a = g.find("general.alignment")) {
    if (a->type != GgufType::U32)
      throw Error(path, "general.alignment", "a u32", gguf_type_name(a->type));
    if (a->uint_value == 0 || (a->uint_value & (a->uint_value - 1)) != 0)
      throw Error(path, "general.alignment", "a power of two", std::to_string(a->uint_value));
    g.alignment = a->uint_value;
  }

  struct Info {
    std::string name;
    DType dtype;
    Shape shape;
    uint64_t offset, nbytes;
  };
  std::vector<Info> infos;
  infos.reserve(size_t(tensor_count));
  std::set<std::string> names;
  for (uint64_t i = 0; i < tensor_count; ++i) {
    Info info;
    info.name = c.str("tensor " + std::to_string(i) + " name");
    const std::string& n = info.name;
    if (!names.insert(n).second)
      throw Error(path, "tensor " + n, "unique tensor names", "a duplicate");
    const uint32_t ndims = c.u32("tensor " + n + " dimension count");
    if (ndims > kMaxDims)
      throw Error(path, "tensor " + n + " dimension count", "at most " + std::to_string(kMaxDims),
                  std::to_string(ndims));
    std::vector<uint64_t> ne(ndims);
    for (uint32_t d = 0; d < ndims; ++d) ne[d] = c.u64("tensor " + n + " dimensions");
    const uint32_t type = c.u32("tensor " + n + " type");
    auto dtype = dtype_of_ggml(type);
    if (!dtype)
      throw Error(path, "tensor " + n + " type", "F32, F16 or BF16 (or a GGML integer/F64 type)",
                  ggml_type_label(type));
    info.dtype = *dtype;
    info.offset = c.u64("tensor " + n + " offset");
    // Size check without overflow: every tensor must fit inside the file. Zero dims are skipped
    // in the product so that [0, 2^40, 2^40] (zero bytes) cannot overflow a later numel().
    uint64_t bytes = dtype_size(*dtype);
    bool empty = false;
    for (uint64_t d : ne) {
      if (d == 0) {
        empty = true;
        continue;
      }
      if (bytes > size / d)
        throw Error(
            path, "tensor " + n + " dimensions", "a size that fits in the file",
            "dims (innermost first) totalling more than " + std::to_string(size) + " bytes");
      bytes *= d;
    }
    info.nbytes = empty ? 0 : bytes;
    // GGML stores the innermost dimension first; PyTorch order is the reverse.
    for (auto it = ne.rbegin(); it != ne.rend(); ++it) info.shape.push_back(int64_t(*it));
    infos.push_back(std::move(info));
  }

  const uint64_t header_end = c.pos();
  const uint64_t data_start = (header_end + g.alignment - 1) / g.alignment * g.alignment;
  if (!infos.empty() && data_start > size)
    throw Error(path, "data area", "to start at offset " + std::to_string(data_start),
                "end of file at " + std::to_string(size) + " (truncated)");
  const uint64_t data_size = data_start <= size ? size - data_start : 0;

  struct Span {
    uint64_t begin, end;
    const std::string* name;
  };
  std::vector<Span> spans;
  for (Info& info : infos) {
    const std::string key = "tensor " + info.name + " offset";
    if (info.offset % g.alignment != 0)
      throw Error(path, key, "a multiple of the alignment " + std::to_string(g.alignment),
                  std::to_string(info.offset));
    if (info.offset > data_size || info.nbytes > data_size - info.offset)
      throw Error(path, key,
                  "a span inside the data area of " + std::to_string(data_size) + " bytes",
                  "[" + std::to_string(info.offset) + ", " + std::to_string(info.offset) + " + " +
                      std::to_string(info.nbytes) + "] (truncated file?)");
    if (info.nbytes > 0) spans.push_back({info.offset, info.offset + info.nbytes, &info.name});
    TensorRef t;
    t.dtype = info.dtype;
    t.shape = std::move(info.shape);
    t.data = data + data_start + info.offset;
    t.nbytes = size_t(info.nbytes);
    t.owner = owner;
    t.source = path;
    tf.tensors.set(info.name, std::move(t));
  }
  std::sort(spans.begin(), spans.end(),
            [](const Span& a, const Span& b) { return a.begin < b.begin; });
  for (size_t i = 1; i < spans.size(); ++i)
    if (spans[i].begin < spans[i - 1].end)
      throw Error(path, "tensor " + *spans[i].name + " offset", "no overlap with other tensors",
                  "overlaps " + *spans[i - 1].name);
  return g;
}

GgufFile read_gguf(const std::string& path) {
  auto file = MappedFile::open(path);
  GgufFile g = parse_gguf(file->data(), file->size(), path, file);
  file->mark_file_backed(g.file.tensors);
  return g;
}

// --- writing ---------------------------------------------------------------------------------

namespace {

class Buffer {
 public:
  void uint(uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) bytes_.push_back(char((v >> (8 * i)) & 0xff));
  }
  void str(const std::string& s) {
    uint(s.size(), 8);
    bytes_ += s;
  }
  const std::string& bytes() const { return bytes_; }
  void pad_to(uint64_t alignment) {
    while (bytes_.size() % alignment != 0) bytes_.push_back('\0');
  }

 private:
  std::string bytes_;
};

void write_value(Buffer& b, const GgufValue& v, const std::string& path, const std::string& key) {
  switch (v.type) {
    case GgufType::U8:
      b.uint(v.uint_value, 1);
      return;
    case GgufType::U16:
      b.uint(v.uint_value, 2);
      return;
    case GgufType::U32:
      b.uint(v.uint_value, 4);
      return;
    case GgufType::U64:
      b.uint(v.uint_value, 8);
      return;
    case GgufType::I8:
      b.uint(uint64_t(v.int_value), 1);
      return;
    case GgufType::I16:
      b.uint(uint64_t(v.int_value), 2);
      return;
    case GgufType::I32:
      b.uint(uint64_t(v.int_value), 4);
      return;
    case GgufType::I64:
      b.uint(uint64_t(v.int_value), 8);
      return;
    case GgufType::F32: {
      const float f = float(v.float_value);
      uint32_t bits;
      std::memcpy(&bits, &f, 4);
      b.uint(bits, 4);
      return;
    }
    case GgufType::F64: {
      uint64_t bits;
      std::memcpy(&bits, &v.float_value, 8);
      b.uint(bits, 8);
      return;
    }
    case GgufType::Bool:
      b.uint(v.bool_value ? 1 : 0, 1);
      return;
    case GgufType::String:
      b.str(v.string_value);
      return;
    case GgufType::Array:
      b.uint(uint32_t(v.element_type), 4);
      b.uint(v.items.size(), 8);
      for (const auto& it : v.items) {
        if (it.type != v.element_type)
          throw Error(path, "metadata " + key,
                      std::string("array items of type ") + gguf_type_name(v.element_type),
                      gguf_type_name(it.type));
        write_value(b, it, path, key);
      }
      return;
  }
  throw Error(path, "metadata " + key, "a GGUF value type 0..12", std::to_string(uint32_t(v.type)));
}

}  // namespace

GgufWriter::GgufWriter(const std::string& path, std::vector<GgufTensorInfo> tensors,
                       const GgufMetadata& metadata, uint32_t alignment)
    : path_(path), tensors_(std::move(tensors)), alignment_(alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0)
    throw Error(path, "alignment", "a power of two", std::to_string(alignment));
  GgufMetadata kv = metadata;
  std::set<std::string> keys;
  bool has_alignment = false;
  for (const auto& [k, v] : kv) {
    if (!keys.insert(k).second) throw Error(path, "metadata " + k, "unique keys", "a duplicate");
    if (k == "general.alignment") {
      if (v.type != GgufType::U32 || v.uint_value != alignment)
        throw Error(path, "general.alignment", "a u32 equal to " + std::to_string(alignment),
                    std::string(gguf_type_name(v.type)) + " " + v.to_json().dump());
      has_alignment = true;
    }
  }
  if (!has_alignment) kv.emplace_back("general.alignment", GgufValue::u32(alignment));

  Buffer h;
  h.uint(0x46554747u, 4);  // "GGUF"
  h.uint(3, 4);
  h.uint(tensors_.size(), 8);
  h.uint(kv.size(), 8);
  for (const auto& [k, v] : kv) {
    h.str(k);
    h.uint(uint32_t(v.type), 4);
    write_value(h, v, path, k);
  }
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const GgufTensorInfo& t : tensors_) {
    if (!names.insert(t.name).second)
      throw Error(path, "tensor " + t.name, "unique tensor names", "a duplicate");
    auto type = ggml_of_dtype(t.dtype);
    if (!type)
      throw Error(path, t.name, "F32, F16, BF16, F64 or a signed integer type",
                  std::string(dtype_name(t.dtype)));
    if (t.shape.size() > kMaxDims)
      throw Error(path, t.name, "at most 4 dimensions", shape_str(t.shape));
    h.str(t.name);
    h.uint(t.shape.size(), 4);
    for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) h.uint(uint64_t(*it), 8);
    h.uint(uint32_t(*type), 4);
    h.uint(offset, 8);
    offset += (t.nbytes() + alignment - 1) / alignment * alignment;
  }
  h.pad_to(alignment);
  data_start_ = h.bytes().size();
  data_bytes_ = offset;
  out_ = std::make_unique<AtomicFile>(path, AtomicFile::AfterCommit::DropCached);
  out_->write(h.bytes().data(), h.bytes().size());
}

GgufWriter::~GgufWriter() = default;

uint64_t GgufTensorInfo::nbytes() const {
  return uint64_t(shape_numel(shape)) * dtype_size(dtype);
}

uint64_t GgufWriter::file_size() const {
  return data_start_ + data_bytes_;
}

void GgufWriter::write_tensor(const void* data, size_t nbytes) {
  if (committed_) throw Error(path_, "write", "no tensor after commit()", "one more");
  if (next_ >= tensors_.size())
    throw Error(path_, "write", std::to_string(tensors_.size()) + " tensors", "one more");
  const GgufTensorInfo& t = tensors_[next_];
  if (nbytes != t.nbytes())
    throw Error(path_, t.name, std::to_string(t.nbytes()) + " bytes", std::to_string(nbytes));
  out_->write(data, nbytes);
  out_->write_zeros((alignment_ - nbytes % alignment_) % alignment_);
  ++next_;
}

void GgufWriter::commit() {
  if (next_ != tensors_.size())
    throw Error(path_, "write", std::to_string(tensors_.size()) + " tensors written",
                std::to_string(next_));
  out_->commit();
  committed_ = true;
}

void write_gguf(const std::string& path, const WeightMap& tensors, const GgufMetadata& metadata,
                uint32_t alignment) {
  std::vector<GgufTensorInfo> infos;
  for (const auto& [name, t] : tensors.all()) {
    const GgufTensorInfo info{name, t.dtype, t.shape};
    if (info.nbytes() != t.nbytes)
      throw Error(path, name, std::to_string(info.nbytes()) + " bytes", std::to_string(t.nbytes));
    infos.push_back(info);
  }
  GgufWriter w(path, std::move(infos), metadata, alignment);
  for (const auto& [name, t] : tensors.all()) w.write_tensor(t.data, t.nbytes);
  w.commit();
}

}  // namespace sdc::io
