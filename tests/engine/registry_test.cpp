// ModelRegistry, HashCache and SettingsStore: folder scanning, A1111 names and aliases, names
// that try to leave the folders, hashes computed once and remembered, settings that persist.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/fixtures.h"
#include "engine/engine_errors.h"
#include "engine/hash_cache.h"
#include "engine/model_registry.h"
#include "engine/settings_store.h"
#include "io/sha256.h"

namespace sdc {
namespace {
namespace fs = std::filesystem;

engine::RegistryOptions in(const std::string& models_dir) {
  engine::RegistryOptions o;
  o.models_dir = models_dir;
  return o;
}

void touch(const fs::path& p, const std::string& text = "x") {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

TEST(ModelRegistry, ScansFoldersWithA1111Names) {
  test::TempDir dir;
  const fs::path root = dir.file("models");
  fs::create_directories(root / "sub");
  fs::create_symlink(test::tiny("model.safetensors"), root / "sub" / "tiny.safetensors");
  touch(root / "b.ckpt");
  touch(root / "c.gguf");
  touch(root / "notes.txt");
  touch(root / ".hidden.safetensors");
  fs::create_directories(root / "pipe");
  touch(root / "pipe" / "model_index.json", "{}");
  touch(root / "pipe" / "unet" / "diffusion_pytorch_model.safetensors");
  touch(root / "lora" / "style" / "ink.safetensors");
  touch(root / "lora" / "readme.md");
  touch(root / "controlnet" / "canny.pth");

  engine::ModelRegistry reg(in(root.string()));
  const auto models = reg.models();
  std::vector<std::string> names;
  for (const auto& m : models) names.push_back(m.name);
  EXPECT_EQ(names, (std::vector<std::string>{"b.ckpt", "c.gguf", "pipe", "sub/tiny.safetensors"}));
  const auto tiny = reg.find_model("sub/tiny.safetensors");
  EXPECT_EQ(tiny.model_name, "sub_tiny");
  EXPECT_EQ(tiny.stem, "tiny");
  EXPECT_EQ(tiny.kind, engine::ModelKind::Safetensors);
  EXPECT_EQ(tiny.title(), "sub/tiny.safetensors");  // not hashed yet
  EXPECT_EQ(reg.find_model("pipe").kind, engine::ModelKind::Diffusers);
  ASSERT_EQ(reg.loras().size(), 1u);
  EXPECT_EQ(reg.loras()[0].name, "style/ink");
  EXPECT_EQ(reg.find_lora("ink").name, "style/ink");  // by file name too
  ASSERT_EQ(reg.controlnets().size(), 1u);
  EXPECT_EQ(reg.controlnets()[0].name, "canny");

  // Hashing gives the A1111 title and makes the hash an alias.
  const std::string sha = reg.hash_model("tiny");
  EXPECT_EQ(sha, io::sha256_file(test::tiny("model.safetensors")));
  const std::string title = "sub/tiny.safetensors [" + sha.substr(0, 10) + "]";
  EXPECT_EQ(reg.find_model("sub/tiny.safetensors").title(), title);
  for (const std::string& alias :
       {title, std::string("sub_tiny"), std::string("tiny"), sha.substr(0, 10), sha,
        std::string("sub/tiny.safetensors [0000000000]")})
    EXPECT_EQ(reg.find_model(alias).name, "sub/tiny.safetensors") << alias;

  // The cache file remembers it for the next registry.
  engine::ModelRegistry again(in(root.string()));
  EXPECT_EQ(again.find_model("tiny").sha256, sha);

  // New files appear after refresh().
  touch(root / "d.safetensors");
  EXPECT_THROW(reg.find_model("d.safetensors"), engine::NotFound);
  reg.refresh();
  EXPECT_EQ(reg.find_model("d").name, "d.safetensors");
  EXPECT_EQ(reg.find_model("tiny").sha256, sha);  // hashes survive a refresh
}

TEST(ModelRegistry, NamesThatLeaveTheFolderAreRefused) {
  test::TempDir dir;
  touch(fs::path(dir.file("models")) / "a.safetensors");
  engine::ModelRegistry reg(in(dir.file("models")));
  const std::vector<std::string> bad_names{
      "../a.safetensors", "/etc/passwd",          "..", "sub/../../a",
      "a\\b.safetensors", std::string("a\0b", 3), "",   "~/x"};
  for (const std::string& bad : bad_names) {
    EXPECT_THROW(reg.find_model(bad), engine::BadName) << bad;
    EXPECT_THROW(reg.find_lora(bad), engine::BadName) << bad;
    EXPECT_THROW(reg.find_controlnet(bad), engine::BadName) << bad;
  }
  try {
    reg.find_model("nope");
    FAIL();
  } catch (const engine::NotFound& e) {
    EXPECT_NE(std::string(e.what()).find("one of: a.safetensors"), std::string::npos) << e.what();
  }
}

TEST(ModelRegistry, RefusesAMissingFolder) {
  test::TempDir dir;
  try {
    engine::ModelRegistry reg(in(dir.file("missing")));
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--models-dir: expected an existing folder"),
              std::string::npos);
  }
}

TEST(HashCache, ComputesOnceAndNoticesChanges) {
  test::TempDir dir;
  const std::string file = dir.file("m.bin"), cache = dir.file("hashes.json");
  touch(file, "hello");
  engine::HashCache c(cache);
  EXPECT_EQ(c.lookup(file), "");
  EXPECT_EQ(c.get_or_compute(file), io::sha256_hex("hello"));
  EXPECT_TRUE(fs::exists(cache));
  engine::HashCache reread(cache);
  EXPECT_EQ(reread.lookup(file), io::sha256_hex("hello"));
  touch(file, "hello, world");  // size changes: the cached value no longer applies
  EXPECT_EQ(reread.lookup(file), "");
  EXPECT_EQ(reread.get_or_compute(file), io::sha256_hex("hello, world"));
  // A corrupt cache file is only a cache: ignored and rewritten.
  touch(cache, "{not json");
  engine::HashCache broken(cache);
  EXPECT_EQ(broken.get_or_compute(file), io::sha256_hex("hello, world"));
  EXPECT_EQ(engine::HashCache(cache).lookup(file), io::sha256_hex("hello, world"));
}

TEST(HashCache, ForgetsFilesThatAreGoneWhenItNextSaves) {
  test::TempDir dir;
  const std::string kept = dir.file("kept.bin"), gone = dir.file("gone.bin"),
                    added = dir.file("added.bin"), cache = dir.file("hashes.json");
  touch(kept, "kept");
  touch(gone, "gone");
  {
    engine::HashCache c(cache);
    c.get_or_compute(kept);
    c.get_or_compute(gone);
  }
  fs::remove(gone);
  touch(added, "added");
  engine::HashCache c(cache);
  c.get_or_compute(added);  // the save that drops the missing file's entry
  std::ifstream in(cache);
  const nlohmann::json j = nlohmann::json::parse(in);
  EXPECT_TRUE(j.at("sha256").contains(kept)) << j.dump();
  EXPECT_TRUE(j.at("sha256").contains(added)) << j.dump();
  EXPECT_FALSE(j.at("sha256").contains(gone)) << j.dump();
  EXPECT_EQ(engine::HashCache(cache).lookup(kept), io::sha256_hex("kept"));
}

TEST(SettingsStore, PersistsMergesAndRefusesBadFiles) {
  test::TempDir dir;
  const std::string file = dir.file("settings.json");
  {
    engine::SettingsStore s(file);
    EXPECT_TRUE(s.all().empty());
    s.update({{"samples_format", "png"}, {"CLIP_stop_at_last_layers", 2}});
    s.update({{"CLIP_stop_at_last_layers", nullptr}, {"sd_vae", "Automatic"}});
  }
  engine::SettingsStore s(file);
  EXPECT_EQ(s.get("samples_format"), "png");
  EXPECT_EQ(s.get("sd_vae"), "Automatic");
  EXPECT_TRUE(s.get("CLIP_stop_at_last_layers").is_null());
  EXPECT_THROW(s.update(nlohmann::json::array()), Error);
  touch(file, "[1, 2]");
  try {
    engine::SettingsStore bad(file);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expected a JSON object of settings"), std::string::npos);
  }
  // A folder that cannot take the file: the update fails and nothing changes in memory.
  engine::SettingsStore unwritable(dir.file("missing/settings.json"));
  EXPECT_THROW(unwritable.update({{"a", 1}}), Error);
  EXPECT_TRUE(unwritable.get("a").is_null());
}

}  // namespace
}  // namespace sdc
