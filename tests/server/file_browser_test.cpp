// FileBrowser: listing with the classifier's kinds, and every way out of the roots refused.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/fixtures.h"
#include "server/transfer/file_browser.h"

namespace sdc::server::transfer {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

class FileBrowserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(models.file("sub"));
    fs::copy_file(test::tiny("model.safetensors"), models.file("sub/tiny.safetensors"));
    fs::copy_file(test::tiny("lora-kohya.safetensors"), models.file("lora.safetensors"));
    std::ofstream(models.file("broken.ckpt")) << "not a checkpoint";
    std::ofstream(models.file("notes.txt")) << "ignored";
    std::ofstream(models.file(".hidden.safetensors")) << "ignored";
    std::ofstream(outside.file("secret.safetensors")) << "outside";
    fs::create_symlink(outside.file("secret.safetensors"), models.file("escape.safetensors"));
    fs::create_directory_symlink(outside.path(), models.file("escape-dir"));
    fs::create_symlink(models.file("sub/tiny.safetensors"), models.file("inside-link.safetensors"));
  }
  TempDir models, imports, outside;
};

TEST_F(FileBrowserTest, ListsModelFilesWithTheirKind) {
  FileBrowser b({{"models", models.path()}, {"imports", imports.path()}});
  Listing l = b.list("models", "");
  std::vector<std::string> names;
  for (const FileEntry& e : l.entries) names.push_back(e.name);
  EXPECT_EQ(names, (std::vector<std::string>{"sub", "broken.ckpt", "inside-link.safetensors",
                                             "lora.safetensors"}));
  EXPECT_TRUE(l.entries[0].is_dir);
  EXPECT_EQ(l.entries[1].kind, "unknown");
  EXPECT_FALSE(l.entries[1].error.empty());
  EXPECT_EQ(l.entries[2].kind, "checkpoint");
  EXPECT_EQ(l.entries[3].kind, "lora");
  EXPECT_EQ(l.entries[3].size, fs::file_size(models.file("lora.safetensors")));
  Listing sub = b.list("models", "sub/");
  ASSERT_EQ(sub.entries.size(), 1u);
  EXPECT_EQ(sub.entries[0].path, "sub/tiny.safetensors");
  EXPECT_EQ(sub.entries[0].kind, "checkpoint");
  EXPECT_EQ(sub.entries[0].architecture, "SD1.x");
  EXPECT_TRUE(sub.entries[0].supported);
  EXPECT_TRUE(b.list("imports", "").entries.empty());
}

TEST_F(FileBrowserTest, ListsADiffusersFolderAsOneModel) {
  fs::copy(test::tiny("diffusers"), models.file("tiny-diffusers"), fs::copy_options::recursive);
  FileBrowser b({{"models", models.path()}});
  FileEntry e = b.describe("models", "tiny-diffusers");
  EXPECT_EQ(e.kind, "diffusers");
  EXPECT_EQ(e.format, "diffusers");
  EXPECT_GT(e.size, 0u);
}

TEST_F(FileBrowserTest, RefusesEveryWayOut) {
  FileBrowser b({{"models", models.path()}});
  EXPECT_NE(error_of([&] { b.list("models", "../"); }).find("contains \"..\""), std::string::npos);
  EXPECT_NE(error_of([&] { b.list("models", "sub/../../x"); }).find("\"..\""), std::string::npos);
  EXPECT_NE(error_of([&] { b.resolve("models", "/etc/passwd"); }).find("it is absolute"),
            std::string::npos);
  EXPECT_NE(error_of([&] { b.resolve("models", "sub\\..\\x"); }).find("backslash"),
            std::string::npos);
  EXPECT_NE(error_of([&] { b.resolve("models", std::string("a\0b", 3)); }).find("NUL"),
            std::string::npos);
  const std::string link = error_of([&] { b.resolve("models", "escape.safetensors"); });
  EXPECT_NE(link.find("leads outside the models folder"), std::string::npos) << link;
  EXPECT_THROW(b.list("models", "escape-dir"), PathRefused);
  EXPECT_THROW(b.describe("models", "escape-dir/secret.safetensors"), PathRefused);
  EXPECT_NE(error_of([&] { b.list("elsewhere", ""); }).find("expected one of: models"),
            std::string::npos);
  EXPECT_NE(error_of([&] { b.resolve("models", "missing.ckpt"); }).find("expected an existing"),
            std::string::npos);
  // A link that stays inside is fine.
  EXPECT_EQ(b.describe("models", "inside-link.safetensors").kind, "checkpoint");
}

TEST(FileBrowser, RootsMustExist) {
  std::vector<FileRoot> roots{{"models", "/nonexistent/sdc-models"}};
  EXPECT_THROW(FileBrowser{roots}, Error);
}

}  // namespace
}  // namespace sdc::server::transfer
