// /v1/files and /v1/uploads over real loopback HTTP: listings, every traversal attempt, symlink
// escapes, resumable uploads across a dropped connection, oversize and aborted uploads (nothing
// left on disk), wrong offsets, DELETE.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/fixtures.h"
#include "io/sha256.h"
#include "server/loopback_server.h"
#include "server/raw_http.h"
#include "server/transfer/transfer_routes.h"

namespace sdc::server::transfer {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

std::string bytes(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = char((i * 31 + 3) & 0xff);
  return s;
}

std::vector<std::string> files_under(const std::string& dir) {
  std::vector<std::string> out;
  for (auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) out.push_back(fs::relative(e.path(), dir).string());
  return out;
}

class TransferRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(models.file("sub"));
    fs::copy_file(test::tiny("lora-kohya.safetensors"), models.file("sub/lcm.safetensors"));
    std::ofstream(outside.file("secret.safetensors")) << "outside";
    fs::create_symlink(outside.file("secret.safetensors"), models.file("escape.safetensors"));
    fs::create_directory_symlink(outside.path(), models.file("escape-dir"));
    browser = std::make_unique<FileBrowser>(std::vector<FileRoot>{{"models", models.path()}});
    UploadOptions o;
    o.dir = uploads_dir.path();
    o.max_bytes = 200000;
    store = std::make_unique<UploadStore>(o);
    add_transfer_routes(server.http(), {browser.get(), store.get()});
    server.start();
  }
  httplib::Client client() {
    httplib::Client c("127.0.0.1", server.port());
    c.set_read_timeout(30, 0);
    return c;
  }
  nlohmann::json json_of(const httplib::Result& r) {
    EXPECT_TRUE(r);
    return r ? nlohmann::json::parse(r->body, nullptr, false) : nlohmann::json();
  }
  TempDir models, outside, uploads_dir;
  std::unique_ptr<FileBrowser> browser;
  std::unique_ptr<UploadStore> store;
  test::LoopbackServer server;
};

TEST_F(TransferRoutesTest, FilesListsWithKinds) {
  auto c = client();
  auto r = c.Get("/v1/files?path=sub");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  nlohmann::json j = json_of(r);
  ASSERT_EQ(j["entries"].size(), 1u);
  EXPECT_EQ(j["entries"][0]["path"], "sub/lcm.safetensors");
  EXPECT_EQ(j["entries"][0]["kind"], "lora");
  EXPECT_EQ(j["roots"], nlohmann::json::array({"models"}));
  // The root lists "sub" but neither symlink that leads outside.
  j = json_of(c.Get("/v1/files"));
  ASSERT_EQ(j["entries"].size(), 1u);
  EXPECT_EQ(j["entries"][0]["name"], "sub");
}

TEST_F(TransferRoutesTest, FilesRefusesTraversalAndEscapes) {
  auto c = client();
  for (const char* q :
       {"/v1/files?path=..", "/v1/files?path=../..", "/v1/files?path=sub/../..",
        "/v1/files?path=%2e%2e%2f", "/v1/files?path=/etc", "/v1/files?path=%2Fetc",
        "/v1/files?path=escape-dir", "/v1/files?path=sub%5C..%5C..", "/v1/files?path=a%00b"}) {
    auto r = c.Get(q);
    ASSERT_TRUE(r) << q;
    EXPECT_EQ(r->status, 400) << q << " " << r->body;
    EXPECT_EQ(json_of(r)["error"], "PathRefused") << q;
  }
  auto r = c.Get("/v1/files?path=escape-dir");
  EXPECT_NE(r->body.find("leads outside the models folder"), std::string::npos) << r->body;
  r = c.Get("/v1/files?root=etc");
  EXPECT_EQ(r->status, 400);
  r = c.Get("/v1/files?path=missing");
  EXPECT_EQ(r->status, 400);
}

TEST_F(TransferRoutesTest, ResumableUploadSurvivesADroppedConnection) {
  const std::string data = bytes(150000);
  auto c = client();
  auto r =
      c.Post("/v1/uploads", R"({"name": "ckpt.safetensors", "size": 150000})", "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 201) << r->body;
  const std::string id = json_of(r)["id"];
  // First chunk: 100000 bytes announced, 60000 sent, then the connection is gone.
  test::send_and_vanish(
      server.port(), "PUT /v1/uploads/" + id +
                         " HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
                         "Content-Range: bytes 0-99999/150000\r\nContent-Length: 100000\r\n\r\n" +
                         data.substr(0, 60000));
  uint64_t received = 0;
  ASSERT_TRUE(test::eventually([&] {
    nlohmann::json u = json_of(c.Get("/v1/uploads/" + id));
    received = u["received"].get<uint64_t>();
    return received > 0 && store->list().size() == 1 && !u["complete"].get<bool>() &&
           c.Get("/v1/uploads/" + id)->status == 200 && received == 60000;
  })) << received;
  // A chunk at the wrong offset: 409 and where to resume.
  httplib::Headers h{{"Content-Range", "bytes 0-9/150000"}};
  r = c.Put("/v1/uploads/" + id, h, data.substr(0, 10), "application/octet-stream");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 409);
  EXPECT_EQ(json_of(r)["upload"]["received"], 60000);
  // The rest, in one request.
  h = {{"Content-Range", "bytes 60000-149999/150000"}};
  r = c.Put("/v1/uploads/" + id, h, data.substr(60000), "application/octet-stream");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  nlohmann::json done = json_of(r);
  EXPECT_TRUE(done["complete"].get<bool>());
  EXPECT_EQ(done["sha256"], io::sha256_hex(data));
  EXPECT_EQ(files_under(uploads_dir.path()), std::vector<std::string>{id + "/ckpt.safetensors"});
  // DELETE removes it.
  r = c.Delete("/v1/uploads/" + id);
  EXPECT_EQ(r->status, 204);
  EXPECT_EQ(c.Get("/v1/uploads/" + id)->status, 404);
  EXPECT_TRUE(files_under(uploads_dir.path()).empty());
}

TEST_F(TransferRoutesTest, SingleRequestUpload) {
  const std::string data = bytes(5000);
  auto c = client();
  auto r = c.Post("/v1/uploads?name=tiny%20model.ckpt", data, "application/octet-stream");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 201) << r->body;
  nlohmann::json j = json_of(r);
  EXPECT_EQ(j["name"], "tiny model.ckpt");
  EXPECT_EQ(j["size"], 5000);
  EXPECT_EQ(j["sha256"], io::sha256_hex(data));
  r = c.Post("/v1/uploads", data, "application/octet-stream");
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find("?name=FILE"), std::string::npos);
}

TEST_F(TransferRoutesTest, OversizeUploadsAreRefusedAndLeaveNothing) {
  auto c = client();
  auto r = c.Post("/v1/uploads", R"({"name": "big.ckpt", "size": 200001})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_NE(r->body.find("--max-upload-size"), std::string::npos) << r->body;
  // Declared by Content-Length: refused before the body is read.
  r = c.Post("/v1/uploads?name=big.ckpt", bytes(200001), "application/octet-stream");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  // No length declared (chunked): refused once the count passes the cap.
  const std::string data = bytes(300000);
  r = c.Post(
      "/v1/uploads?name=big.ckpt",
      [&](size_t offset, httplib::DataSink& sink) {
        if (offset >= data.size()) {
          sink.done();
          return true;
        }
        return sink.write(data.data() + offset, 10000);
      },
      "application/octet-stream");
  if (r) {  // the server may close before the client reads the reply
    EXPECT_EQ(r->status, 413);
  }
  EXPECT_TRUE(test::eventually([&] { return files_under(uploads_dir.path()).empty(); }));
  EXPECT_TRUE(store->list().empty());
}

TEST_F(TransferRoutesTest, AbortedSingleRequestUploadLeavesNothing) {
  test::send_and_vanish(server.port(),
                        "POST /v1/uploads?name=half.ckpt HTTP/1.1\r\nHost: x\r\n"
                        "Content-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n" +
                            bytes(30000));
  // The store sees the upload while bytes arrive and drops it when the connection ends.
  EXPECT_TRUE(test::eventually(
      [&] { return store->list().empty() && files_under(uploads_dir.path()).empty(); }));
}

TEST_F(TransferRoutesTest, BadUploadRequests) {
  auto c = client();
  auto r = c.Post("/v1/uploads", R"({"size": 5})", "application/json");
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find("name"), std::string::npos);
  r = c.Post("/v1/uploads", R"({"name": "a", "size": -1})", "application/json");
  EXPECT_EQ(r->status, 400);
  r = c.Post("/v1/uploads", "not json", "application/json");
  EXPECT_EQ(r->status, 400);
  r = c.Put("/v1/uploads/up-unknown", "x", "application/octet-stream");
  EXPECT_EQ(r->status, 404);
  r = c.Post("/v1/uploads", R"({"name": "a.ckpt", "size": 10})", "application/json");
  const std::string id = json_of(r)["id"];
  httplib::Headers h{{"Content-Range", "bytes 5-2/10"}};
  r = c.Put("/v1/uploads/" + id, h, "abc", "application/octet-stream");
  EXPECT_EQ(r->status, 400);
  h = {{"Content-Range", "bytes 0-2/11"}};
  r = c.Put("/v1/uploads/" + id, h, "abc", "application/octet-stream");
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find("total 10"), std::string::npos) << r->body;
}

}  // namespace
}  // namespace sdc::server::transfer
