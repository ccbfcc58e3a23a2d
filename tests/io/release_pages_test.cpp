// Releasing the resident pages of memory-mapped tensors: only tensors that point into a file
// mapping are marked file-backed, releasing them returns their memory, and the bytes read
// afterwards are the same; a FilePageReleaseBatch holds releases back until its end and then
// gives back every collected range.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <numeric>
#include <string>

#include "common/fixtures.h"
#include "io/ckpt.h"
#include "io/gguf.h"
#include "io/safetensors.h"

namespace sdc {
namespace {

// RssFile of this process (file-backed resident pages), bytes; -1 if unreadable.
int64_t rss_file_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    long long kib = 0;
    if (std::sscanf(line.c_str(), "RssFile: %lld", &kib) == 1) return int64_t(kib) * 1024;
  }
  return -1;
}

double checksum(const TensorRef& t) {
  const auto* p = static_cast<const float*>(t.data);
  return std::accumulate(p, p + t.numel(), 0.0);
}

TEST(ReleasePages, MappedTensorGivesItsPagesBackAndReadsTheSameAgain) {
  test::TempDir dir;
  const int64_t n = int64_t(8) << 20;  // 32 MiB of f32
  std::vector<float> values(static_cast<size_t>(n));
  for (size_t i = 0; i < values.size(); ++i) values[i] = float(i % 1000) * 0.5f;
  WeightMap w;
  w.set("big", TensorRef::from_f32(values, {n}, DType::F32));
  w.set("small", TensorRef::from_f32({1.0f, 2.0f}, {2}, DType::F32));
  const std::string path = dir.file("big.safetensors");
  io::write_safetensors(path, w, {});

  const io::TensorFile f = io::read_safetensors(path);
  const TensorRef& big = f.tensors.get("big");
  ASSERT_TRUE(big.file_backed);
  ASSERT_TRUE(f.tensors.get("small").file_backed);
  const double before = checksum(big);  // faults every page in
  const int64_t resident = rss_file_bytes();
  ASSERT_GT(resident, 0) << "no RssFile in /proc/self/status";
  big.release_pages();
  const int64_t released = resident - rss_file_bytes();
  EXPECT_GT(released, int64_t(n) * 4 * 3 / 4)
      << "RssFile " << resident << " -> " << resident - released;
  EXPECT_EQ(checksum(big), before);  // read again from the file: the same bytes
  EXPECT_EQ(static_cast<const float*>(f.tensors.get("small").data)[1], 2.0f);
}

TEST(ReleasePages, ABatchReleasesWhatItCollectedWhenTheOutermostOneEnds) {
  test::TempDir dir;
  const int64_t n = int64_t(4) << 20;  // four tensors of 16 MiB of f32, adjacent in the file
  WeightMap w;
  for (int k = 0; k < 4; ++k)
    w.set("t" + std::to_string(k),
          TensorRef::from_f32(std::vector<float>(size_t(n), float(k + 1)), {n}, DType::F32));
  const std::string path = dir.file("four.safetensors");
  io::write_safetensors(path, w, {});
  const io::TensorFile f = io::read_safetensors(path);
  std::vector<double> sums;
  for (int k = 0; k < 4; ++k) sums.push_back(checksum(f.tensors.get("t" + std::to_string(k))));
  const int64_t resident = rss_file_bytes();
  ASSERT_GT(resident, 0) << "no RssFile in /proc/self/status";
  const int64_t slack = n;  // a quarter of one tensor: other file pages this process maps
  {
    const FilePageReleaseBatch outer;
    {
      const FilePageReleaseBatch inner;  // nested: collects into the outer one
      f.tensors.get("t2").release_pages();
      f.tensors.get("t0").release_pages();
    }
    f.tensors.get("t1").release_pages();
    EXPECT_GT(rss_file_bytes(), resident - slack) << "nothing released inside the batch";
  }
  const int64_t released = resident - rss_file_bytes();
  EXPECT_GT(released, 3 * n * 4 - slack) << "t0, t1 and t2 released at the end";
  EXPECT_LT(released, 4 * n * 4 - slack) << "t3 was not";
  for (int k = 0; k < 4; ++k)
    EXPECT_EQ(checksum(f.tensors.get("t" + std::to_string(k))), sums[size_t(k)]);
  // Without a batch, at once again.
  const int64_t before = rss_file_bytes();
  f.tensors.get("t3").release_pages();
  EXPECT_GT(before - rss_file_bytes(), n * 4 - slack);
}

TEST(ReleasePages, TensorsOfBytesInMemoryAreNotFileBacked) {
  // Parsed from a heap buffer (what a fuzzer or an in-memory reader does): releasing must be a
  // no-op, never MADV_DONTNEED on anonymous memory (that would zero it).
  test::TempDir dir;
  WeightMap w;
  w.set("x", TensorRef::from_f32(std::vector<float>(4096, 3.0f), {4096}, DType::F32));
  const std::string path = dir.file("x.safetensors");
  io::write_safetensors(path, w, {});
  std::ifstream in(path, std::ios::binary);
  auto bytes = std::make_shared<std::vector<uint8_t>>(std::istreambuf_iterator<char>(in),
                                                      std::istreambuf_iterator<char>());
  const io::TensorFile f = io::parse_safetensors(bytes->data(), bytes->size(), path, bytes);
  const TensorRef& x = f.tensors.get("x");
  EXPECT_FALSE(x.file_backed);
  x.release_pages();
  EXPECT_EQ(static_cast<const float*>(x.data)[4095], 3.0f);
  // A copy made by TensorRef::from_f32 is not file-backed either.
  EXPECT_FALSE(w.get("x").file_backed);
}

TEST(ReleasePages, GgufAndCkptTensorsInTheMappingAreFileBacked) {
  test::TempDir dir;
  const std::string path = dir.file("m.gguf");
  io::write_gguf(path, io::read_safetensors(test::tiny("model.safetensors")).tensors, {});
  const io::GgufFile g = io::read_gguf(path);
  ASSERT_GT(g.file.tensors.size(), 0u);
  for (const auto& [name, t] : g.file.tensors.all()) EXPECT_TRUE(t.file_backed) << name;
  const io::TensorFile c = io::read_ckpt(test::tiny("model.ckpt"));
  size_t backed = 0;
  for (const auto& [name, t] : c.tensors.all()) backed += t.file_backed;
  EXPECT_GT(backed, 0u);  // stored zip entries point into the mapping
}

}  // namespace
}  // namespace sdc
