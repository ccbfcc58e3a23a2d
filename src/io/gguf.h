// GGUF v3 (v2 accepted on read): memory-mapped, zero-copy reader and atomic writer.
//
// Layout: "GGUF", u32 version, u64 tensor count, u64 key/value count, the key/values (typed),
// the tensor infos (name, dims innermost-first, GGML type, offset into the data area), padding to
// `general.alignment` (default 32), then the data area. Tensors are F32/F16/BF16 (and the GGML
// integer/F64 types); quantised GGML types are refused. Shapes are returned in PyTorch order
// (outermost first): GGML's dims are reversed on read and on write.
//
// Every count, length and offset is checked against the bytes that remain BEFORE anything is
// allocated, so a hostile header cannot make the reader allocate or read out of bounds.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/tensor_file.h"

namespace sdc::io {

// GGUF metadata value types (gguf_metadata_value_type).
enum class GgufType : uint32_t {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  Bool = 7,
  String = 8,
  Array = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
};
const char* gguf_type_name(GgufType t);  // "u8", "i32", "string", "array" ...

// One metadata value with its exact GGUF type, so that a file read and written again keeps the
// types of its keys. Unsigned integers live in `uint_value`, signed in `int_value`, F32/F64 in
// `float_value`; arrays hold `items`, all of type `element_type`.
struct GgufValue {
  GgufType type = GgufType::U32;
  GgufType element_type = GgufType::U8;  // arrays only
  uint64_t uint_value = 0;
  int64_t int_value = 0;
  double float_value = 0;
  bool bool_value = false;
  std::string string_value;
  std::vector<GgufValue> items;

  static GgufValue u8(uint8_t v);
  static GgufValue i8(int8_t v);
  static GgufValue u16(uint16_t v);
  static GgufValue i16(int16_t v);
  static GgufValue u32(uint32_t v);
  static GgufValue i32(int32_t v);
  static GgufValue u64(uint64_t v);
  static GgufValue i64(int64_t v);
  static GgufValue f32(float v);
  static GgufValue f64(double v);
  static GgufValue boolean(bool v);
  static GgufValue string(std::string v);
  // Every item must have type `element_type` (checked when written).
  static GgufValue array(GgufType element_type, std::vector<GgufValue> items);
  static GgufValue string_array(const std::vector<std::string>& items);

  // The value as plain JSON (numbers, strings, booleans, nested arrays).
  nlohmann::json to_json() const;
  bool operator==(const GgufValue& other) const;
};

// Converts plain JSON into typed values: string -> String, bool -> Bool, unsigned -> U64,
// negative integer -> I64, float -> F64, array -> Array (items must share one type). Objects and
// null have no GGUF type: sdc::Error naming `key`.
GgufValue gguf_value_from_json(const nlohmann::json& j, const std::string& key = "value");

// Key/values in file order.
using GgufMetadata = std::vector<std::pair<std::string, GgufValue>>;

struct GgufFile {
  TensorFile file;  // tensors (PyTorch shape order, views into the mapping); metadata as JSON
  uint32_t version = 3;
  uint64_t alignment = 32;  // general.alignment, or GGUF's default 32
  GgufMetadata kv;          // the typed key/values, for a faithful round trip
  const GgufValue* find(const std::string& key) const;
};

// GGML tensor type ids this reader/writer handles (others are refused with their name).
enum class GgmlType : uint32_t {
  F32 = 0,
  F16 = 1,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  BF16 = 30
};

// Reads and validates `path` (memory-mapped; tensors point into the mapping).
GgufFile read_gguf(const std::string& path);

// Parses a GGUF image already in memory (used by read_gguf and by the fuzzer). `owner` keeps
// `data` alive in the returned tensors; `path` is only used in error messages.
GgufFile parse_gguf(const uint8_t* data, size_t size, const std::string& path,
                    std::shared_ptr<const void> owner);

class AtomicFile;

// One tensor of a GgufWriter: its name, element type and shape (PyTorch order).
struct GgufTensorInfo {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  uint64_t nbytes() const;
};

// Streaming GGUF v3 writer, for files too large to hold in memory: the constructor validates the
// metadata and tensor infos and writes the header (key/values, tensor infos with their offsets,
// padding) to a temporary file beside `path`; write_tensor() then takes each tensor's bytes in
// the order of `tensors`; commit() fsyncs and renames the file into place. A writer destroyed
// before commit() (an exception, a full disk) removes the temporary file, leaving nothing behind.
// `alignment` must be a power of two; it is recorded as general.alignment (u32) unless `metadata`
// already holds that key, which must then be a u32 equal to `alignment`. Tensors must be
// F32/F16/BF16/F64/I8/I16/I32/I64 with at most 4 dimensions and unique names.
class GgufWriter {
 public:
  GgufWriter(const std::string& path, std::vector<GgufTensorInfo> tensors,
             const GgufMetadata& metadata, uint32_t alignment = 64);
  ~GgufWriter();
  GgufWriter(const GgufWriter&) = delete;
  GgufWriter& operator=(const GgufWriter&) = delete;

  // The next tensor's bytes: exactly tensors[written()].nbytes() of them (sdc::Error otherwise).
  void write_tensor(const void* data, size_t nbytes);
  size_t written() const { return next_; }
  // Every tensor must have been written.
  void commit();
  uint64_t file_size() const;  // what the finished file will measure
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }

 private:
  std::string path_;
  std::vector<GgufTensorInfo> tensors_;
  uint32_t alignment_;
  uint64_t data_start_ = 0, data_bytes_ = 0;
  std::unique_ptr<AtomicFile> out_;
  size_t next_ = 0;
  bool committed_ = false;
};

// Writes a whole WeightMap as a GGUF v3 file atomically (a GgufWriter over the map, tensors in
// WeightMap order, each at an offset that is a multiple of `alignment`).
void write_gguf(const std::string& path, const WeightMap& tensors, const GgufMetadata& metadata,
                uint32_t alignment = 64);

}  // namespace sdc::io
