// Format dispatch by content.
#include "io/open_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/error.h"
#include "io/ckpt.h"
#include "io/diffusers_folder.h"
#include "io/gguf.h"
#include "io/safetensors.h"

namespace sdc::io {

FileFormat detect_format(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw Error(path, "", "an existing model file or diffusers folder", std::strerror(errno));
  if (S_ISDIR(st.st_mode)) return FileFormat::Diffusers;
  if (!S_ISREG(st.st_mode))
    throw Error(path, "", "a regular file or a directory", "something else");
  if (st.st_size == 0) throw Error(path, "", "a model file", "an empty file");
  unsigned char head[9] = {};
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path, "", "a readable file", std::strerror(errno));
  const ssize_t n = ::read(fd, head, sizeof head);
  ::close(fd);
  if (n < 0) throw Error(path, "", "a readable file", std::strerror(errno));
  if (n >= 4 && std::memcmp(head, "GGUF", 4) == 0) return FileFormat::Gguf;
  if (n >= 4 && std::memcmp(head, "PK\x03\x04", 4) == 0) return FileFormat::Ckpt;
  // Safetensors: an 8-byte length, then the JSON header, which starts with '{'. Checked before
  // the pickle test: a header length such as 0x0280 also starts with the bytes 0x80 0x02.
  if (n >= 9 && head[8] == '{') return FileFormat::Safetensors;
  // A pickle stream (protocol >= 2 starts with PROTO 0x80): PyTorch's legacy, pre-zip format.
  if (n >= 2 && head[0] == 0x80 && head[1] >= 2 && head[1] <= 5) return FileFormat::Ckpt;
  // Anything else is not a model file sdc knows (a PNG, a text file…): say so rather than report
  // a bad header.
  if (n >= 9 && head[8] != ' ')
    throw Error(path, "", "a safetensors, GGUF or PyTorch checkpoint file, or a diffusers folder",
                "unrecognised content");
  return FileFormat::Safetensors;
}

TensorFile open_tensor_file(const std::string& path) {
  switch (detect_format(path)) {
    case FileFormat::Diffusers:
      return read_diffusers_folder(path);
    case FileFormat::Gguf:
      return read_gguf(path).file;
    case FileFormat::Ckpt:
      return read_ckpt(path);
    case FileFormat::Safetensors:
      return read_safetensors(path);
  }
  throw Error(path, "", "a known model file format", "something else");
}

}  // namespace sdc::io
