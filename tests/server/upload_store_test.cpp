// UploadStore: streamed chunks with sha256, resume after a broken request, offsets and sizes
// checked, the cap, single-request uploads removed when they break off, DELETE, leases, expiry.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "common/fixtures.h"
#include "io/sha256.h"
#include "server/transfer/upload_store.h"

namespace sdc::server::transfer {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

std::string bytes(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = char((i * 7919 + 13) & 0xff);
  return s;
}

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// Every regular file under `dir`, recursively (to see that nothing is left behind).
std::vector<std::string> files_under(const std::string& dir) {
  std::vector<std::string> out;
  for (auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) out.push_back(fs::relative(e.path(), dir).string());
  return out;
}

UploadOptions options(const std::string& dir, uint64_t max = 1 << 20) {
  UploadOptions o;
  o.dir = dir;
  o.max_bytes = max;
  return o;
}

TEST(UploadStore, ChunkedUploadWithResumeGivesTheFileAndItsSha256) {
  TempDir dir;
  UploadStore store(options(dir.path()));
  const std::string data = bytes(100000);
  UploadInfo u = store.create("../../model.safetensors", data.size());
  EXPECT_EQ(u.name, "model.safetensors");
  EXPECT_EQ(u.received, 0u);
  {
    ChunkWriter w = store.begin_chunk(u.id, 0, 40000);
    w.write(data.data(), 25000);
    // The connection breaks: the writer is dropped without finish().
  }
  EXPECT_EQ(store.get(u.id).received, 25000u);
  EXPECT_FALSE(store.get(u.id).complete);
  // A chunk that does not continue where the upload stands is refused.
  EXPECT_THROW(store.begin_chunk(u.id, 40000, 1000), UploadConflict);
  {
    ChunkWriter w = store.begin_chunk(u.id, 25000, 50000);
    // While it writes, a second request to the same upload is refused.
    EXPECT_THROW(store.begin_chunk(u.id, 25000, 10), UploadConflict);
    w.write(data.data() + 25000, 50000);
    EXPECT_FALSE(w.finish().complete);
  }
  ChunkWriter w = store.begin_chunk(u.id, 75000, 25000);
  w.write(data.data() + 75000, 25000);
  UploadInfo done = w.finish();
  EXPECT_TRUE(done.complete);
  EXPECT_EQ(done.sha256, io::sha256_hex(data));
  EXPECT_EQ(read_all(done.path), data);
  EXPECT_EQ(fs::path(done.path).filename(), "model.safetensors");
  EXPECT_EQ(files_under(dir.path()).size(), 1u);                     // no .part left
  EXPECT_THROW(store.begin_chunk(u.id, 100000, 1), UploadConflict);  // complete
}

TEST(UploadStore, SizesAreEnforced) {
  TempDir dir;
  UploadStore store(options(dir.path(), 1000));
  try {
    store.create("big.ckpt", 1001);
    FAIL() << "no error";
  } catch (const UploadTooLarge& e) {
    EXPECT_STREQ(e.what(),
                 "big.ckpt: size: expected at most 1000 bytes (--max-upload-size), found 1001 "
                 "bytes");
  }
  UploadInfo u = store.create("a.ckpt", 100);
  EXPECT_THROW(store.begin_chunk(u.id, 0, 101), UploadConflict);  // past the declared size
  {
    ChunkWriter w = store.begin_chunk(u.id, 0, std::nullopt);
    std::string d = bytes(101);
    EXPECT_THROW(w.write(d.data(), d.size()), UploadConflict);
  }
  {
    // A chunk shorter than announced is an error, and the bytes that came stay for a retry.
    ChunkWriter w = store.begin_chunk(u.id, 0, 50);
    std::string d = bytes(20);
    w.write(d.data(), d.size());
    EXPECT_THROW(w.finish(), UploadConflict);
  }
  EXPECT_EQ(store.get(u.id).received, 20u);
}

TEST(UploadStore, SingleRequestOverTheCapOrBrokenOffLeavesNothing) {
  TempDir dir;
  UploadStore store(options(dir.path(), 1000));
  UploadInfo u = store.create("x.safetensors", std::nullopt, false);
  {
    ChunkWriter w = store.begin_chunk(u.id, 0, std::nullopt);
    std::string d = bytes(600);
    w.write(d.data(), d.size());
    EXPECT_THROW(w.write(d.data(), d.size()), UploadTooLarge);
  }
  EXPECT_THROW(store.get(u.id), UploadNotFound);
  EXPECT_TRUE(dir.list().empty());

  UploadInfo v = store.create("y.safetensors", 500, false);
  {
    ChunkWriter w = store.begin_chunk(v.id, 0, 500);
    std::string d = bytes(200);
    w.write(d.data(), d.size());
  }  // broke off
  EXPECT_THROW(store.get(v.id), UploadNotFound);
  EXPECT_TRUE(dir.list().empty());

  // Unknown length, ended normally: complete with the size that came.
  UploadInfo z = store.create("z.safetensors", std::nullopt, false);
  ChunkWriter w = store.begin_chunk(z.id, 0, std::nullopt);
  std::string d = bytes(300);
  w.write(d.data(), d.size());
  UploadInfo done = w.finish();
  EXPECT_TRUE(done.complete);
  EXPECT_EQ(done.size.value_or(0), 300u);
  EXPECT_EQ(done.sha256, io::sha256_hex(d));
}

TEST(UploadStore, DeleteLeaseAndExpiry) {
  TempDir dir;
  UploadOptions o = options(dir.path());
  o.idle_ttl = std::chrono::seconds(0);
  o.done_ttl = std::chrono::seconds(0);
  UploadStore store(o);
  UploadInfo a = store.create("a.ckpt", 10);
  EXPECT_THROW(store.lease(a.id), UploadConflict);  // incomplete
  store.remove(a.id);
  EXPECT_THROW(store.get(a.id), UploadNotFound);
  EXPECT_THROW(store.remove("up-nope"), UploadNotFound);

  UploadInfo b = store.create("b.ckpt", 10);
  ChunkWriter w = store.begin_chunk(b.id, 0, 10);
  w.write(bytes(10).data(), 10);
  w.finish();
  {
    std::shared_ptr<UploadLease> lease = store.lease(b.id);
    EXPECT_TRUE(fs::exists(lease->path()));
    EXPECT_THROW(store.remove(b.id), UploadConflict);  // a job holds it
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    store.purge_expired();
    EXPECT_TRUE(fs::exists(lease->path()));  // never removed under a job
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  store.purge_expired();
  EXPECT_THROW(store.get(b.id), UploadNotFound);
  EXPECT_TRUE(dir.list().empty());
}

TEST(UploadStore, LimitsUploadsUnderWayAndClearsLeftoversAtStart) {
  TempDir dir;
  fs::create_directory(dir.file("up-0123456789abcdef0123456789abcdef"));
  std::ofstream(dir.file("up-0123456789abcdef0123456789abcdef/.x.part")) << "old";
  fs::create_directory(dir.file("keep-me"));
  UploadOptions o = options(dir.path());
  o.max_incomplete = 2;
  UploadStore store(o);
  EXPECT_EQ(dir.list(), std::vector<std::string>{"keep-me"});
  store.create("a", 1);
  store.create("b", 1);
  EXPECT_THROW(store.create("c", 1), UploadConflict);
}

}  // namespace
}  // namespace sdc::server::transfer
