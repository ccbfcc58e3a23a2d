// PyTorch zip checkpoint reader: find <folder>/data.pkl, unpickle it with the restricted
// unpickler, then turn each _rebuild_tensor_v2 description into a TensorRef on its storage.
#include "io/ckpt.h"

#include <cstring>
#include <map>

#include "common/error.h"
#include "io/mapped_file.h"
#include "io/pickle.h"
#include "io/zip_archive.h"

namespace sdc::io {

namespace {

// data.pkl of a full SD training checkpoint is a few MB; this only bounds a hostile entry.
constexpr uint64_t kMaxPickle = uint64_t(256) << 20;
// A view that repeats storage elements (a stride of 0) is materialised; real state dicts hardly
// have one, so its copy is capped rather than sized by the pickle alone.
constexpr uint64_t kMaxExpandedBytes = uint64_t(64) << 20;
// Where empty tensors point: a valid address, so that memcpy(dst, data, 0) stays defined.
alignas(16) const uint8_t kEmpty[16] = {};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string what_is(const pickle::Value& v) {
  if (v.kind == pickle::Kind::Object || v.kind == pickle::Kind::Global)
    return std::string(pickle::kind_name(v.kind)) + " " + v.text;
  return pickle::kind_name(v.kind);
}

struct Storage {
  DType dtype;
  uint64_t numel;
  const uint8_t* data;
  std::shared_ptr<const void> owner;
};

class CkptReader {
 public:
  CkptReader(const uint8_t* data, size_t size, const std::string& path,
             std::shared_ptr<const void> owner)
      : path_(path), zip_(data, size, path, std::move(owner)) {}

  TensorFile read(uint64_t file_size);

 private:
  const ZipEntry& find_pickle();
  const Storage& storage(const pickle::StorageRef& ref);
  TensorRef tensor(const std::string& name, const pickle::TensorDesc& desc);

  const std::string& path_;
  ZipArchive zip_;
  std::string prefix_;  // "archive/" — the folder holding data.pkl
  std::string pickle_name_;
  std::map<std::string, Storage> storages_;
};

const ZipEntry& CkptReader::find_pickle() {
  std::vector<const ZipEntry*> found;
  for (const ZipEntry& e : zip_.entries())
    if (ends_with(e.name, "/data.pkl")) found.push_back(&e);
  if (found.size() != 1) {
    std::string names;
    if (found.empty()) {
      const auto& all = zip_.entries();
      for (size_t i = 0; i < all.size() && i < 5; ++i) names += (i ? ", " : "") + all[i].name;
      if (all.size() > 5) names += ", ...";
    }
    for (size_t i = 0; i < found.size(); ++i) names += (i ? ", " : "") + found[i]->name;
    throw Error(path_, "data.pkl", "exactly one entry <folder>/data.pkl (a PyTorch checkpoint)",
                found.empty() ? "none among " + std::to_string(zip_.entries().size()) + " entries" +
                                    (names.empty() ? "" : " (" + names + ")")
                              : std::to_string(found.size()) + " (" + names + ")");
  }
  return *found[0];
}

const Storage& CkptReader::storage(const pickle::StorageRef& ref) {
  auto it = storages_.find(ref.key);
  if (it != storages_.end()) {
    // torch loads each key once; every use must agree on what it is.
    if (it->second.dtype != ref.dtype || it->second.numel != ref.numel)
      throw Error(path_, "storage '" + ref.key + "'",
                  "the same dtype and size in every use (" +
                      std::string(dtype_name(it->second.dtype)) + " x " +
                      std::to_string(it->second.numel) + ")",
                  std::string(dtype_name(ref.dtype)) + " x " + std::to_string(ref.numel));
    return it->second;
  }
  const std::string name = prefix_ + "data/" + ref.key;
  const ZipEntry* e = zip_.find(name);
  if (!e) throw Error(path_, name, "the storage entry of a tensor", "none in the archive");
  const uint64_t bytes = ref.numel * dtype_size(ref.dtype);  // < 2^62, checked by the unpickler
  if (e->size != bytes)
    throw Error(path_, name,
                std::to_string(bytes) + " bytes (" + std::to_string(ref.numel) + " x " +
                    std::string(dtype_name(ref.dtype)) + ")",
                std::to_string(e->size) + " bytes");
  ZipBytes b = zip_.read(*e);
  Storage s{ref.dtype, ref.numel, b.data, b.owner};
  if (reinterpret_cast<uintptr_t>(s.data) % dtype_size(s.dtype) != 0) {
    // torch aligns stored entries to 64 bytes; another writer may not. Element access must stay
    // aligned, so such a storage is copied once.
    auto copy = std::make_shared<std::vector<uint8_t>>(b.data, b.data + b.size);
    s.data = copy->data();
    s.owner = std::shared_ptr<const void>(copy, copy->data());
  }
  return storages_.emplace(ref.key, std::move(s)).first->second;
}

TensorRef CkptReader::tensor(const std::string& name, const pickle::TensorDesc& d) {
  const Storage& s = storage(*d.storage->storage);
  const size_t es = dtype_size(s.dtype);
  TensorRef t;
  t.dtype = s.dtype;
  t.shape = d.shape;
  t.source = path_;
  const uint64_t numel = uint64_t(shape_numel(d.shape));  // < 2^62, checked by the unpickler
  if (numel == 0) {
    t.data = kEmpty;
    return t;
  }
  // The unpickler has checked offset + sum((size-1)*stride) < storage numel.
  bool contiguous = true;
  uint64_t expect = 1;
  for (size_t i = d.shape.size(); i-- > 0;) {
    if (d.shape[i] != 1 && uint64_t(d.stride[i]) != expect) contiguous = false;
    expect *= uint64_t(d.shape[i]);
  }
  if (contiguous) {
    t.data = s.data + d.offset * es;
    t.nbytes = size_t(numel * es);
    t.owner = s.owner;
    return t;
  }
  uint64_t out_bytes = 0;
  if (__builtin_mul_overflow(numel, uint64_t(es), &out_bytes) ||
      (numel > s.numel && out_bytes > kMaxExpandedBytes))
    throw Error(path_, name,
                "a view of at most " + std::to_string(kMaxExpandedBytes >> 20) +
                    " MiB when it repeats storage elements",
                "size " + shape_str(d.shape) + " stride " + shape_str(d.stride) + " over " +
                    std::to_string(s.numel) + " elements");
  // Materialise row by row with an odometer over the outer dimensions (no recursion).
  auto buf = std::make_shared<std::vector<uint8_t>>(size_t(out_bytes));
  const size_t rank = d.shape.size();
  const uint64_t row = uint64_t(d.shape[rank - 1]), row_stride = uint64_t(d.stride[rank - 1]);
  std::vector<uint64_t> idx(rank, 0);
  uint8_t* out = buf->data();
  uint64_t src = d.offset;  // element index of the current row's start
  for (uint64_t done = 0; done < numel; done += row) {
    if (row_stride == 1) {
      std::memcpy(out, s.data + src * es, size_t(row * es));
      out += row * es;
    } else {
      for (uint64_t k = 0; k < row; ++k, out += es)
        std::memcpy(out, s.data + (src + k * row_stride) * es, es);
    }
    for (size_t dim = rank - 1; dim-- > 0;) {
      if (++idx[dim] < uint64_t(d.shape[dim])) {
        src += uint64_t(d.stride[dim]);
        break;
      }
      src -= (uint64_t(d.shape[dim]) - 1) * uint64_t(d.stride[dim]);
      idx[dim] = 0;
    }
  }
  t.data = buf->data();
  t.nbytes = buf->size();
  t.owner = std::shared_ptr<const void>(buf, buf->data());
  return t;
}

TensorFile CkptReader::read(uint64_t file_size) {
  const ZipEntry& pkl = find_pickle();
  pickle_name_ = pkl.name;
  prefix_ = pkl.name.substr(0, pkl.name.size() - std::strlen("data.pkl"));
  if (const ZipEntry* bo = zip_.find(prefix_ + "byteorder")) {
    // torch >= 2.1 records the byte order of the storages; only little-endian data is read.
    const ZipBytes b = bo->size <= 16 ? zip_.read(*bo) : ZipBytes{};
    const std::string order(reinterpret_cast<const char*>(b.data), b.data ? b.size : 0);
    if (order != "little")
      throw Error(path_, bo->name, "little", bo->size <= 16 ? "'" + order + "'" : "a long entry");
  }
  if (pkl.size > kMaxPickle)
    throw Error(path_, pkl.name, "a pickle of at most " + std::to_string(kMaxPickle >> 20) + " MiB",
                std::to_string(pkl.size) + " bytes");
  const ZipBytes bytes = zip_.read(pkl);
  const pickle::Unpickled u = pickle::unpickle(bytes.data, bytes.size, path_, pkl.name);
  const pickle::Value& root = u.root();
  if (root.kind != pickle::Kind::Dict)
    throw Error(path_, pkl.name, "a dict (a state dict or {'state_dict': ...})", what_is(root));

  TensorFile tf;
  tf.path = path_;
  tf.format = FileFormat::Ckpt;
  tf.file_size = file_size;
  tf.metadata = nlohmann::json::object();
  tf.tensors.description = path_;
  const pickle::Value* dict = &root;
  std::string name_prefix;
  const pickle::Value* sd = root.find("state_dict");
  if (!sd) {
    // An A1111 textual-inversion embedding keeps its vectors one level down.
    sd = root.find("string_to_param");
    if (sd) name_prefix = "string_to_param.";
  }
  if (sd) {
    if (sd->kind != pickle::Kind::Dict)
      throw Error(path_, name_prefix.empty() ? "state_dict" : "string_to_param", "a dict",
                  what_is(*sd));
    dict = sd;
    // The training bookkeeping beside it (global_step, epoch, ...) is kept when it is a scalar.
    for (size_t i = 0; i < root.dict_size(); ++i) {
      const pickle::Value& k = root.dict_key(i);
      const pickle::Value& v = root.dict_value(i);
      if (k.kind != pickle::Kind::Str || k.text == "state_dict" || k.text == "string_to_param")
        continue;
      switch (v.kind) {
        case pickle::Kind::Int:
          tf.metadata[k.text] = v.integer;
          break;
        case pickle::Kind::Float:
          tf.metadata[k.text] = v.real;
          break;
        case pickle::Kind::Bool:
          tf.metadata[k.text] = v.boolean;
          break;
        case pickle::Kind::Str:
          tf.metadata[k.text] = v.text;
          break;
        case pickle::Kind::None:
          tf.metadata[k.text] = nullptr;
          break;
        default:
          break;
      }
    }
  }
  for (size_t i = 0; i < dict->dict_size(); ++i) {
    const pickle::Value& k = dict->dict_key(i);
    const pickle::Value& v = dict->dict_value(i);
    if (k.kind != pickle::Kind::Str)
      throw Error(path_, pkl.name, "tensor names as strings", what_is(k));
    const std::string name = name_prefix + k.text;
    if (v.kind != pickle::Kind::Tensor) throw Error(path_, name, "a tensor", what_is(v));
    tf.tensors.set(name, tensor(name, *v.tensor));
  }
  return tf;
}

bool is_zip(const uint8_t* d, size_t n) {
  return n >= 4 && d[0] == 'P' && d[1] == 'K' &&
         ((d[2] == 3 && d[3] == 4) || (d[2] == 5 && d[3] == 6));
}

}  // namespace

TensorFile parse_ckpt(const uint8_t* data, size_t size, const std::string& path,
                      std::shared_ptr<const void> owner) {
  if (size == 0) throw Error(path, "", "a PyTorch zip checkpoint", "an empty file");
  if (!is_zip(data, size)) {
    // Before 1.6, torch.save wrote a bare pickle stream (it starts with PROTO, 0x80) or a tar.
    if (data[0] == 0x80 || (size > 262 && std::memcmp(data + 257, "ustar", 5) == 0))
      throw Error(path,
                  "legacy PyTorch format not supported; re-save with torch>=1.6 or convert to "
                  "safetensors",
                  "", "");
    throw Error(path, "", "a PyTorch zip checkpoint (starting with PK)", "other data");
  }
  CkptReader reader(data, size, path, std::move(owner));
  return reader.read(size);
}

TensorFile read_ckpt(const std::string& path) {
  auto file = MappedFile::open(path);
  TensorFile tf = parse_ckpt(file->data(), file->size(), path, file);
  file->mark_file_backed(tf.tensors);  // stored entries; deflated ones are copies
  return tf;
}

}  // namespace sdc::io
