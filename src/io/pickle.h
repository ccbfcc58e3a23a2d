// A restricted unpickler for PyTorch checkpoints. It interprets the pickle opcodes that state
// dicts use (protocols 2-5, without out-of-band buffers) and builds inert values; it never imports
// or calls anything. Every global is checked against a short allowlist the moment it is named, and
// the few "calls" a state dict makes (OrderedDict(), _rebuild_tensor_v2(...), ...) are interpreted
// here as data constructors. Everything read is bounded by the input: lengths are checked against
// the bytes left before anything is allocated, the value count, stack and MARK depth are capped,
// and nothing here recurses.
//
// Allowed globals (all others are refused with an error naming them):
//   collections.OrderedDict                       -> Dict
//   torch._utils._rebuild_tensor_v2               -> Tensor
//   torch._utils._rebuild_parameter[_with_state]  -> the Tensor it wraps
//   torch.{Double,Float,Half,BFloat16,Long,Int,Short,Char,Byte,Bool}Storage, torch.UntypedStorage,
//   torch.storage.UntypedStorage                  -> storage types inside persistent ids only
//   torch.{float64,float32,float16,bfloat16,int64,int32,int16,int8,uint8,bool}  -> inert dtypes
//   torch.Size                                    -> Tuple
//   _codecs.encode(str, "latin1")                 -> Bytes (how protocol 2 spells Python 3 bytes)
//   builtins.set / __builtin__.set                -> Set
// Inert placeholders, for what SD1.x training checkpoints hold outside `state_dict`
// (pytorch_lightning's `callbacks` is keyed by the ModelCheckpoint class; its scores can be numpy
// scalars). They are never called: a placeholder records only its class name, so they cannot have
// side effects, and a placeholder where a tensor is expected is an error:
//   pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint  -> class reference only
//   numpy.core.multiarray.scalar/_reconstruct, numpy.dtype, numpy.ndarray (also numpy._core.*)
//                                                 -> Object (BUILD state ignored)
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/dtype.h"
#include "common/tensor.h"

namespace sdc::io::pickle {

enum class Kind : uint8_t {
  None,
  Bool,
  Int,
  Float,
  Str,
  Bytes,
  Tuple,
  List,
  Dict,
  Set,
  Global,   // an allowed global named by GLOBAL/STACK_GLOBAL (text = "module.name")
  Storage,  // a persistent id ('storage', torch.XStorage, key, location, numel)
  Tensor,   // what _rebuild_tensor_v2 was given
  Object,   // an inert placeholder (text = its class)
};
const char* kind_name(Kind k);  // "dict", "tensor", ...

struct Value;

struct StorageRef {
  DType dtype = DType::U8;
  std::string key;       // the zip entry <prefix>/data/<key>
  std::string location;  // "cpu", "cuda:0", ... (recorded; data is always read to the CPU)
  uint64_t numel = 0;    // elements of `dtype` (bytes for UntypedStorage)
};

struct TensorDesc {
  const Value* storage = nullptr;  // Kind::Storage
  uint64_t offset = 0;             // in elements
  Shape shape;
  Shape stride;  // in elements, non-negative, same rank as shape
  bool requires_grad = false;
};

struct Value {
  Kind kind = Kind::None;
  bool boolean = false;
  int64_t integer = 0;  // Int; for Global: its row in the allowlist
  double real = 0;
  std::string text;           // Str (UTF-8), Bytes, Global "module.name", Object class
  std::vector<Value*> items;  // Tuple, List, Set; Dict: key0, value0, key1, value1, ...
  std::unique_ptr<StorageRef> storage;
  std::unique_ptr<TensorDesc> tensor;

  size_t dict_size() const { return items.size() / 2; }
  const Value& dict_key(size_t i) const { return *items[2 * i]; }
  const Value& dict_value(size_t i) const { return *items[2 * i + 1]; }
  // Dict: the value of the last entry whose key is the string `key` (Python's last-wins), or null.
  const Value* find(std::string_view key) const;
  bool is_str(std::string_view s) const { return kind == Kind::Str && text == s; }
};

// The result: every value lives in one arena, so shared and even cyclic references (a list that
// contains itself) are plain pointers and are freed without recursion.
class Unpickled {
 public:
  const Value& root() const { return *root_; }
  size_t value_count() const { return arena_->size(); }

 private:
  friend class Unpickler;
  std::unique_ptr<std::deque<Value>> arena_ = std::make_unique<std::deque<Value>>();
  const Value* root_ = nullptr;
};

struct Limits {
  size_t max_values = size_t(1) << 22;  // objects created (a full SD training ckpt: < 10^5)
  size_t max_items = size_t(1) << 23;   // pointers held by tuples, lists, dicts and sets
  size_t max_stack = size_t(1) << 22;   // stack entries (BINGET pushes without creating)
  size_t max_marks = 1000;              // nested MARKs (state dicts use < 10)
  size_t max_rank = 8;                  // tensor dimensions
};

// Unpickles `data`. Errors are sdc::Error with file = `file` and a key naming `entry` (the zip
// entry, e.g. "archive/data.pkl"), the byte offset and the opcode.
Unpickled unpickle(const uint8_t* data, size_t size, const std::string& file,
                   const std::string& entry, const Limits& limits = {});

}  // namespace sdc::io::pickle
