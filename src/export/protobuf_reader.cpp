// Protocol-buffers wire decoding with bounds checks on every read.
#include "export/protobuf_reader.h"

#include "common/error.h"

namespace sdc::exporter {

uint64_t ProtoReader::varint() {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (p_ >= end_) throw Error(what_, "varint", "a complete varint", "the end of the message");
    const uint8_t b = *p_++;
    v |= uint64_t(b & 0x7f) << shift;
    if (!(b & 0x80)) return v;
  }
  throw Error(what_, "varint", "at most 10 bytes", "more");
}

bool ProtoReader::next(ProtoField& f) {
  if (p_ >= end_) return false;
  const uint64_t tag = varint();
  f.number = int(tag >> 3);
  f.wire_type = int(tag & 7);
  f.data = nullptr;
  f.size = 0;
  switch (f.wire_type) {
    case 0:
      f.value = varint();
      return true;
    case 1:
    case 5: {
      const size_t n = f.wire_type == 1 ? 8 : 4;
      if (size_t(end_ - p_) < n)
        throw Error(what_, "field " + std::to_string(f.number), std::to_string(n) + " bytes",
                    std::to_string(end_ - p_));
      f.value = 0;
      for (size_t i = 0; i < n; ++i) f.value |= uint64_t(p_[i]) << (8 * i);
      p_ += n;
      return true;
    }
    case 2: {
      const uint64_t n = varint();
      if (n > uint64_t(end_ - p_))
        throw Error(what_, "field " + std::to_string(f.number), std::to_string(n) + " bytes",
                    std::to_string(end_ - p_) + " left");
      f.data = p_;
      f.size = size_t(n);
      p_ += n;
      return true;
    }
    default:
      throw Error(what_, "field " + std::to_string(f.number), "wire type 0, 1, 2 or 5",
                  std::to_string(f.wire_type));
  }
}

}  // namespace sdc::exporter
