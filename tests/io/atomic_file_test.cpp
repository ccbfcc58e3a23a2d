// AtomicFile's chunked writing and its cache advice: whatever the pattern of write() calls, the
// committed file holds exactly the bytes written; nothing reaches the target before commit();
// DropCached leaves the committed file out of the page cache (so the next mapping reads it back
// in large folios), KeepCached leaves it cached. StagedFile: a multi-pass output replaces its
// target only when published.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/magic.h>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/fixtures.h"
#include "io/atomic_file.h"

namespace sdc::io {
namespace {

std::vector<uint8_t> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<uint8_t> pattern(size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = uint8_t((i * 2654435761u) >> 13);
  return v;
}

// Piece sizes around the 8 MiB chunk: small pieces that straddle a chunk boundary, a piece of
// several whole chunks arriving mid-chunk and at a boundary, zero-length writes and padding.
TEST(AtomicFile, AnyPatternOfWritesCommitsExactlyTheBytes) {
  test::TempDir dir;
  const size_t mib = size_t(1) << 20;
  const std::vector<std::vector<size_t>> patterns = {
      {0, 13, 4096, 0, 1},           {8 * mib},
      {8 * mib - 1, 2, 8 * mib - 1}, {3 * mib, 20 * mib + 5, 7},
      {100, 24 * mib, 8 * mib, 1},
  };
  for (size_t k = 0; k < patterns.size(); ++k) {
    size_t total = 0;
    for (size_t n : patterns[k]) total += n + 3;  // +3: zero padding after each piece
    const std::vector<uint8_t> bytes = pattern(total);
    std::vector<uint8_t> expected;
    const std::string path = dir.file("f" + std::to_string(k));
    {
      AtomicFile f(
          path, k % 2 ? AtomicFile::AfterCommit::DropCached : AtomicFile::AfterCommit::KeepCached);
      size_t at = 0;
      for (size_t n : patterns[k]) {
        f.write(bytes.data() + at, n);
        expected.insert(expected.end(), bytes.begin() + long(at), bytes.begin() + long(at + n));
        f.write_zeros(3);
        expected.insert(expected.end(), 3, 0);
        at += n;
        EXPECT_EQ(f.offset(), expected.size());
      }
      EXPECT_FALSE(std::filesystem::exists(path)) << "visible before commit";
      f.commit();
    }
    EXPECT_EQ(read_all(path), expected) << "pattern " << k;
  }
  EXPECT_EQ(dir.list().size(), patterns.size()) << "temporary files left behind";
}

// A writer destroyed before commit(), with bytes still pending, leaves nothing behind.
TEST(AtomicFile, AbandonedWriterLeavesNothing) {
  test::TempDir dir;
  {
    AtomicFile f(dir.file("x"));
    const std::vector<uint8_t> bytes = pattern(size_t(9) << 20);
    f.write(bytes.data(), bytes.size());
  }
  EXPECT_TRUE(dir.list().empty());
}

// StagedFile: passes rewrite the staged file atomically; the target changes only at publish().
TEST(StagedFile, UnpublishedLeavesTheTargetAsItWasAndNothingElse) {
  test::TempDir dir;
  const std::string target = dir.file("model.gguf");
  std::ofstream(target) << "earlier";
  {
    StagedFile staged(target, "unpacked");
    EXPECT_EQ(std::filesystem::path(staged.path()).parent_path(),
              std::filesystem::path(dir.path()));
    EXPECT_EQ(
        std::filesystem::path(staged.path()).filename().string().rfind(".model.gguf.unpacked-", 0),
        0u);
    AtomicFile pass(staged.path());
    const std::vector<uint8_t> bytes = pattern(1000);
    pass.write(bytes.data(), bytes.size());
    pass.commit();
  }
  EXPECT_EQ(dir.list(), std::vector<std::string>{"model.gguf"});
  const std::vector<uint8_t> kept = read_all(target);
  EXPECT_EQ(std::string(kept.begin(), kept.end()), "earlier");
}

TEST(StagedFile, PublishReplacesTheTargetWithTheLastPass) {
  test::TempDir dir;
  const std::string target = dir.file("model.gguf");
  std::ofstream(target) << "earlier";
  const std::vector<uint8_t> first = pattern(100), second = pattern(3000);
  {
    StagedFile staged(target, "unpacked");
    for (const auto* bytes : {&first, &second}) {
      AtomicFile pass(staged.path());
      pass.write(bytes->data(), bytes->size());
      pass.commit();
    }
    EXPECT_EQ(read_all(target).size(), 7u);  // not yet
    staged.publish();
  }
  EXPECT_EQ(dir.list(), std::vector<std::string>{"model.gguf"});
  EXPECT_EQ(read_all(target), second);
}

TEST(StagedFile, AFolderThatDoesNotExistIsRefused) {
  test::TempDir dir;
  try {
    StagedFile staged(dir.file("missing/model.gguf"), "unpacked");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(dir.list().empty());
}

// Pages of `path` in the page cache, counted through a fresh mapping (mincore).
size_t cached_pages(const std::string& path, size_t bytes) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  void* p = mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fileno(f), 0);
  std::fclose(f);
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> vec((bytes + page - 1) / page);
  EXPECT_EQ(mincore(p, bytes, vec.data()), 0);
  munmap(p, bytes);
  size_t n = 0;
  for (unsigned char c : vec) n += c & 1;
  return n;
}

TEST(AtomicFile, DropCachedLeavesTheCommittedFileOutOfThePageCache) {
  test::TempDir dir;
  struct statfs fs {};
  ASSERT_EQ(statfs(dir.path().c_str(), &fs), 0);
  if (fs.f_type == TMPFS_MAGIC || fs.f_type == RAMFS_MAGIC)
    GTEST_SKIP() << "the temporary folder lives in memory: there is no cache to drop";
  const size_t bytes = size_t(16) << 20;
  const std::vector<uint8_t> data = pattern(bytes);
  for (auto after : {AtomicFile::AfterCommit::KeepCached, AtomicFile::AfterCommit::DropCached}) {
    const bool drop = after == AtomicFile::AfterCommit::DropCached;
    const std::string path = dir.file(drop ? "dropped" : "kept");
    AtomicFile f(path, after);
    f.write(data.data(), bytes);
    f.commit();
    const size_t pages = bytes / size_t(sysconf(_SC_PAGESIZE));
    const size_t cached = cached_pages(path, bytes);
    if (drop)
      EXPECT_LT(cached, pages / 8) << cached << " of " << pages << " pages still cached";
    else
      EXPECT_GT(cached, pages / 2) << cached << " of " << pages << " pages cached";
    EXPECT_EQ(read_all(path), data);
  }
}

// Bytes still pending when the disk fills (here: a file-size limit) fail in commit(): the error
// names the write, and neither the target nor the temporary file remains.
TEST(AtomicFile, AWriteThatFailsInCommitLeavesNothing) {
  test::TempDir dir;
  const std::string path = dir.file("x");
  const pid_t pid = fork();
  if (pid == 0) {
    const rlimit limit{4096, 4096};
    setrlimit(RLIMIT_FSIZE, &limit);
    int code = 1;
    try {
      AtomicFile f(path);
      const std::vector<uint8_t> bytes = pattern(10000);
      f.write(bytes.data(), bytes.size());  // pending: below one chunk
      code = 2;
      f.commit();
      code = 3;
    } catch (const Error& e) {
      if (code == 2 &&
          std::string(e.what()).find("write: expected all bytes written, found File too large") !=
              std::string::npos)
        code = 0;
    }
    _exit(code);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: write failed early, 3: commit succeeded, 2: other error";
  EXPECT_TRUE(dir.list().empty());
}

}  // namespace
}  // namespace sdc::io
