// AtomicFile and StagedFile on POSIX: mkstemp + write + fsync + rename.
#include "io/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <vector>

#include "common/error.h"

namespace sdc::io {

namespace {

// Creates ".<name>.<stage>-XXXXXX" beside `target` (mode 0644); returns its descriptor and sets
// `path`.
int make_sibling(const std::string& target, const std::string& stage, std::string& path) {
  std::filesystem::path t(target);
  std::filesystem::path dir = t.parent_path().empty() ? "." : t.parent_path();
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    throw Error(target, "output folder", "an existing directory", dir.string() + " does not exist");
  std::string tmpl = (dir / ("." + t.filename().string() + "." + stage + "-XXXXXX")).string();
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  const int fd = mkstemp(buf.data());
  if (fd < 0) throw Error(target, "output folder", "a writable directory", std::strerror(errno));
  path = buf.data();
  fchmod(fd, 0644);
  return fd;
}

// Renames `from` over `target` and fsyncs the folder, so that the new name survives a crash.
void rename_durably(const std::string& from, const std::string& target) {
  if (::rename(from.c_str(), target.c_str()) != 0)
    throw Error(target, "rename", "success", std::strerror(errno));
  std::filesystem::path dir = std::filesystem::path(target).parent_path();
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace

AtomicFile::AtomicFile(std::string target, AfterCommit after)
    : target_(std::move(target)), after_(after) {
  fd_ = make_sibling(target_, "tmp", temp_);
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_ && !temp_.empty()) ::unlink(temp_.c_str());
}

namespace {
constexpr size_t kChunk = size_t(8) << 20;  // a multiple of the 2 MiB huge page
}  // namespace

void AtomicFile::write(const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  offset_ += n;
  // The file ends at a chunk boundary between calls: complete the pending chunk first, then
  // pass whole chunks straight through, and keep the rest for the next call.
  if (!pending_.empty() || n < kChunk) {
    const size_t take = std::min(n, kChunk - pending_.size());
    pending_.insert(pending_.end(), p, p + take);
    p += take;
    n -= take;
    if (pending_.size() < kChunk) return;
    write_through(pending_.data(), pending_.size());
    pending_.clear();
  }
  const size_t whole = n / kChunk * kChunk;
  write_through(p, whole);
  pending_.assign(p + whole, p + n);
}

void AtomicFile::write_through(const uint8_t* p, size_t n) {
  while (n > 0) {
    // A file-size limit would otherwise kill the process with SIGXFSZ before we can clean up.
    static const bool ignore_xfsz = [] { return std::signal(SIGXFSZ, SIG_IGN) != SIG_ERR; }();
    (void)ignore_xfsz;
    ssize_t w = ::write(fd_, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw Error(target_, "write", "all bytes written", std::strerror(errno));
    }
    if (w == 0) throw Error(target_, "write", "all bytes written", "no progress");
    p += w;
    n -= size_t(w);
  }
}

void AtomicFile::write_zeros(size_t n) {
  static const uint8_t zeros[4096] = {};
  while (n > 0) {
    size_t k = n < sizeof(zeros) ? n : sizeof(zeros);
    write(zeros, k);
    n -= k;
  }
}

void AtomicFile::commit() {
  write_through(pending_.data(), pending_.size());
  pending_.clear();
  if (::fsync(fd_) != 0) throw Error(target_, "fsync", "success", std::strerror(errno));
  // Advice only: the bytes are on disk either way.
  if (after_ == AfterCommit::DropCached) posix_fadvise(fd_, 0, 0, POSIX_FADV_DONTNEED);
  if (::close(fd_) != 0) {
    fd_ = -1;
    throw Error(target_, "close", "success", std::strerror(errno));
  }
  fd_ = -1;
  rename_durably(temp_, target_);
  committed_ = true;
}

StagedFile::StagedFile(std::string target, const std::string& stage) : target_(std::move(target)) {
  ::close(make_sibling(target_, stage, path_));
}

StagedFile::~StagedFile() {
  if (!published_) ::unlink(path_.c_str());
}

void StagedFile::publish() {
  rename_durably(path_, target_);
  published_ = true;
}

}  // namespace sdc::io
