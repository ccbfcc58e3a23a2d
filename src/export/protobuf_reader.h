// Protocol-buffers wire format, read side: iterating the fields of one message held in memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sdc::exporter {

struct ProtoField {
  int number = 0;
  int wire_type = 0;              // 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32
  uint64_t value = 0;             // varint / fixed value
  const uint8_t* data = nullptr;  // length-delimited payload
  size_t size = 0;
  std::string_view bytes() const { return {reinterpret_cast<const char*>(data), size}; }
};

class ProtoReader {
 public:
  // `what` names the message in errors ("model.onnx: GraphProto").
  ProtoReader(const uint8_t* data, size_t size, std::string what)
      : p_(data), end_(data + size), what_(std::move(what)) {}
  // The next field, or false at the end; sdc::Error for a truncated or malformed message.
  bool next(ProtoField& f);

 private:
  uint64_t varint();
  const uint8_t* p_;
  const uint8_t* end_;
  std::string what_;
};

}  // namespace sdc::exporter
