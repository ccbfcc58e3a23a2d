// ModelProto serialization. Field numbers (onnx.proto): ModelProto ir_version 1, producer_name 2,
// producer_version 3, doc_string 6, graph 7, opset_import 8, metadata_props 14; GraphProto node 1,
// name 2, initializer 5, doc_string 10, input 11, output 12; NodeProto input 1, output 2, name 3,
// op_type 4, attribute 5; AttributeProto name 1, f 2, i 3, s 4, ints 8, type 20; TensorProto
// dims 1, data_type 2, name 8, raw_data 9, external_data 13, data_location 14; ValueInfoProto
// name 1, type 2; TypeProto tensor_type 1; TypeProto.Tensor elem_type 1, shape 2;
// TensorShapeProto dim 1; Dimension dim_value 1, dim_param 2; StringStringEntryProto key 1,
// value 2; OperatorSetIdProto domain 1, version 2.
#include "export/onnx_file.h"

#include <filesystem>
#include <memory>

#include "common/error.h"
#include "export/protobuf_wire.h"
#include "io/atomic_file.h"

namespace sdc::exporter {

size_t elem_size(ElemType t) {
  switch (t) {
    case ElemType::Float:
    case ElemType::Int32:
      return 4;
    case ElemType::Int64:
      return 8;
    case ElemType::Float16:
      return 2;
  }
  return 0;
}

const char* elem_name(ElemType t) {
  switch (t) {
    case ElemType::Float:
      return "float32";
    case ElemType::Int32:
      return "int32";
    case ElemType::Int64:
      return "int64";
    case ElemType::Float16:
      return "float16";
  }
  return "?";
}

uint64_t Initializer::nbytes() const {
  uint64_t n = elem_size(type);
  for (int64_t d : dims) n *= uint64_t(d);
  return n;
}

uint64_t OnnxModel::initializer_bytes() const {
  uint64_t n = 0;
  for (const auto& i : initializers) n += i.nbytes();
  return n;
}

namespace {

constexpr uint64_t kExternalMin = 1024, kExternalAlign = 4096;

ProtoBuffer attribute_message(const Attribute& a) {
  // AttributeType: FLOAT 1, INT 2, STRING 3, INTS 7.
  ProtoBuffer m;
  m.bytes_field(1, a.name);
  switch (a.kind) {
    case Attribute::Kind::Float:
      m.float_field(2, a.f);
      m.int_field(20, 1);
      break;
    case Attribute::Kind::Int:
      m.int_field(3, a.i);
      m.int_field(20, 2);
      break;
    case Attribute::Kind::String:
      m.bytes_field(4, a.s);
      m.int_field(20, 3);
      break;
    case Attribute::Kind::Ints:
      for (int64_t v : a.ints) m.int_field(8, v);
      m.int_field(20, 7);
      break;
  }
  return m;
}

ProtoBuffer node_message(const Node& n) {
  ProtoBuffer m;
  for (const auto& i : n.inputs) m.bytes_field(1, i);
  for (const auto& o : n.outputs) m.bytes_field(2, o);
  m.bytes_field(3, n.name);
  m.bytes_field(4, n.op_type);
  for (const auto& a : n.attributes) m.message_field(5, attribute_message(a));
  return m;
}

ProtoBuffer value_info_message(const ValueInfo& v) {
  ProtoBuffer shape;
  for (const Dim& d : v.dims) {
    ProtoBuffer dim;
    if (d.value >= 0)
      dim.int_field(1, d.value);
    else
      dim.bytes_field(2, d.param);
    shape.message_field(1, dim);
  }
  ProtoBuffer tensor;
  tensor.int_field(1, int64_t(v.type));
  tensor.message_field(2, shape);
  ProtoBuffer type;
  type.message_field(1, tensor);
  ProtoBuffer m;
  m.bytes_field(1, v.name);
  m.message_field(2, type);
  return m;
}

ProtoBuffer entry_message(const std::string& key, const std::string& value) {
  ProtoBuffer m;
  m.bytes_field(1, key);
  m.bytes_field(2, value);
  return m;
}

uint64_t align_up(uint64_t x, uint64_t a) {
  return (x + a - 1) / a * a;
}

// Where one initializer's bytes go.
struct Placement {
  bool external = false;
  uint64_t offset = 0;
  ProtoBuffer head;  // TensorProto without the raw_data payload (with its tag+length if inline)
  uint64_t message_size() const { return head.size() + (external ? 0 : bytes); }
  uint64_t bytes = 0;
};

}  // namespace

OnnxFileResult write_onnx_file(const OnnxModel& model, const std::string& dir,
                               const std::string& file_name, const OnnxFileOptions& options) {
  namespace fs = std::filesystem;
  const bool use_external =
      options.external == ExternalData::Always || model.initializer_bytes() > kInlineLimit;
  const std::string data_name = file_name + ".data";

  std::vector<Placement> places(model.initializers.size());
  uint64_t data_end = 0;
  for (size_t i = 0; i < places.size(); ++i) {
    const Initializer& init = model.initializers[i];
    Placement& p = places[i];
    p.bytes = init.nbytes();
    p.external = use_external && p.bytes >= kExternalMin;
    for (int64_t d : init.dims) p.head.int_field(1, d);
    p.head.int_field(2, int64_t(init.type));
    p.head.bytes_field(8, init.name);
    if (p.external) {
      p.offset = align_up(data_end, kExternalAlign);
      data_end = p.offset + p.bytes;
      p.head.message_field(13, entry_message("location", data_name));
      p.head.message_field(13, entry_message("offset", std::to_string(p.offset)));
      p.head.message_field(13, entry_message("length", std::to_string(p.bytes)));
      p.head.int_field(14, 1);  // DataLocation EXTERNAL
    } else {
      p.head.length_prefix(9, p.bytes);
    }
  }

  // GraphProto = nodes, name, [initializers], doc, inputs, outputs.
  ProtoBuffer before, after;
  for (const Node& n : model.nodes) before.message_field(1, node_message(n));
  before.bytes_field(2, model.graph_name);
  if (!model.doc.empty()) after.bytes_field(10, model.doc);
  for (const auto& v : model.inputs) after.message_field(11, value_info_message(v));
  for (const auto& v : model.outputs) after.message_field(12, value_info_message(v));
  uint64_t graph_size = before.size() + after.size();
  for (const Placement& p : places) {
    const uint64_t n = p.message_size();
    graph_size += varint_size((5 << 3) | 2) + varint_size(n) + n;
  }

  ProtoBuffer head;
  head.int_field(1, kIrVersion);
  head.bytes_field(2, "sdc");
  head.bytes_field(3, options.producer_version);
  head.length_prefix(7, graph_size);
  ProtoBuffer tail;
  ProtoBuffer opset;
  opset.bytes_field(1, "");
  opset.int_field(2, kOpsetVersion);
  tail.message_field(8, opset);
  for (const auto& [k, v] : model.metadata) tail.message_field(14, entry_message(k, v));

  OnnxFileResult result;
  io::AtomicFile file((fs::path(dir) / file_name).string());
  std::unique_ptr<io::AtomicFile> data;
  if (use_external && data_end > 0) {
    data = std::make_unique<io::AtomicFile>((fs::path(dir) / data_name).string());
  }
  file.write(head.bytes().data(), head.size());
  file.write(before.bytes().data(), before.size());
  for (size_t i = 0; i < places.size(); ++i) {
    const Placement& p = places[i];
    const Initializer& init = model.initializers[i];
    ProtoBuffer prefix;
    prefix.length_prefix(5, p.message_size());
    file.write(prefix.bytes().data(), prefix.size());
    file.write(p.head.bytes().data(), p.head.size());
    const std::string bytes = init.data();
    if (bytes.size() != p.bytes)
      throw Error("onnx export", init.name, std::to_string(p.bytes) + " bytes of data",
                  std::to_string(bytes.size()));
    if (p.external) {
      data->write_zeros(size_t(p.offset - data->offset()));
      data->write(bytes.data(), bytes.size());
    } else {
      file.write(bytes.data(), bytes.size());
    }
    if (options.on_tensor) options.on_tensor(i + 1, places.size());
  }
  file.write(after.bytes().data(), after.size());
  file.write(tail.bytes().data(), tail.size());
  result.files.push_back(file_name);
  result.bytes = file.offset();
  if (data) {
    result.files.push_back(data_name);
    result.bytes += data->offset();
    data->commit();
  }
  file.commit();
  return result;
}

}  // namespace sdc::exporter
