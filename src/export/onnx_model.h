// An ONNX model held in memory in the few terms sdc writes: nodes, initializers (whose bytes are
// produced only when the file is written, so a multi-gigabyte model is never held whole), graph
// inputs/outputs with fixed or symbolic dimensions, and metadata. Field numbers and enum values
// follow onnx.proto (IR version 8, opset 17).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace sdc::exporter {

inline constexpr int64_t kIrVersion = 8;  // ONNX 1.10-1.12, what opset 17 was released with
inline constexpr int64_t kOpsetVersion = 17;

// TensorProto.DataType values.
enum class ElemType : int32_t { Float = 1, Int32 = 6, Int64 = 7, Float16 = 10 };
size_t elem_size(ElemType t);
const char* elem_name(ElemType t);  // "float32", "float16", "int32", "int64"

// A dimension of a graph input or output: a fixed size, or a named symbolic one.
struct Dim {
  int64_t value = -1;  // >= 0: fixed
  std::string param;   // symbolic name when value < 0
  static Dim fixed(int64_t v) { return {v, {}}; }
  static Dim symbolic(std::string name) { return {-1, std::move(name)}; }
};

struct ValueInfo {
  std::string name;
  ElemType type = ElemType::Float;
  std::vector<Dim> dims;
};

struct Attribute {
  enum class Kind { Int, Float, Ints, String } kind = Kind::Int;
  std::string name;
  int64_t i = 0;
  float f = 0;
  std::vector<int64_t> ints;
  std::string s;
};

struct Node {
  std::string op_type, name;
  std::vector<std::string> inputs, outputs;
  std::vector<Attribute> attributes;
};

struct Initializer {
  std::string name;
  ElemType type = ElemType::Float;
  std::vector<int64_t> dims;
  // Produces exactly nbytes() little-endian bytes; called once, when the file is written.
  std::function<std::string()> data;
  uint64_t nbytes() const;
};

struct OnnxModel {
  std::string graph_name, doc;
  std::vector<Node> nodes;  // topological order
  std::vector<Initializer> initializers;
  std::vector<ValueInfo> inputs, outputs;
  std::vector<std::pair<std::string, std::string>> metadata;  // metadata_props, in this order
  uint64_t initializer_bytes() const;
};

}  // namespace sdc::exporter
