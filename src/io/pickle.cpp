// The restricted unpickler: one pass over the opcodes, a value stack, a MARK stack and a memo.
// "Calls" (REDUCE, NEWOBJ, BUILD, BINPERSID) are interpreted by the allowlist below; nothing is
// ever imported or executed.
#include "io/pickle.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <limits>
#include <unordered_map>

#include "common/error.h"

namespace sdc::io::pickle {

namespace {

enum class Role : uint8_t {
  OrderedDict,
  RebuildTensorV2,
  RebuildParameter,
  RebuildParameterWithState,
  Storage,       // only inside persistent ids
  DTypeRef,      // torch.float32 ...: an inert reference
  Size,          // torch.Size(tuple)
  CodecsEncode,  // _codecs.encode(str, "latin1")
  Set,           // builtins.set(iterable)
  NumpyObject,   // numpy scalars/arrays/dtypes: inert Object placeholders
  InertClass,    // a class used as a value (a dict key), never called
};

struct GlobalRow {
  std::string_view name;
  Role role;
  DType dtype;  // storages only
};

constexpr GlobalRow kGlobals[] = {
    {"collections.OrderedDict", Role::OrderedDict, DType::U8},
    {"torch._utils._rebuild_tensor_v2", Role::RebuildTensorV2, DType::U8},
    {"torch._utils._rebuild_parameter", Role::RebuildParameter, DType::U8},
    {"torch._utils._rebuild_parameter_with_state", Role::RebuildParameterWithState, DType::U8},
    {"torch.DoubleStorage", Role::Storage, DType::F64},
    {"torch.FloatStorage", Role::Storage, DType::F32},
    {"torch.HalfStorage", Role::Storage, DType::F16},
    {"torch.BFloat16Storage", Role::Storage, DType::BF16},
    {"torch.LongStorage", Role::Storage, DType::I64},
    {"torch.IntStorage", Role::Storage, DType::I32},
    {"torch.ShortStorage", Role::Storage, DType::I16},
    {"torch.CharStorage", Role::Storage, DType::I8},
    {"torch.ByteStorage", Role::Storage, DType::U8},
    {"torch.BoolStorage", Role::Storage, DType::Bool},
    {"torch.UntypedStorage", Role::Storage, DType::U8},
    {"torch.storage.UntypedStorage", Role::Storage, DType::U8},
    {"torch.float64", Role::DTypeRef, DType::F64},
    {"torch.float32", Role::DTypeRef, DType::F32},
    {"torch.float16", Role::DTypeRef, DType::F16},
    {"torch.bfloat16", Role::DTypeRef, DType::BF16},
    {"torch.int64", Role::DTypeRef, DType::I64},
    {"torch.int32", Role::DTypeRef, DType::I32},
    {"torch.int16", Role::DTypeRef, DType::I16},
    {"torch.int8", Role::DTypeRef, DType::I8},
    {"torch.uint8", Role::DTypeRef, DType::U8},
    {"torch.bool", Role::DTypeRef, DType::Bool},
    {"torch.Size", Role::Size, DType::U8},
    {"_codecs.encode", Role::CodecsEncode, DType::U8},
    {"builtins.set", Role::Set, DType::U8},
    {"__builtin__.set", Role::Set, DType::U8},
    {"numpy.core.multiarray.scalar", Role::NumpyObject, DType::U8},
    {"numpy.core.multiarray._reconstruct", Role::NumpyObject, DType::U8},
    {"numpy._core.multiarray.scalar", Role::NumpyObject, DType::U8},
    {"numpy._core.multiarray._reconstruct", Role::NumpyObject, DType::U8},
    {"numpy.dtype", Role::NumpyObject, DType::U8},
    {"numpy.ndarray", Role::NumpyObject, DType::U8},
    {"pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint", Role::InertClass, DType::U8},
};

constexpr const char* kAllowedGlobals =
    "one of the globals a state dict uses (collections.OrderedDict, "
    "torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter[_with_state], "
    "torch.<Type>Storage, torch.UntypedStorage, torch.<dtype>, torch.Size, _codecs.encode, "
    "builtins.set, numpy scalars/arrays, "
    "pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint)";

// Storage keys are decimal numbers in practice; the caps keep repeated persistent ids that
// reuse one memoised string from multiplying memory.
constexpr size_t kMaxKey = 256;
constexpr size_t kMaxLocation = 64;
constexpr size_t kMaxGlobalLine = 256;
constexpr uint64_t kMaxElements = uint64_t(1) << 62;

namespace op {
enum : uint8_t {
  MARK = '(',
  STOP = '.',
  POP = '0',
  POP_MARK = '1',
  DUP = '2',
  BININT = 'J',
  BININT1 = 'K',
  BININT2 = 'M',
  NONE = 'N',
  BINPERSID = 'Q',
  REDUCE = 'R',
  BINUNICODE = 'X',
  BINBYTES = 'B',
  SHORT_BINBYTES = 'C',
  APPEND = 'a',
  BUILD = 'b',
  GLOBAL = 'c',
  DICT = 'd',
  EMPTY_DICT = '}',
  APPENDS = 'e',
  BINGET = 'h',
  LONG_BINGET = 'j',
  LIST = 'l',
  EMPTY_LIST = ']',
  BINPUT = 'q',
  LONG_BINPUT = 'r',
  SETITEM = 's',
  TUPLE = 't',
  EMPTY_TUPLE = ')',
  SETITEMS = 'u',
  BINFLOAT = 'G',
  PROTO = 0x80,
  NEWOBJ = 0x81,
  TUPLE1 = 0x85,
  TUPLE2 = 0x86,
  TUPLE3 = 0x87,
  NEWTRUE = 0x88,
  NEWFALSE = 0x89,
  LONG1 = 0x8a,
  LONG4 = 0x8b,
  SHORT_BINUNICODE = 0x8c,
  BINUNICODE8 = 0x8d,
  BINBYTES8 = 0x8e,
  EMPTY_SET = 0x8f,
  ADDITEMS = 0x90,
  FROZENSET = 0x91,
  STACK_GLOBAL = 0x93,
  MEMOIZE = 0x94,
  FRAME = 0x95,
};
}  // namespace op

// Names of every pickle opcode, so that refused ones are named too.
std::string op_name(uint8_t c) {
  switch (c) {
    case op::MARK:
      return "MARK";
    case op::STOP:
      return "STOP";
    case op::POP:
      return "POP";
    case op::POP_MARK:
      return "POP_MARK";
    case op::DUP:
      return "DUP";
    case op::BININT:
      return "BININT";
    case op::BININT1:
      return "BININT1";
    case op::BININT2:
      return "BININT2";
    case op::NONE:
      return "NONE";
    case op::BINPERSID:
      return "BINPERSID";
    case op::REDUCE:
      return "REDUCE";
    case op::BINUNICODE:
      return "BINUNICODE";
    case op::BINBYTES:
      return "BINBYTES";
    case op::SHORT_BINBYTES:
      return "SHORT_BINBYTES";
    case op::APPEND:
      return "APPEND";
    case op::BUILD:
      return "BUILD";
    case op::GLOBAL:
      return "GLOBAL";
    case op::DICT:
      return "DICT";
    case op::EMPTY_DICT:
      return "EMPTY_DICT";
    case op::APPENDS:
      return "APPENDS";
    case op::BINGET:
      return "BINGET";
    case op::LONG_BINGET:
      return "LONG_BINGET";
    case op::LIST:
      return "LIST";
    case op::EMPTY_LIST:
      return "EMPTY_LIST";
    case op::BINPUT:
      return "BINPUT";
    case op::LONG_BINPUT:
      return "LONG_BINPUT";
    case op::SETITEM:
      return "SETITEM";
    case op::TUPLE:
      return "TUPLE";
    case op::EMPTY_TUPLE:
      return "EMPTY_TUPLE";
    case op::SETITEMS:
      return "SETITEMS";
    case op::BINFLOAT:
      return "BINFLOAT";
    case op::PROTO:
      return "PROTO";
    case op::NEWOBJ:
      return "NEWOBJ";
    case op::TUPLE1:
      return "TUPLE1";
    case op::TUPLE2:
      return "TUPLE2";
    case op::TUPLE3:
      return "TUPLE3";
    case op::NEWTRUE:
      return "NEWTRUE";
    case op::NEWFALSE:
      return "NEWFALSE";
    case op::LONG1:
      return "LONG1";
    case op::LONG4:
      return "LONG4";
    case op::SHORT_BINUNICODE:
      return "SHORT_BINUNICODE";
    case op::BINUNICODE8:
      return "BINUNICODE8";
    case op::BINBYTES8:
      return "BINBYTES8";
    case op::EMPTY_SET:
      return "EMPTY_SET";
    case op::ADDITEMS:
      return "ADDITEMS";
    case op::FROZENSET:
      return "FROZENSET";
    case op::STACK_GLOBAL:
      return "STACK_GLOBAL";
    case op::MEMOIZE:
      return "MEMOIZE";
    case op::FRAME:
      return "FRAME";
    // Refused opcodes: text protocol 0/1 forms, instance creation that calls code, extension
    // registry lookups and protocol-5 out-of-band buffers.
    case 'I':
      return "INT";
    case 'L':
      return "LONG";
    case 'F':
      return "FLOAT";
    case 'S':
      return "STRING";
    case 'T':
      return "BINSTRING";
    case 'U':
      return "SHORT_BINSTRING";
    case 'V':
      return "UNICODE";
    case 'P':
      return "PERSID";
    case 'p':
      return "PUT";
    case 'g':
      return "GET";
    case 'i':
      return "INST";
    case 'o':
      return "OBJ";
    case 0x82:
      return "EXT1";
    case 0x83:
      return "EXT2";
    case 0x84:
      return "EXT4";
    case 0x92:
      return "NEWOBJ_EX";
    case 0x96:
      return "BYTEARRAY8";
    case 0x97:
      return "NEXT_BUFFER";
    case 0x98:
      return "READONLY_BUFFER";
  }
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02x", c);
  return std::string("unknown opcode ") + buf;
}

// Printable form of untrusted text for messages: control and non-ASCII bytes escaped, cut short.
std::string printable(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size() && out.size() < 120; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += char(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  if (out.size() >= 120) out += "...";
  return out;
}

// Strict UTF-8 (no overlong forms, no surrogates, at most U+10FFFF): names end up in JSON.
bool valid_utf8(const uint8_t* p, size_t n) {
  size_t i = 0;
  while (i < n) {
    const uint8_t c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp, min;
    if ((c & 0xe0) == 0xc0) {
      len = 2, cp = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3, cp = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4, cp = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (len > n - i) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += len;
  }
  return true;
}

std::string describe(const Value& v) {
  switch (v.kind) {
    case Kind::Global:
      return "global " + v.text;
    case Kind::Object:
      return "a " + v.text + " object";
    case Kind::Str:
      return "str '" + printable(v.text) + "'";
    case Kind::Int:
      return "int " + std::to_string(v.integer);
    default:
      return kind_name(v.kind);
  }
}

bool checked_mul(uint64_t a, uint64_t b, uint64_t* out) {
  return !__builtin_mul_overflow(a, b, out);
}
bool checked_add(uint64_t a, uint64_t b, uint64_t* out) {
  return !__builtin_add_overflow(a, b, out);
}

}  // namespace

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::None:
      return "None";
    case Kind::Bool:
      return "bool";
    case Kind::Int:
      return "int";
    case Kind::Float:
      return "float";
    case Kind::Str:
      return "str";
    case Kind::Bytes:
      return "bytes";
    case Kind::Tuple:
      return "tuple";
    case Kind::List:
      return "list";
    case Kind::Dict:
      return "dict";
    case Kind::Set:
      return "set";
    case Kind::Global:
      return "global";
    case Kind::Storage:
      return "storage";
    case Kind::Tensor:
      return "tensor";
    case Kind::Object:
      return "object";
  }
  return "?";
}

const Value* Value::find(std::string_view key) const {
  if (kind != Kind::Dict) return nullptr;
  const Value* found = nullptr;
  for (size_t i = 0; i < dict_size(); ++i)
    if (dict_key(i).is_str(key)) found = &dict_value(i);
  return found;
}

class Unpickler {
 public:
  Unpickler(const uint8_t* data, size_t size, const std::string& file, const std::string& entry,
            const Limits& limits)
      : d_(data), n_(size), file_(file), entry_(entry), lim_(limits) {}

  Unpickled run();

 private:
  [[noreturn]] void fail(const std::string& expected, const std::string& found) const {
    throw Error(file_, entry_ + " byte " + std::to_string(op_pos_) + ": " + op_name(op_), expected,
                found);
  }

  // Reading arguments: every length is compared with what is left before it is used.
  const uint8_t* take(uint64_t n, const char* what) {
    if (n > n_ - pos_)
      fail(std::string(what) + " of " + std::to_string(n) + " bytes",
           "only " + std::to_string(n_ - pos_) + " bytes left (truncated pickle)");
    const uint8_t* p = d_ + pos_;
    pos_ += size_t(n);
    return p;
  }
  uint64_t le(int bytes) {
    const uint8_t* p = take(uint64_t(bytes), "an argument");
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
    return v;
  }

  Value* make(Kind k) {
    if (out_.arena_->size() >= lim_.max_values)
      fail("at most " + std::to_string(lim_.max_values) + " objects", "more");
    Value& v = out_.arena_->emplace_back();
    v.kind = k;
    return &v;
  }
  // Every pointer stored in a container counts, so that copies (OrderedDict(list), set(list))
  // of one memoised list cannot multiply memory.
  void add_items(size_t n) {
    items_ += n;
    if (items_ > lim_.max_items)
      fail("at most " + std::to_string(lim_.max_items) + " container items", "more");
  }

  size_t mark_base() const { return marks_.empty() ? 0 : marks_.back(); }
  void push(Value* v) {
    if (stack_.size() >= lim_.max_stack)
      fail("a stack of at most " + std::to_string(lim_.max_stack) + " entries", "more");
    stack_.push_back(v);
  }
  Value* top() {
    if (stack_.size() <= mark_base()) fail("a value on the stack", "none");
    return stack_.back();
  }
  Value* pop() {
    Value* v = top();
    stack_.pop_back();
    return v;
  }
  std::vector<Value*> pop_mark() {
    if (marks_.empty()) fail("a MARK on the stack", "none");
    const size_t base = marks_.back();
    marks_.pop_back();
    std::vector<Value*> items(stack_.begin() + std::ptrdiff_t(base), stack_.end());
    stack_.resize(base);
    return items;
  }
  Value* container(Kind k, std::vector<Value*> items) {
    Value* v = make(k);
    add_items(items.size());
    v->items = std::move(items);
    return v;
  }
  Value* top_of(Kind k) {
    Value* v = top();
    if (v->kind != k) fail(std::string("a ") + kind_name(k) + " to add to", describe(*v));
    return v;
  }

  Value* integer(int64_t i) {
    Value* v = make(Kind::Int);
    v->integer = i;
    return v;
  }
  Value* long_int(uint64_t nbytes) {
    if (nbytes > 8) {
      take(nbytes, "an integer");  // truncation is reported before size
      fail("an integer of at most 8 bytes", std::to_string(nbytes) + " bytes");
    }
    if (nbytes == 0) return integer(0);
    const int n = int(nbytes);
    uint64_t u = le(n);
    if (n < 8 && (u >> (8 * n - 1)) & 1) u |= ~uint64_t(0) << (8 * n);  // sign-extend
    return integer(int64_t(u));
  }
  Value* text(Kind k, uint64_t n) {
    const uint8_t* p = take(n, k == Kind::Str ? "a string" : "a bytes object");
    if (k == Kind::Str && !valid_utf8(p, size_t(n))) fail("a UTF-8 string", "invalid UTF-8");
    Value* v = make(k);
    v->text.assign(reinterpret_cast<const char*>(p), size_t(n));
    return v;
  }
  std::string line() {
    const size_t limit = std::min(n_ - pos_, kMaxGlobalLine + 1);
    const void* nl = std::memchr(d_ + pos_, '\n', limit);
    if (!nl)
      fail("a name ending in a newline within " + std::to_string(kMaxGlobalLine) + " bytes",
           limit <= kMaxGlobalLine ? "end of data (truncated pickle)" : "a longer line");
    const size_t len = size_t(static_cast<const uint8_t*>(nl) - (d_ + pos_));
    std::string s(reinterpret_cast<const char*>(d_ + pos_), len);
    pos_ += len + 1;
    return s;
  }
  Value* global(const std::string& name) {
    for (size_t i = 0; i < std::size(kGlobals); ++i) {
      if (kGlobals[i].name == name) {
        Value* v = make(Kind::Global);
        v->text = name;
        v->integer = int64_t(i);
        return v;
      }
    }
    fail(kAllowedGlobals, printable(name));
  }

  void memo_put(uint64_t index) {
    Value* v = top();
    if (memo_.size() >= lim_.max_values)
      fail("at most " + std::to_string(lim_.max_values) + " memo entries", "more");
    memo_[index] = v;
  }
  Value* memo_get(uint64_t index) {
    auto it = memo_.find(index);
    if (it == memo_.end())
      fail("a memo index stored by an earlier PUT", std::to_string(index) + " (never stored)");
    return it->second;
  }

  // Argument checks for the interpreted calls.
  const Value& arg(const std::vector<Value*>& a, size_t i, Kind k, const char* what) {
    if (a[i]->kind != k)
      fail(std::string(what) + " (argument " + std::to_string(i + 1) + ") as a " + kind_name(k),
           describe(*a[i]));
    return *a[i];
  }
  Shape int_tuple(const Value& t, const char* what, size_t max_len) {
    if (t.kind != Kind::Tuple && t.kind != Kind::List)
      fail(std::string(what) + " as a tuple of integers", describe(t));
    if (t.items.size() > max_len)
      fail(std::string(what) + " of at most " + std::to_string(max_len) + " dimensions",
           std::to_string(t.items.size()));
    Shape out;
    for (const Value* x : t.items) {
      if (x->kind != Kind::Int || x->integer < 0 || uint64_t(x->integer) > kMaxElements)
        fail(std::string(what) + " as non-negative integers", describe(*x));
      out.push_back(x->integer);
    }
    return out;
  }

  Value* call(Value* fn, Value* args, bool newobj);
  Value* rebuild_tensor(const std::vector<Value*>& a);
  Value* persistent(Value* pid);
  void build(Value* obj, Value* state);

  const uint8_t* d_;
  size_t n_;
  size_t pos_ = 0, op_pos_ = 0;
  uint8_t op_ = 0;
  const std::string& file_;
  const std::string& entry_;
  Limits lim_;
  Unpickled out_;
  std::vector<Value*> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Value*> memo_;
  size_t items_ = 0;
  uint64_t encoded_bytes_ = 0;
};

Value* Unpickler::rebuild_tensor(const std::vector<Value*>& a) {
  if (a.size() != 6 && a.size() != 7)
    fail(
        "_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, "
        "backward_hooks[, metadata])",
        std::to_string(a.size()) + " arguments");
  const Value& storage = arg(a, 0, Kind::Storage, "_rebuild_tensor_v2 storage");
  const Value& offset = arg(a, 1, Kind::Int, "_rebuild_tensor_v2 storage_offset");
  if (offset.integer < 0)
    fail("_rebuild_tensor_v2 storage_offset >= 0", std::to_string(offset.integer));
  auto t = std::make_unique<TensorDesc>();
  t->storage = &storage;
  t->offset = uint64_t(offset.integer);
  t->shape = int_tuple(*a[2], "_rebuild_tensor_v2 size", lim_.max_rank);
  t->stride = int_tuple(*a[3], "_rebuild_tensor_v2 stride", lim_.max_rank);
  if (t->stride.size() != t->shape.size())
    fail("_rebuild_tensor_v2 stride of the size's rank " + std::to_string(t->shape.size()),
         shape_str(t->stride));
  t->requires_grad = arg(a, 4, Kind::Bool, "_rebuild_tensor_v2 requires_grad").boolean;
  arg(a, 5, Kind::Dict, "_rebuild_tensor_v2 backward_hooks");
  if (a.size() == 7 && a[6]->kind != Kind::Dict && a[6]->kind != Kind::None)
    fail("_rebuild_tensor_v2 metadata (argument 7) as a dict or None", describe(*a[6]));

  // The view must stay inside its storage: offset + sum((size-1)*stride) < numel.
  // The product of the non-zero sizes is bounded too, so that [0, 2^40, 2^40] (no elements)
  // cannot overflow a later product taken in another order.
  uint64_t extent = 1, last = t->offset;
  bool ok = true, empty = false;
  for (size_t i = 0; i < t->shape.size(); ++i) {
    if (t->shape[i] == 0) empty = true;
    ok = ok && checked_mul(extent, std::max<uint64_t>(1, uint64_t(t->shape[i])), &extent);
  }
  const uint64_t numel = empty ? 0 : extent;
  if (!ok || extent > kMaxElements)
    fail("_rebuild_tensor_v2 size with fewer than 2^62 elements", shape_str(t->shape));
  const uint64_t storage_numel = storage.storage->numel;
  if (numel > 0) {
    for (size_t i = 0; i < t->shape.size(); ++i) {
      uint64_t step;
      ok = ok && checked_mul(uint64_t(t->shape[i] - 1), uint64_t(t->stride[i]), &step) &&
           checked_add(last, step, &last);
    }
    if (!ok || last >= storage_numel)
      fail("a view inside storage '" + printable(storage.storage->key) + "' of " +
               std::to_string(storage_numel) + " elements",
           "offset " + std::to_string(t->offset) + " size " + shape_str(t->shape) + " stride " +
               shape_str(t->stride) + (ok ? " reaching element " + std::to_string(last) : ""));
  } else if (t->offset > storage_numel) {
    fail("a storage_offset inside storage '" + printable(storage.storage->key) + "' of " +
             std::to_string(storage_numel) + " elements",
         std::to_string(t->offset));
  }
  Value* v = make(Kind::Tensor);
  v->tensor = std::move(t);
  return v;
}

Value* Unpickler::call(Value* fn, Value* args, bool newobj) {
  if (fn->kind != Kind::Global) fail("an allowed global to call", describe(*fn));
  if (args->kind != Kind::Tuple) fail("an argument tuple", describe(*args));
  const GlobalRow& g = kGlobals[fn->integer];
  const std::vector<Value*>& a = args->items;
  if (newobj) {
    // cls.__new__(cls, *args) creates an empty instance; contents arrive by SETITEMS/BUILD.
    switch (g.role) {
      case Role::OrderedDict:
        return make(Kind::Dict);
      case Role::Set:
        return make(Kind::Set);
      case Role::NumpyObject: {
        Value* v = make(Kind::Object);
        v->text = fn->text;
        return v;
      }
      default:
        fail("a class NEWOBJ can create (collections.OrderedDict, builtins.set, numpy)", fn->text);
    }
  }
  switch (g.role) {
    case Role::OrderedDict: {
      if (a.empty()) return make(Kind::Dict);
      if (a.size() != 1 || (a[0]->kind != Kind::List && a[0]->kind != Kind::Tuple))
        fail("OrderedDict() or OrderedDict(list of pairs)",
             std::to_string(a.size()) + " arguments");
      std::vector<Value*> items;
      for (Value* pair : a[0]->items) {
        if (pair->kind != Kind::Tuple || pair->items.size() != 2)
          fail("OrderedDict items as (key, value) pairs", describe(*pair));
        items.push_back(pair->items[0]);
        items.push_back(pair->items[1]);
      }
      return container(Kind::Dict, std::move(items));
    }
    case Role::RebuildTensorV2:
      return rebuild_tensor(a);
    case Role::RebuildParameter:
    case Role::RebuildParameterWithState: {
      const size_t want = g.role == Role::RebuildParameter ? 3 : 4;
      if (a.size() != want)
        fail(std::string(g.name) + " with " + std::to_string(want) + " arguments",
             std::to_string(a.size()) + " arguments");
      arg(a, 0, Kind::Tensor, "parameter data");
      arg(a, 1, Kind::Bool, "parameter requires_grad");
      arg(a, 2, Kind::Dict, "parameter backward_hooks");
      return a[0];
    }
    case Role::Size: {
      if (a.size() != 1) fail("torch.Size(tuple)", std::to_string(a.size()) + " arguments");
      int_tuple(*a[0], "torch.Size", 64);
      return container(Kind::Tuple, a[0]->items);
    }
    case Role::CodecsEncode: {
      if (a.size() != 2 || a[0]->kind != Kind::Str || a[1]->kind != Kind::Str ||
          (a[1]->text != "latin1" && a[1]->text != "latin-1"))
        fail("_codecs.encode(str, 'latin1')", std::to_string(a.size()) + " arguments" +
                                                  (a.size() == 2 ? ", " + describe(*a[1]) : ""));
      // Bytes are at most as long as their UTF-8 text; the budget stops a memoised string from
      // being encoded over and over.
      encoded_bytes_ += a[0]->text.size();
      if (encoded_bytes_ > n_)
        fail("encoded bytes totalling at most the pickle's size", std::to_string(encoded_bytes_));
      Value* v = make(Kind::Bytes);
      const std::string& s = a[0]->text;  // valid UTF-8, checked when read
      for (size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
          v->text += char(c);
          i += 1;
        } else if ((c & 0xe0) == 0xc0 && c <= 0xc3) {  // U+0080..U+00FF
          v->text += char(((c & 0x03) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3f));
          i += 2;
        } else {
          fail("latin-1 text (code points below 256)", "a character above U+00FF");
        }
      }
      return v;
    }
    case Role::Set: {
      if (a.empty()) return make(Kind::Set);
      if (a.size() != 1 ||
          (a[0]->kind != Kind::List && a[0]->kind != Kind::Tuple && a[0]->kind != Kind::Set))
        fail("set() or set(list)", std::to_string(a.size()) + " arguments");
      return container(Kind::Set, a[0]->items);
    }
    case Role::NumpyObject: {
      Value* v = make(Kind::Object);
      v->text = fn->text;
      return v;
    }
    case Role::Storage:
    case Role::DTypeRef:
    case Role::InertClass:
      break;
  }
  fail(
      "a callable global (collections.OrderedDict, torch._utils._rebuild_tensor_v2, "
      "torch._utils._rebuild_parameter[_with_state], torch.Size, _codecs.encode, builtins.set, "
      "numpy)",
      fn->text);
}

Value* Unpickler::persistent(Value* pid) {
  const char* form = "a persistent id ('storage', torch.<Type>Storage, key, location, numel)";
  if (pid->kind != Kind::Tuple || pid->items.size() != 5 || !pid->items[0]->is_str("storage"))
    fail(form, pid->kind == Kind::Tuple
                   ? "a tuple of " + std::to_string(pid->items.size()) +
                         (pid->items.empty() ? "" : " starting with " + describe(*pid->items[0]))
                   : describe(*pid));
  const auto& it = pid->items;
  if (it[1]->kind != Kind::Global || kGlobals[it[1]->integer].role != Role::Storage)
    fail("a storage type torch.<Type>Storage", describe(*it[1]));
  if (it[2]->kind != Kind::Str || it[2]->text.empty() || it[2]->text.size() > kMaxKey)
    fail("a storage key of 1 to " + std::to_string(kMaxKey) + " characters", describe(*it[2]));
  if (it[3]->kind != Kind::Str || it[3]->text.size() > kMaxLocation)
    fail("a storage location of at most " + std::to_string(kMaxLocation) + " characters",
         describe(*it[3]));
  const DType dtype = kGlobals[it[1]->integer].dtype;
  uint64_t bytes;
  if (it[4]->kind != Kind::Int || it[4]->integer < 0 ||
      !checked_mul(uint64_t(it[4]->integer), dtype_size(dtype), &bytes) || bytes > kMaxElements)
    fail("a storage size (numel) between 0 and 2^62 bytes", describe(*it[4]));
  Value* v = make(Kind::Storage);
  v->storage = std::make_unique<StorageRef>();
  v->storage->dtype = dtype;
  v->storage->key = it[2]->text;
  v->storage->location = it[3]->text;
  v->storage->numel = uint64_t(it[4]->integer);
  return v;
}

void Unpickler::build(Value* obj, Value* state) {
  // OrderedDict carries its attributes (a state_dict's `_metadata`) as BUILD state; numpy
  // placeholders carry theirs too. Neither is needed, so the state is checked and dropped.
  if (obj->kind == Kind::Dict) {
    if (state->kind != Kind::Dict && state->kind != Kind::None)
      fail("an OrderedDict's attributes as a dict", describe(*state));
    return;
  }
  if (obj->kind == Kind::Object) return;
  fail("an OrderedDict or numpy object to BUILD", describe(*obj));
}

Unpickled Unpickler::run() {
  for (;;) {
    op_pos_ = pos_;
    if (pos_ >= n_) {
      op_ = op::STOP;
      throw Error(file_, entry_ + " byte " + std::to_string(pos_), "STOP",
                  "end of data (truncated pickle)");
    }
    op_ = d_[pos_++];
    switch (op_) {
      case op::PROTO: {
        const uint64_t v = le(1);
        if (v > 5) fail("pickle protocol 2 to 5", std::to_string(v));
        break;
      }
      case op::FRAME: {
        const uint64_t len = le(8);
        if (len > n_ - pos_)
          fail("a frame of at most " + std::to_string(n_ - pos_) + " bytes (the rest)",
               std::to_string(len) + " bytes (truncated pickle)");
        break;
      }
      case op::STOP: {
        out_.root_ = pop();
        return std::move(out_);
      }
      case op::MARK:
        if (marks_.size() >= lim_.max_marks)
          fail("at most " + std::to_string(lim_.max_marks) + " nested MARKs", "more");
        marks_.push_back(stack_.size());
        break;
      case op::POP:
        if (stack_.size() > mark_base())
          stack_.pop_back();
        else
          pop_mark();  // as CPython: POP on an empty MARK frame drops the MARK
        break;
      case op::POP_MARK:
        pop_mark();
        break;
      case op::DUP:
        push(top());
        break;
      case op::NONE:
        push(make(Kind::None));
        break;
      case op::NEWTRUE:
      case op::NEWFALSE: {
        Value* v = make(Kind::Bool);
        v->boolean = op_ == op::NEWTRUE;
        push(v);
        break;
      }
      case op::BININT:
        push(integer(int64_t(int32_t(uint32_t(le(4))))));
        break;
      case op::BININT1:
        push(integer(int64_t(le(1))));
        break;
      case op::BININT2:
        push(integer(int64_t(le(2))));
        break;
      case op::LONG1:
        push(long_int(le(1)));
        break;
      case op::LONG4:
        push(long_int(le(4)));
        break;
      case op::BINFLOAT: {
        const uint8_t* p = take(8, "a float");
        uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits = (bits << 8) | p[i];  // big-endian
        Value* v = make(Kind::Float);
        std::memcpy(&v->real, &bits, 8);
        push(v);
        break;
      }
      case op::SHORT_BINUNICODE:
        push(text(Kind::Str, le(1)));
        break;
      case op::BINUNICODE:
        push(text(Kind::Str, le(4)));
        break;
      case op::BINUNICODE8:
        push(text(Kind::Str, le(8)));
        break;
      case op::SHORT_BINBYTES:
        push(text(Kind::Bytes, le(1)));
        break;
      case op::BINBYTES:
        push(text(Kind::Bytes, le(4)));
        break;
      case op::BINBYTES8:
        push(text(Kind::Bytes, le(8)));
        break;
      case op::EMPTY_DICT:
        push(make(Kind::Dict));
        break;
      case op::EMPTY_LIST:
        push(make(Kind::List));
        break;
      case op::EMPTY_TUPLE:
        push(make(Kind::Tuple));
        break;
      case op::EMPTY_SET:
        push(make(Kind::Set));
        break;
      case op::TUPLE:
        push(container(Kind::Tuple, pop_mark()));
        break;
      case op::LIST:
        push(container(Kind::List, pop_mark()));
        break;
      case op::FROZENSET:
        push(container(Kind::Set, pop_mark()));
        break;
      case op::DICT: {
        std::vector<Value*> items = pop_mark();
        if (items.size() % 2) fail("key/value pairs", std::to_string(items.size()) + " items");
        push(container(Kind::Dict, std::move(items)));
        break;
      }
      case op::TUPLE1:
      case op::TUPLE2:
      case op::TUPLE3: {
        const size_t n = size_t(op_ - op::TUPLE1 + 1);
        std::vector<Value*> items(n);
        for (size_t i = n; i-- > 0;) items[i] = pop();
        push(container(Kind::Tuple, std::move(items)));
        break;
      }
      case op::APPEND: {
        Value* v = pop();
        add_items(1);
        top_of(Kind::List)->items.push_back(v);
        break;
      }
      case op::APPENDS:
      case op::ADDITEMS: {
        std::vector<Value*> items = pop_mark();
        Value* target = top_of(op_ == op::APPENDS ? Kind::List : Kind::Set);
        add_items(items.size());
        target->items.insert(target->items.end(), items.begin(), items.end());
        break;
      }
      case op::SETITEM: {
        Value* value = pop();
        Value* key = pop();
        Value* dict = top_of(Kind::Dict);
        add_items(2);
        dict->items.push_back(key);
        dict->items.push_back(value);
        break;
      }
      case op::SETITEMS: {
        std::vector<Value*> items = pop_mark();
        if (items.size() % 2) fail("key/value pairs", std::to_string(items.size()) + " items");
        Value* dict = top_of(Kind::Dict);
        add_items(items.size());
        dict->items.insert(dict->items.end(), items.begin(), items.end());
        break;
      }
      case op::BINPUT:
        memo_put(le(1));
        break;
      case op::LONG_BINPUT:
        memo_put(le(4));
        break;
      case op::MEMOIZE:
        memo_put(memo_.size());
        break;
      case op::BINGET:
        push(memo_get(le(1)));
        break;
      case op::LONG_BINGET:
        push(memo_get(le(4)));
        break;
      case op::GLOBAL: {
        const std::string module = line();
        const std::string name = line();
        push(global(module + "." + name));
        break;
      }
      case op::STACK_GLOBAL: {
        Value* name = pop();
        Value* module = pop();
        if (module->kind != Kind::Str || name->kind != Kind::Str)
          fail("module and name strings", describe(*module) + ", " + describe(*name));
        push(global(module->text + "." + name->text));
        break;
      }
      case op::REDUCE:
      case op::NEWOBJ: {
        Value* args = pop();
        Value* fn = pop();
        push(call(fn, args, op_ == op::NEWOBJ));
        break;
      }
      case op::BUILD: {
        Value* state = pop();
        build(top(), state);
        break;
      }
      case op::BINPERSID:
        push(persistent(pop()));
        break;
      default:
        fail("an opcode a state dict uses", op_name(op_));
    }
  }
}

Unpickled unpickle(const uint8_t* data, size_t size, const std::string& file,
                   const std::string& entry, const Limits& limits) {
  Unpickler u(data, size, file, entry, limits);
  return u.run();
}

}  // namespace sdc::io::pickle
