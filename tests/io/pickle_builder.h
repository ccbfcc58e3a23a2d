// Test helper: writes pickle byte strings opcode by opcode, as torch.save would emit them, so the
// unpickler and checkpoint tests can craft exactly the input they need.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sdc::test {

// What the restricted unpickler says it accepts when it refuses a GLOBAL.
inline const std::string kAllowedGlobals =
    "expected one of the globals a state dict uses (collections.OrderedDict, "
    "torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter[_with_state], "
    "torch.<Type>Storage, torch.UntypedStorage, torch.<dtype>, torch.Size, _codecs.encode, "
    "builtins.set, numpy scalars/arrays, "
    "pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint)";

class PickleBuilder {
 public:
  explicit PickleBuilder(int protocol = 2) {
    op(0x80);
    raw_u(uint64_t(protocol), 1);
  }

  PickleBuilder& op(uint8_t c) {
    b_ += char(c);
    return *this;
  }
  PickleBuilder& raw(std::string_view s) {
    b_ += s;
    return *this;
  }
  PickleBuilder& raw_u(uint64_t v, int bytes) {  // little-endian
    for (int i = 0; i < bytes; ++i) b_ += char((v >> (8 * i)) & 0xff);
    return *this;
  }

  PickleBuilder& mark() { return op('('); }
  PickleBuilder& stop() { return op('.'); }
  PickleBuilder& none() { return op('N'); }
  PickleBuilder& boolean(bool v) { return op(v ? 0x88 : 0x89); }
  PickleBuilder& empty_dict() { return op('}'); }
  PickleBuilder& empty_list() { return op(']'); }
  PickleBuilder& empty_tuple() { return op(')'); }
  PickleBuilder& tuple() { return op('t'); }
  PickleBuilder& setitem() { return op('s'); }
  PickleBuilder& setitems() { return op('u'); }
  PickleBuilder& append() { return op('a'); }
  PickleBuilder& appends() { return op('e'); }
  PickleBuilder& reduce() { return op('R'); }
  PickleBuilder& build() { return op('b'); }
  PickleBuilder& persid() { return op('Q'); }
  PickleBuilder& put(uint32_t i) { return i < 256 ? op('q').raw_u(i, 1) : op('r').raw_u(i, 4); }
  PickleBuilder& get(uint32_t i) { return i < 256 ? op('h').raw_u(i, 1) : op('j').raw_u(i, 4); }

  // The integer opcodes torch's pickler (protocol 2) picks for each range.
  PickleBuilder& integer(int64_t v) {
    if (v >= 0 && v < 256) return op('K').raw_u(uint64_t(v), 1);
    if (v >= 0 && v < 65536) return op('M').raw_u(uint64_t(v), 2);
    if (v >= INT32_MIN && v <= INT32_MAX) return op('J').raw_u(uint64_t(uint32_t(int32_t(v))), 4);
    return op(0x8a).raw_u(8, 1).raw_u(uint64_t(v), 8);
  }
  PickleBuilder& str(std::string_view s) {  // BINUNICODE, as protocol 2 writes every str
    op('X').raw_u(s.size(), 4);
    return raw(s);
  }
  PickleBuilder& global(std::string_view module, std::string_view name) {
    op('c').raw(module).raw("\n").raw(name);
    return raw("\n");
  }
  PickleBuilder& ints(const std::vector<int64_t>& v) {  // a tuple of ints
    mark();
    for (int64_t x : v) integer(x);
    return tuple();
  }
  PickleBuilder& ordered_dict() {
    return global("collections", "OrderedDict").empty_tuple().reduce();
  }
  PickleBuilder& storage(std::string_view type, std::string_view key, int64_t numel) {
    mark().str("storage").global("torch", type).str(key).str("cpu").integer(numel).tuple();
    return persid();
  }
  // _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())
  PickleBuilder& tensor(std::string_view type, std::string_view key, int64_t numel, int64_t offset,
                        const std::vector<int64_t>& size, const std::vector<int64_t>& stride) {
    global("torch._utils", "_rebuild_tensor_v2").mark();
    storage(type, key, numel).integer(offset).ints(size).ints(stride).boolean(false);
    return ordered_dict().tuple().reduce();
  }

  const std::string& bytes() const { return b_; }
  std::string done() { return stop().b_; }

 private:
  std::string b_;
};

}  // namespace sdc::test
