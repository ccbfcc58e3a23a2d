// SHA-256 of bytes and of whole files (OpenSSL's EVP digest, which uses the CPU's SHA
// extensions where present), for the source and LoRA hashes a compiled model records.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace sdc::io {

// Incremental hashing: update() any number of times, then hex_digest() once.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t n);
  std::string hex_digest();  // 64 lower-case hex digits; the object is spent afterwards

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
  bool done_ = false;
};

std::string sha256_hex(std::string_view bytes);

// Reads `path` in blocks (never maps or loads it whole); sdc::Error for a missing or unreadable
// file.
std::string sha256_file(const std::string& path);

}  // namespace sdc::io
