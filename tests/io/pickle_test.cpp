// Restricted unpickler: every supported opcode builds the value Python would, the interpreted
// calls give inert data, and every malformed or hostile pickle is refused with its reason.
#include <gtest/gtest.h>

#include "common/error.h"
#include "io/pickle.h"
#include "io/pickle_builder.h"

namespace sdc {
namespace {

using io::pickle::Kind;
using io::pickle::Value;
using test::PickleBuilder;

io::pickle::Unpickled load(const std::string& b, const io::pickle::Limits& lim = {}) {
  return io::pickle::unpickle(reinterpret_cast<const uint8_t*>(b.data()), b.size(), "t.pkl",
                              "data.pkl", lim);
}

std::string error_of(const std::string& b, const io::pickle::Limits& lim = {}) {
  try {
    load(b, lim);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(Pickle, Scalars) {
  PickleBuilder p;
  p.mark().integer(7).integer(300).integer(-5).integer(int64_t(1) << 40).integer(INT64_MIN);
  p.op(0x8a).raw_u(2, 1).raw_u(0xff7f, 2);                            // LONG1 2 bytes: -129
  p.op(0x8a).raw_u(0, 1);                                             // LONG1 0 bytes: 0
  p.op(0x8b).raw_u(1, 4).raw_u(0x80, 1);                              // LONG4 1 byte: -128
  p.op('G').raw(std::string("\x40\x09\x21\xfb\x54\x44\x2d\x18", 8));  // BINFLOAT pi
  p.none().boolean(true).boolean(false);
  p.op(0x8c).raw_u(2, 1).raw("hi");                     // SHORT_BINUNICODE
  p.op(0x8d).raw_u(5, 8).raw("\xc3\xa9t\xc3\xa9");      // BINUNICODE8 "été"
  p.op('C').raw_u(2, 1).raw(std::string("\0\xff", 2));  // SHORT_BINBYTES
  p.op('B').raw_u(1, 4).raw("b");                       // BINBYTES
  p.op(0x8e).raw_u(0, 8);                               // BINBYTES8 empty
  auto u = load(p.tuple().done());
  const auto& t = u.root().items;
  ASSERT_EQ(u.root().kind, Kind::Tuple);
  ASSERT_EQ(t.size(), 17u);
  EXPECT_EQ(t[0]->integer, 7);
  EXPECT_EQ(t[1]->integer, 300);
  EXPECT_EQ(t[2]->integer, -5);
  EXPECT_EQ(t[3]->integer, int64_t(1) << 40);
  EXPECT_EQ(t[4]->integer, INT64_MIN);
  EXPECT_EQ(t[5]->integer, -129);
  EXPECT_EQ(t[6]->integer, 0);
  EXPECT_EQ(t[7]->integer, -128);
  EXPECT_EQ(t[8]->kind, Kind::Float);
  EXPECT_DOUBLE_EQ(t[8]->real, 3.141592653589793);
  EXPECT_EQ(t[9]->kind, Kind::None);
  EXPECT_TRUE(t[10]->boolean);
  EXPECT_EQ(t[11]->kind, Kind::Bool);
  EXPECT_FALSE(t[11]->boolean);
  EXPECT_TRUE(t[12]->is_str("hi"));
  EXPECT_TRUE(t[13]->is_str("\xc3\xa9t\xc3\xa9"));
  EXPECT_EQ(t[14]->kind, Kind::Bytes);
  EXPECT_EQ(t[14]->text, std::string("\0\xff", 2));
  EXPECT_EQ(t[15]->text, "b");
  EXPECT_EQ(t[16]->kind, Kind::Bytes);
  EXPECT_EQ(t[16]->text, "");
}

TEST(Pickle, ContainersAndStackOps) {
  PickleBuilder p;
  p.mark();
  p.mark().str("a").integer(1).str("b").integer(2).op('d');  // DICT {'a':1,'b':2}
  p.mark().integer(1).integer(2).op('l');                    // LIST [1, 2]
  p.integer(1).op(0x85).integer(1).integer(2).op(0x86);      // TUPLE1, TUPLE2
  p.integer(1).integer(2).integer(3).op(0x87);               // TUPLE3
  p.op(0x8f).mark().integer(4).integer(5).op(0x90);          // EMPTY_SET + ADDITEMS
  p.mark().integer(6).op(0x91);                              // FROZENSET
  p.empty_list().mark().integer(1).integer(2).appends().integer(3).append();
  p.empty_dict().str("k").integer(9).setitem();
  p.integer(99).op('0');                   // POP
  p.mark().integer(1).integer(2).op('1');  // POP_MARK
  p.integer(8).op('2');                    // DUP
  p.mark().op('0');                        // POP on an empty MARK frame drops the MARK
  auto u = load(p.tuple().done());
  const auto& t = u.root().items;
  ASSERT_EQ(t.size(), 11u);
  EXPECT_EQ(t[0]->kind, Kind::Dict);
  ASSERT_NE(t[0]->find("b"), nullptr);
  EXPECT_EQ(t[0]->find("b")->integer, 2);
  EXPECT_EQ(t[0]->find("c"), nullptr);
  EXPECT_EQ(t[1]->kind, Kind::List);
  EXPECT_EQ(t[1]->items.size(), 2u);
  EXPECT_EQ(t[2]->items.size(), 1u);
  EXPECT_EQ(t[3]->items.size(), 2u);
  EXPECT_EQ(t[4]->items[2]->integer, 3);
  EXPECT_EQ(t[5]->kind, Kind::Set);
  EXPECT_EQ(t[5]->items.size(), 2u);
  EXPECT_EQ(t[6]->kind, Kind::Set);
  EXPECT_EQ(t[7]->items.size(), 3u);
  EXPECT_EQ(t[7]->items[2]->integer, 3);
  EXPECT_EQ(t[8]->find("k")->integer, 9);
  EXPECT_EQ(t[9], t[10]);  // DUP pushes the same object
}

TEST(Pickle, DictKeysLastOneWins) {
  PickleBuilder p;
  p.empty_dict().mark().str("x").integer(1).str("x").integer(2).setitems();
  auto u = load(p.done());
  EXPECT_EQ(u.root().find("x")->integer, 2);
}

TEST(Pickle, MemoSharesMutableObjects) {
  PickleBuilder p;
  // l = []; t = (l, l); l.append(5) after t is built: both refer to the same list.
  p.empty_list().put(0).get(0).op(0x86).put(1).get(0).integer(5).append().op('0');
  auto u = load(p.done());
  const Value& t = u.root();
  ASSERT_EQ(t.kind, Kind::Tuple);
  EXPECT_EQ(t.items[0], t.items[1]);
  ASSERT_EQ(t.items[0]->items.size(), 1u);
  EXPECT_EQ(t.items[0]->items[0]->integer, 5);
}

TEST(Pickle, Protocol4FramesMemoizeAndStackGlobal) {
  // {'w': OrderedDict()} as protocol 4 writes it: a FRAME, MEMOIZE after each object,
  // SHORT_BINUNICODE and STACK_GLOBAL.
  std::string ops = "}\x94";
  ops += "\x8c\x01w\x94";
  ops +=
      "\x8c\x0b"
      "collections\x94";
  ops += "\x8c\x0bOrderedDict\x94";
  ops += "\x93\x94)R\x94s";
  ops += "h\x04";  // BINGET 4 = the OrderedDict class, then POP it
  ops += "0.";
  PickleBuilder p(4);
  p.op(0x95).raw_u(ops.size(), 8).raw(ops);
  auto u = load(p.bytes());
  ASSERT_EQ(u.root().kind, Kind::Dict);
  ASSERT_NE(u.root().find("w"), nullptr);
  EXPECT_EQ(u.root().find("w")->kind, Kind::Dict);
}

TEST(Pickle, SelfReferenceAndDeepNestingNeedNoRecursion) {
  {
    PickleBuilder p;  // l = []; l.append(l)
    p.empty_list().put(0).get(0).append();
    auto u = load(p.done());
    EXPECT_EQ(u.root().items.at(0), &u.root());
  }
  PickleBuilder p;  // (((...[] ...),),) one million levels deep
  p.empty_list();
  for (int i = 0; i < 1000000; ++i) p.op(0x85);
  auto u = load(p.done());
  const Value* v = &u.root();
  int depth = 0;
  while (v->kind == Kind::Tuple) v = v->items[0], ++depth;
  EXPECT_EQ(depth, 1000000);
  EXPECT_EQ(v->kind, Kind::List);
}

TEST(Pickle, InterpretedCalls) {
  PickleBuilder p;
  p.mark();
  p.global("_codecs", "encode").str("a\xc3\xbf").str("latin1").op(0x86).reduce();
  p.global("torch", "Size").mark().ints({2, 3}).tuple().reduce();
  p.global("builtins", "set").mark().mark().integer(1).op('l').tuple().reduce();
  p.global("__builtin__", "set").empty_tuple().reduce();
  p.global("collections", "OrderedDict")
      .mark()
      .mark()
      .mark()
      .str("k")
      .integer(1)
      .tuple()
      .op('l')
      .tuple()
      .reduce();
  p.global("collections", "OrderedDict").empty_tuple().op(0x81);  // NEWOBJ
  p.global("numpy", "dtype").mark().str("f8").boolean(false).boolean(true).tuple().reduce();
  p.none().build();  // numpy placeholders accept and drop their state
  p.global("pytorch_lightning.callbacks.model_checkpoint", "ModelCheckpoint");
  p.global("torch", "float16");
  p.ordered_dict().empty_dict().build();  // an OrderedDict's attributes (_metadata)
  auto u = load(p.tuple().done());
  const auto& t = u.root().items;
  ASSERT_EQ(t.size(), 10u);
  EXPECT_EQ(t[0]->kind, Kind::Bytes);
  EXPECT_EQ(t[0]->text, "a\xff");
  EXPECT_EQ(t[1]->kind, Kind::Tuple);
  EXPECT_EQ(t[1]->items.at(1)->integer, 3);
  EXPECT_EQ(t[2]->kind, Kind::Set);
  EXPECT_EQ(t[2]->items.size(), 1u);
  EXPECT_EQ(t[3]->kind, Kind::Set);
  EXPECT_EQ(t[4]->find("k")->integer, 1);
  EXPECT_EQ(t[5]->kind, Kind::Dict);
  EXPECT_EQ(t[6]->kind, Kind::Object);
  EXPECT_EQ(t[6]->text, "numpy.dtype");
  EXPECT_EQ(t[7]->kind, Kind::Global);
  EXPECT_EQ(t[7]->text, "pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint");
  EXPECT_EQ(t[8]->text, "torch.float16");
  EXPECT_EQ(t[9]->kind, Kind::Dict);
}

TEST(Pickle, TensorDescriptionAndParameter) {
  PickleBuilder p;
  p.global("torch._utils", "_rebuild_parameter").mark();
  p.tensor("HalfStorage", "7", 20, 2, {3, 2}, {1, 3}).boolean(true).ordered_dict().tuple().reduce();
  auto u = load(p.done());
  ASSERT_EQ(u.root().kind, Kind::Tensor);
  const auto& t = *u.root().tensor;
  EXPECT_EQ(t.offset, 2u);
  EXPECT_EQ(t.shape, (Shape{3, 2}));
  EXPECT_EQ(t.stride, (Shape{1, 3}));
  EXPECT_EQ(t.storage->storage->dtype, DType::F16);
  EXPECT_EQ(t.storage->storage->key, "7");
  EXPECT_EQ(t.storage->storage->location, "cpu");
  EXPECT_EQ(t.storage->storage->numel, 20u);
}

// ---- refusals ----

// Builds a pickle whose last opcode (emitted by `last`) is expected to fail, and returns the
// message together with that opcode's offset, so that each test states the whole message.
struct Failing {
  std::string message;
  std::string at;  // "t.pkl: data.pkl byte N: "
};
template <class Prefix, class Last>
Failing failing(Prefix prefix, Last last, int protocol = 2) {
  PickleBuilder p(protocol);
  prefix(p);
  const size_t at = p.bytes().size();
  last(p);
  return {error_of(p.done()), "t.pkl: data.pkl byte " + std::to_string(at) + ": "};
}
auto op_reduce = [](PickleBuilder& p) { p.reduce(); };
auto op_persid = [](PickleBuilder& p) { p.persid(); };

TEST(PickleBadInput, ForbiddenGlobals) {
  auto f = failing([](PickleBuilder&) {}, [](PickleBuilder& p) { p.global("posix", "system"); });
  EXPECT_EQ(f.message, f.at + "GLOBAL: " + test::kAllowedGlobals + ", found posix.system");
  f = failing([](PickleBuilder& p) { p.str("os").str("system"); },
              [](PickleBuilder& p) { p.op(0x93); }, 4);
  EXPECT_EQ(f.message, f.at + "STACK_GLOBAL: " + test::kAllowedGlobals + ", found os.system");
  f = failing([](PickleBuilder&) {}, [](PickleBuilder& p) { p.global("builtins", "eval\x01"); });
  EXPECT_EQ(f.message, f.at + "GLOBAL: " + test::kAllowedGlobals + ", found builtins.eval\\x01");
  f = failing([](PickleBuilder&) {}, [](PickleBuilder& p) { p.global("torch", "load"); });
  EXPECT_EQ(f.message, f.at + "GLOBAL: " + test::kAllowedGlobals + ", found torch.load");
}

TEST(PickleBadInput, RefusedOpcodes) {
  EXPECT_EQ(error_of(PickleBuilder().raw("i__main__\nX\n").done()),
            "t.pkl: data.pkl byte 2: INST: expected an opcode a state dict uses, found INST");
  EXPECT_EQ(error_of(PickleBuilder().op(0x82).raw_u(1, 1).done()),
            "t.pkl: data.pkl byte 2: EXT1: expected an opcode a state dict uses, found EXT1");
  EXPECT_EQ(error_of(PickleBuilder().op(0xff).done()),
            "t.pkl: data.pkl byte 2: unknown opcode 0xff: expected an opcode a state dict uses, "
            "found unknown opcode 0xff");
  EXPECT_EQ(error_of(PickleBuilder(6).done()),
            "t.pkl: data.pkl byte 0: PROTO: expected pickle protocol 2 to 5, found 6");
}

TEST(PickleBadInput, CallsOutsideTheInterpretedSet) {
  auto f =
      failing([](PickleBuilder& p) { p.global("torch", "FloatStorage").empty_tuple(); }, op_reduce);
  EXPECT_EQ(f.message, f.at +
                           "REDUCE: expected a callable global (collections.OrderedDict, "
                           "torch._utils._rebuild_tensor_v2, "
                           "torch._utils._rebuild_parameter[_with_state], torch.Size, "
                           "_codecs.encode, builtins.set, numpy), found torch.FloatStorage");
  f = failing([](PickleBuilder& p) { p.str("f").empty_tuple(); }, op_reduce);
  EXPECT_EQ(f.message, f.at + "REDUCE: expected an allowed global to call, found str 'f'");
  f = failing([](PickleBuilder& p) { p.ordered_dict().empty_tuple(); }, op_reduce);
  EXPECT_EQ(f.message, f.at + "REDUCE: expected an allowed global to call, found dict");
  f = failing([](PickleBuilder& p) { p.global("torch", "Size").integer(1); }, op_reduce);
  EXPECT_EQ(f.message, f.at + "REDUCE: expected an argument tuple, found int 1");
  f = failing([](PickleBuilder& p) { p.global("torch", "Size").empty_tuple(); },
              [](PickleBuilder& p) { p.op(0x81); });
  EXPECT_EQ(f.message, f.at +
                           "NEWOBJ: expected a class NEWOBJ can create (collections.OrderedDict, "
                           "builtins.set, numpy), found torch.Size");
  f = failing([](PickleBuilder& p) { p.empty_list().none(); }, [](PickleBuilder& p) { p.build(); });
  EXPECT_EQ(f.message,
            f.at + "BUILD: expected an OrderedDict or numpy object to BUILD, found list");
  f = failing([](PickleBuilder& p) { p.ordered_dict().integer(3); },
              [](PickleBuilder& p) { p.build(); });
  EXPECT_EQ(f.message, f.at + "BUILD: expected an OrderedDict's attributes as a dict, found int 3");
  f = failing(
      [](PickleBuilder& p) {
        p.global("_codecs", "encode").str("\xc4\x80").str("latin1").op(0x86);
      },
      op_reduce);
  EXPECT_EQ(f.message, f.at +
                           "REDUCE: expected latin-1 text (code points below 256), found a "
                           "character above U+00FF");
  f = failing(
      [](PickleBuilder& p) { p.global("_codecs", "encode").str("x").str("utf-8").op(0x86); },
      op_reduce);
  EXPECT_EQ(f.message, f.at +
                           "REDUCE: expected _codecs.encode(str, 'latin1'), found 2 arguments, "
                           "str 'utf-8'");
  f = failing(
      [](PickleBuilder& p) { p.global("torch", "Size").mark().ints({1}).ints({2}).tuple(); },
      op_reduce);
  EXPECT_EQ(f.message, f.at + "REDUCE: expected torch.Size(tuple), found 2 arguments");
  f = failing(
      [](PickleBuilder& p) {
        p.global("torch._utils", "_rebuild_parameter").mark().integer(1).boolean(true);
        p.ordered_dict().tuple();
      },
      op_reduce);
  EXPECT_EQ(f.message,
            f.at + "REDUCE: expected parameter data (argument 1) as a tensor, found int 1");
}

const char* kPidForm =
    "BINPERSID: expected a persistent id ('storage', torch.<Type>Storage, key, location, numel)";

TEST(PickleBadInput, PersistentIds) {
  auto pid = [](const char* type, std::string key, int64_t numel) {
    return [=](PickleBuilder& p) {
      p.mark().str("storage").global("torch", type).str(key).str("cpu").integer(numel).tuple();
    };
  };
  auto f = failing([](PickleBuilder& p) { p.mark().str("module").tuple(); }, op_persid);
  EXPECT_EQ(f.message, f.at + kPidForm + ", found a tuple of 1 starting with str 'module'");
  f = failing([](PickleBuilder& p) { p.integer(4); }, op_persid);
  EXPECT_EQ(f.message, f.at + kPidForm + ", found int 4");
  f = failing(pid("float32", "0", 1), op_persid);
  EXPECT_EQ(f.message, f.at +
                           "BINPERSID: expected a storage type torch.<Type>Storage, found global "
                           "torch.float32");
  f = failing(pid("FloatStorage", "0", -1), op_persid);
  EXPECT_EQ(f.message, f.at +
                           "BINPERSID: expected a storage size (numel) between 0 and 2^62 bytes, "
                           "found int -1");
  f = failing(pid("DoubleStorage", "0", int64_t(1) << 60), op_persid);
  EXPECT_EQ(f.message, f.at +
                           "BINPERSID: expected a storage size (numel) between 0 and 2^62 bytes, "
                           "found int 1152921504606846976");
  f = failing(pid("FloatStorage", std::string(300, '1'), 1), op_persid);
  EXPECT_EQ(f.message, f.at +
                           "BINPERSID: expected a storage key of 1 to 256 characters, found str '" +
                           std::string(120, '1') + "...'");
  f = failing(pid("FloatStorage", "", 1), op_persid);
  EXPECT_EQ(f.message,
            f.at + "BINPERSID: expected a storage key of 1 to 256 characters, found str ''");
}

TEST(PickleBadInput, TensorArguments) {
  // _rebuild_tensor_v2(<args>) where the REDUCE is the failing opcode.
  auto rebuild = [](auto&& args) {
    return failing(
        [&](PickleBuilder& p) {
          p.global("torch._utils", "_rebuild_tensor_v2").mark();
          args(p);
          p.tuple();
        },
        op_reduce);
  };
  const std::string R = "REDUCE: expected ";
  auto f = rebuild([](PickleBuilder& p) { p.integer(1); });
  EXPECT_EQ(f.message, f.at + R +
                           "_rebuild_tensor_v2(storage, storage_offset, size, stride, "
                           "requires_grad, backward_hooks[, metadata]), found 1 arguments");
  f = rebuild([](PickleBuilder& p) {
    p.integer(1).integer(0).ints({1}).ints({1}).boolean(false).ordered_dict();
  });
  EXPECT_EQ(f.message,
            f.at + R + "_rebuild_tensor_v2 storage (argument 1) as a storage, found int 1");
  f = rebuild([](PickleBuilder& p) {
    p.storage("FloatStorage", "0", 4).integer(-2).ints({1}).ints({1});
    p.boolean(false).ordered_dict();
  });
  EXPECT_EQ(f.message, f.at + R + "_rebuild_tensor_v2 storage_offset >= 0, found -2");
  f = rebuild([](PickleBuilder& p) {
    p.storage("FloatStorage", "0", 4).integer(0).ints({1, -1}).ints({1, 1});
    p.boolean(false).ordered_dict();
  });
  EXPECT_EQ(f.message, f.at + R + "_rebuild_tensor_v2 size as non-negative integers, found int -1");
  f = rebuild([](PickleBuilder& p) {
    p.storage("FloatStorage", "0", 4).integer(0).integer(3).ints({1});
    p.boolean(false).ordered_dict();
  });
  EXPECT_EQ(f.message, f.at + R + "_rebuild_tensor_v2 size as a tuple of integers, found int 3");
  f = rebuild([](PickleBuilder& p) {
    p.storage("FloatStorage", "0", 4).integer(0).ints({1, 1, 1, 1, 1, 1, 1, 1, 1});
    p.ints({1}).boolean(false).ordered_dict();
  });
  EXPECT_EQ(f.message, f.at + R + "_rebuild_tensor_v2 size of at most 8 dimensions, found 9");
  f = rebuild([](PickleBuilder& p) {
    p.storage("FloatStorage", "0", 4).integer(0).ints({2, 2}).ints({1});
    p.boolean(false).ordered_dict();
  });
  EXPECT_EQ(f.message, f.at + R + "_rebuild_tensor_v2 stride of the size's rank 2, found [1]");
  f = rebuild([](PickleBuilder& p) {
    p.storage("FloatStorage", "0", 12).integer(10).ints({4}).ints({1});
    p.boolean(false).ordered_dict();
  });
  EXPECT_EQ(f.message, f.at + R +
                           "a view inside storage '0' of 12 elements, found offset 10 size [4] "
                           "stride [1] reaching element 13");
  f = rebuild([](PickleBuilder& p) {
    p.storage("FloatStorage", "0", 12).integer(0).ints({2, 3}).ints({(int64_t(1) << 62) + 1, 1});
    p.boolean(false).ordered_dict();
  });
  EXPECT_EQ(f.message, f.at + R +
                           "_rebuild_tensor_v2 stride as non-negative integers, found int "
                           "4611686018427387905");
  f = rebuild([](PickleBuilder& p) {
    p.storage("FloatStorage", "0", 12).integer(0).ints({2, 3}).ints({int64_t(1) << 62, 1});
    p.boolean(false).ordered_dict();
  });
  EXPECT_EQ(f.message, f.at + R +
                           "a view inside storage '0' of 12 elements, found offset 0 size [2, 3] "
                           "stride [4611686018427387904, 1] reaching element "
                           "4611686018427387906");
  f = rebuild([](PickleBuilder& p) {  // (size-1) * stride overflows 64 bits
    p.storage("FloatStorage", "0", 12).integer(0).ints({5, 1}).ints({int64_t(1) << 62, 1});
    p.boolean(false).ordered_dict();
  });
  EXPECT_EQ(f.message, f.at + R +
                           "a view inside storage '0' of 12 elements, found offset 0 size [5, 1] "
                           "stride [4611686018427387904, 1]");
  f = rebuild([](PickleBuilder& p) {
    p.storage("FloatStorage", "0", 12).integer(0);
    p.ints({int64_t(1) << 31, int64_t(1) << 31, int64_t(1) << 31}).ints({0, 0, 0});
    p.boolean(false).ordered_dict();
  });
  EXPECT_EQ(f.message, f.at + R +
                           "_rebuild_tensor_v2 size with fewer than 2^62 elements, found "
                           "[2147483648, 2147483648, 2147483648]");
  f = rebuild([](PickleBuilder& p) {  // no elements, but the other sizes' product overflows
    p.storage("FloatStorage", "0", 12).integer(0);
    p.ints({0, int64_t(1) << 40, int64_t(1) << 40}).ints({0, 0, 0});
    p.boolean(false).ordered_dict();
  });
  EXPECT_EQ(f.message, f.at + R +
                           "_rebuild_tensor_v2 size with fewer than 2^62 elements, found "
                           "[0, 1099511627776, 1099511627776]");
  f = rebuild([](PickleBuilder& p) {
    p.storage("FloatStorage", "0", 12).integer(13).ints({0}).ints({1});
    p.boolean(false).ordered_dict();
  });
  EXPECT_EQ(f.message, f.at + R + "a storage_offset inside storage '0' of 12 elements, found 13");
  f = rebuild([](PickleBuilder& p) {
    p.storage("FloatStorage", "0", 12).integer(0).ints({1}).ints({1});
    p.integer(0).ordered_dict();
  });
  EXPECT_EQ(f.message,
            f.at + R + "_rebuild_tensor_v2 requires_grad (argument 5) as a bool, found int 0");
  f = rebuild([](PickleBuilder& p) {
    p.storage("FloatStorage", "0", 12).integer(0).ints({1}).ints({1});
    p.boolean(false).ordered_dict().integer(7);
  });
  EXPECT_EQ(f.message,
            f.at + R + "_rebuild_tensor_v2 metadata (argument 7) as a dict or None, found int 7");
}

TEST(PickleBadInput, StackAndMarkMisuse) {
  EXPECT_EQ(error_of(PickleBuilder().done()),
            "t.pkl: data.pkl byte 2: STOP: expected a value on the stack, found none");
  EXPECT_EQ(error_of(PickleBuilder().integer(1).tuple().done()),
            "t.pkl: data.pkl byte 4: TUPLE: expected a MARK on the stack, found none");
  EXPECT_EQ(error_of(PickleBuilder().integer(1).mark().op(0x85).done()),
            "t.pkl: data.pkl byte 5: TUPLE1: expected a value on the stack, found none");
  EXPECT_EQ(error_of(PickleBuilder().empty_dict().mark().integer(1).setitems().done()),
            "t.pkl: data.pkl byte 6: SETITEMS: expected key/value pairs, found 1 items");
  EXPECT_EQ(error_of(PickleBuilder().empty_tuple().integer(1).append().done()),
            "t.pkl: data.pkl byte 5: APPEND: expected a list to add to, found tuple");
  EXPECT_EQ(error_of(PickleBuilder().empty_list().integer(1).integer(2).setitem().done()),
            "t.pkl: data.pkl byte 7: SETITEM: expected a dict to add to, found list");
  EXPECT_EQ(error_of(PickleBuilder().put(0).done()),
            "t.pkl: data.pkl byte 2: BINPUT: expected a value on the stack, found none");
}

TEST(PickleBadInput, TruncationAndLengths) {
  EXPECT_EQ(error_of(PickleBuilder().op('X').raw_u(0x7fffffff, 4).raw("abc").bytes()),
            "t.pkl: data.pkl byte 2: BINUNICODE: expected a string of 2147483647 bytes, found only "
            "3 bytes left (truncated pickle)");
  EXPECT_EQ(error_of(PickleBuilder().op(0x8d).raw_u(~uint64_t(0), 8).bytes()),
            "t.pkl: data.pkl byte 2: BINUNICODE8: expected a string of 18446744073709551615 bytes, "
            "found only 0 bytes left (truncated pickle)");
  EXPECT_EQ(error_of(PickleBuilder().op(0x8e).raw_u(uint64_t(1) << 40, 8).raw("x").bytes()),
            "t.pkl: data.pkl byte 2: BINBYTES8: expected a bytes object of 1099511627776 bytes, "
            "found only 1 bytes left (truncated pickle)");
  EXPECT_EQ(error_of(PickleBuilder().op('J').raw("\x01\x02").bytes()),
            "t.pkl: data.pkl byte 2: BININT: expected an argument of 4 bytes, found only 2 bytes "
            "left (truncated pickle)");
  EXPECT_EQ(error_of(PickleBuilder().integer(1).bytes()),
            "t.pkl: data.pkl byte 4: expected STOP, found end of data (truncated pickle)");
  EXPECT_EQ(error_of(PickleBuilder().op(0x95).raw_u(100, 8).none().done()),
            "t.pkl: data.pkl byte 2: FRAME: expected a frame of at most 2 bytes (the rest), found "
            "100 bytes (truncated pickle)");
  EXPECT_EQ(error_of(PickleBuilder().op(0x8b).raw_u(9, 4).raw(std::string(9, '\0')).done()),
            "t.pkl: data.pkl byte 2: LONG4: expected an integer of at most 8 bytes, found 9 bytes");
  EXPECT_EQ(error_of(PickleBuilder().op(0x8b).raw_u(0xffffffff, 4).done()),
            "t.pkl: data.pkl byte 2: LONG4: expected an integer of 4294967295 bytes, found only 1 "
            "bytes left (truncated pickle)");
  EXPECT_EQ(error_of(PickleBuilder().raw("ctorch").done()),
            "t.pkl: data.pkl byte 2: GLOBAL: expected a name ending in a newline within 256 bytes, "
            "found end of data (truncated pickle)");
  EXPECT_EQ(error_of(PickleBuilder().op('c').raw(std::string(300, 'a')).raw("\nb\n").done()),
            "t.pkl: data.pkl byte 2: GLOBAL: expected a name ending in a newline within 256 bytes, "
            "found a longer line");
  EXPECT_EQ(error_of(PickleBuilder().op('X').raw_u(2, 4).raw("\xc3\x28").done()),
            "t.pkl: data.pkl byte 2: BINUNICODE: expected a UTF-8 string, found invalid UTF-8");
  EXPECT_EQ(error_of(PickleBuilder().op('X').raw_u(3, 4).raw("\xed\xa0\x80").done()),
            "t.pkl: data.pkl byte 2: BINUNICODE: expected a UTF-8 string, found invalid UTF-8");
  EXPECT_EQ(error_of(""),
            "t.pkl: data.pkl byte 0: expected STOP, found end of data (truncated pickle)");
}

TEST(PickleBadInput, MemoIndices) {
  EXPECT_EQ(error_of(PickleBuilder().op('j').raw_u(0xffffffff, 4).done()),
            "t.pkl: data.pkl byte 2: LONG_BINGET: expected a memo index stored by an earlier PUT, "
            "found 4294967295 (never stored)");
  // A huge index may be stored: the memo is a map, so nothing is sized by the index.
  auto u = load(PickleBuilder().integer(3).put(0xffffffff).op('0').get(0xffffffff).done());
  EXPECT_EQ(u.root().integer, 3);
  EXPECT_EQ(error_of(PickleBuilder().op('h').raw_u(7, 1).done()),
            "t.pkl: data.pkl byte 2: BINGET: expected a memo index stored by an earlier PUT, found "
            "7 (never stored)");
}

TEST(PickleBadInput, ResourceLimits) {
  std::string marks = PickleBuilder().bytes() + std::string(100000, '(');
  EXPECT_EQ(error_of(marks),
            "t.pkl: data.pkl byte 1002: MARK: expected at most 1000 nested MARKs, found more");
  io::pickle::Limits small;
  small.max_values = 10;
  small.max_stack = 5;
  PickleBuilder many;
  for (int i = 0; i < 11; ++i) many.none().op('0');
  EXPECT_EQ(error_of(many.done(), small),
            "t.pkl: data.pkl byte 22: NONE: expected at most 10 objects, found more");
  PickleBuilder deep;
  deep.none();
  for (int i = 0; i < 5; ++i) deep.op('2');
  EXPECT_EQ(error_of(deep.done(), small),
            "t.pkl: data.pkl byte 7: DUP: expected a stack of at most 5 entries, found more");
  // Copies of one memoised list (here set(list)) count against the container item budget
  // (max_items), which stops a few bytes from multiplying memory.
  io::pickle::Limits budget;
  budget.max_items = 400;
  PickleBuilder copies;
  copies.mark();
  for (int i = 0; i < 50; ++i) copies.integer(i);
  copies.op('l').put(0).op('0');
  size_t seventh = 0;
  for (int i = 0; i < 7; ++i) {
    copies.global("builtins", "set").get(0).op(0x85);
    seventh = copies.bytes().size();
    copies.reduce().op('0');
  }
  EXPECT_EQ(error_of(copies.done(), budget),
            "t.pkl: data.pkl byte " + std::to_string(seventh) +
                ": REDUCE: expected at most 400 container items, found more");
}

TEST(PickleBadInput, RepeatedEncodingIsBounded) {
  // _codecs.encode of one memoised string, over and over: the bytes made may not exceed the
  // pickle's own size.
  PickleBuilder p;
  p.str(std::string(100, 'a')).put(0).op('0');
  std::vector<size_t> at;
  for (int i = 0; i < 5; ++i) {
    p.global("_codecs", "encode").get(0).str("latin1").op(0x86);
    at.push_back(p.bytes().size());
    p.reduce().op('0');
  }
  const std::string b = p.none().done();
  const size_t fails = b.size() / 100;  // the first encode that passes the budget (0-based)
  ASSERT_LT(fails, 5u);
  EXPECT_EQ(error_of(b), "t.pkl: data.pkl byte " + std::to_string(at[fails]) +
                             ": REDUCE: expected encoded bytes totalling at most the pickle's "
                             "size, found " +
                             std::to_string(100 * (fails + 1)));
}

}  // namespace
}  // namespace sdc
