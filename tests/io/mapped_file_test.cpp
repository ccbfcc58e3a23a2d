// MappedFile: a file of 2 MiB or more maps at a 2 MiB-aligned address (so the kernel can serve it
// with 2 MiB page-table entries) and reads back exactly; a small and an empty file map too.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "common/fixtures.h"
#include "io/mapped_file.h"

namespace sdc::io {
namespace {

void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

TEST(MappedFile, LargeFileMapsOnA2MiBBoundaryAndReadsBackExactly) {
  test::TempDir dir;
  // Not a multiple of the page size: the mapping's tail page is partial.
  for (size_t size : {(size_t(2) << 20), (size_t(5) << 20) + 123, size_t(100), size_t(0)}) {
    std::vector<uint8_t> bytes(size);
    for (size_t i = 0; i < size; ++i) bytes[i] = uint8_t(i * 7 + (i >> 12));
    const std::string path = dir.file("f" + std::to_string(size));
    write_file(path, bytes);
    auto f = MappedFile::open(path);
    ASSERT_EQ(f->size(), size);
    if (size == 0) {
      EXPECT_EQ(f->data(), nullptr);
      continue;
    }
    if (size >= (size_t(2) << 20)) {
      EXPECT_EQ(reinterpret_cast<uintptr_t>(f->data()) % (uintptr_t(2) << 20), 0u) << size;
    }
    EXPECT_EQ(std::memcmp(f->data(), bytes.data(), size), 0) << size;
  }
}

// Many mappings opened and dropped: each gives its whole reservation back (no address-space
// leak from the over-mapping used for alignment).
TEST(MappedFile, MappingsGiveTheirAddressRangeBack) {
  test::TempDir dir;
  const std::string path = dir.file("f");
  write_file(path, std::vector<uint8_t>((size_t(3) << 20) + 5, 1));
  auto count_maps = [] {
    std::ifstream in("/proc/self/maps");
    std::string line;
    size_t n = 0;
    while (std::getline(in, line)) ++n;
    return n;
  };
  { auto warm = MappedFile::open(path); }
  const size_t before = count_maps();
  for (int i = 0; i < 50; ++i) {
    auto f = MappedFile::open(path);
    ASSERT_EQ(f->data()[0], 1);
  }
  EXPECT_EQ(count_maps(), before);
}

}  // namespace
}  // namespace sdc::io
