// Protocol-buffers wire format, write side only: the handful of encodings the ONNX messages
// need (varints, little-endian fixed32 floats, length-delimited strings and sub-messages).
// A message is built in a byte buffer; the caller nests buffers as length-delimited fields.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace sdc::exporter {

class ProtoBuffer {
 public:
  void varint_field(int field, uint64_t value);  // int32/int64/enum (negative: 10-byte varint)
  void int_field(int field, int64_t value) { varint_field(field, uint64_t(value)); }
  void float_field(int field, float value);             // fixed32
  void bytes_field(int field, std::string_view bytes);  // string, bytes
  void message_field(int field, const ProtoBuffer& sub) { bytes_field(field, sub.bytes()); }
  // The tag and length of a length-delimited field whose `length` payload bytes the caller
  // writes after this buffer (large tensor data streamed from elsewhere).
  void length_prefix(int field, uint64_t length);

  const std::string& bytes() const { return bytes_; }
  size_t size() const { return bytes_.size(); }

 private:
  void varint(uint64_t v);
  void tag(int field, int wire_type);
  std::string bytes_;
};

// Bytes a varint of `v` takes (1..10).
size_t varint_size(uint64_t v);

}  // namespace sdc::exporter
