// Protocol-buffers wire encodings (https://protobuf.dev/programming-guides/encoding/).
#include "export/protobuf_wire.h"

#include <cstring>

namespace sdc::exporter {

namespace {
constexpr int kVarint = 0, kLengthDelimited = 2, kFixed32 = 5;
}

size_t varint_size(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

void ProtoBuffer::varint(uint64_t v) {
  while (v >= 0x80) {
    bytes_.push_back(char(uint8_t(v) | 0x80));
    v >>= 7;
  }
  bytes_.push_back(char(uint8_t(v)));
}

void ProtoBuffer::tag(int field, int wire_type) {
  varint((uint64_t(field) << 3) | uint64_t(wire_type));
}

void ProtoBuffer::varint_field(int field, uint64_t value) {
  tag(field, kVarint);
  varint(value);
}

void ProtoBuffer::float_field(int field, float value) {
  tag(field, kFixed32);
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  for (int i = 0; i < 4; ++i) bytes_.push_back(char(uint8_t(bits >> (8 * i))));
}

void ProtoBuffer::bytes_field(int field, std::string_view bytes) {
  length_prefix(field, bytes.size());
  bytes_.append(bytes);
}

void ProtoBuffer::length_prefix(int field, uint64_t length) {
  tag(field, kLengthDelimited);
  varint(length);
}

}  // namespace sdc::exporter
