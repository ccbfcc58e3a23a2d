// `sdc serve` as a process: startup messages and refusals, and SIGTERM during a job — the job is
// cancelled, the process exits 0, the port is free again and nothing half-written is left.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "common/fixtures.h"
#include "common/test_server.h"
#include "io/image.h"

namespace sdc {
namespace {
using nlohmann::json;
namespace fs = std::filesystem;

// A running `sdc serve` child with its stdout and stderr in files.
struct ServeProcess {
  pid_t pid = -1;
  std::string out, err;
  int port = -1;

  ServeProcess(const test::TempDir& dir, std::vector<std::string> args) {
    out = dir.file("serve.out");
    err = dir.file("serve.err");
    args.insert(args.begin(), {SDC_BINARY, "serve"});
    pid = fork();
    if (pid == 0) {
      const int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(o, 1);
      dup2(e, 2);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
  }
  // Waits for "listening on http://host:PORT"; false if the process ended first.
  bool wait_listening() {
    for (int i = 0; i < 600; ++i) {
      const std::string text = read(out);
      const size_t at = text.find("listening on http://");
      if (at != std::string::npos && text.find('\n', at) != std::string::npos) {
        const size_t colon = text.rfind(':', text.find('\n', at));
        port = std::stoi(text.substr(colon + 1));
        return true;
      }
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid) {
        pid = -1;
        exit_status = status;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  // Waits up to `seconds` for the exit; returns the exit code (-1: still running or signalled).
  int wait_exit(int seconds) {
    if (pid < 0) return WIFEXITED(exit_status) ? WEXITSTATUS(exit_status) : -1;
    for (int i = 0; i < seconds * 20; ++i) {
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid) {
        pid = -1;
        exit_status = status;
        if (WIFSIGNALED(status)) ADD_FAILURE() << "killed by signal " << WTERMSIG(status);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return -1;
  }
  static std::string read(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  ~ServeProcess() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  }
  int exit_status = 0;
};

TEST(ServeProcess, SigtermDuringAJobCancelsItAndReleasesThePort) {
  test::TempDir dir;
  test::make_models_dir(dir.file("models"));
  ServeProcess p(
      dir, {"--models-dir", dir.file("models"), "--model-config", test::tiny("diffusers"), "--port",
            "0", "--threads", "1", "--outputs-dir", dir.file("outputs")});
  ASSERT_TRUE(p.wait_listening()) << ServeProcess::read(p.err);
  httplib::Client c("127.0.0.1", p.port);
  c.set_read_timeout(60);
  auto r = c.Post("/v1/jobs", test::tiny_job(150, 1, R"("batch_count":16)"), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 202) << r->body;
  const std::string id = json::parse(r->body)["id"];
  bool stepping = false;
  for (int i = 0; i < 600 && !stepping; ++i) {
    auto s = c.Get("/v1/jobs/" + id);
    stepping = s && json::parse(s->body)["progress"]["step"].get<int>() >= 1;
    if (!stepping) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(stepping);
  // A second client blocked on a queued job is answered too.
  std::thread blocked([&] {
    httplib::Client c2("127.0.0.1", p.port);
    c2.set_read_timeout(60);
    auto w = c2.Post("/v1/jobs?wait=1", test::tiny_job(1, 2), "application/json");
    ASSERT_TRUE(w);
    EXPECT_EQ(w->status, 409) << w->body;
    EXPECT_EQ(json::parse(w->body)["status"], "cancelled");
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_EQ(kill(p.pid, SIGTERM), 0);
  EXPECT_EQ(p.wait_exit(60), 0) << ServeProcess::read(p.err);
  blocked.join();
  EXPECT_NE(ServeProcess::read(p.err).find("SIGTERM: stopping"), std::string::npos);
  // The port is free again.
  httplib::Server again;
  EXPECT_TRUE(again.bind_to_port("127.0.0.1", p.port));
  // Nothing half-written: the output folder holds no temporary file, only whole images of
  // batches that finished before the signal (on a fast machine the first may have).
  for (const auto& e : fs::directory_iterator(dir.file("outputs"))) {
    const std::string name = e.path().filename().string();
    EXPECT_FALSE(name.starts_with(".")) << "temporary file left behind: " << name;
    EXPECT_NO_THROW(io::read_image(e.path().string())) << "not a whole image: " << name;
  }
}

TEST(ServeProcess, WarnsWhenListeningBeyondLoopbackWithoutAuth) {
  test::TempDir dir;
  test::make_models_dir(dir.file("models"));
  ServeProcess p(dir, {"--models-dir", dir.file("models"), "--host", "0.0.0.0", "--port", "0"});
  ASSERT_TRUE(p.wait_listening()) << ServeProcess::read(p.err);
  EXPECT_NE(ServeProcess::read(p.err).find("warning: listening on 0.0.0.0 without --api-auth"),
            std::string::npos);
  // The memory decision is in the start-up log, as `sdc bench` prints it.
  EXPECT_NE(ServeProcess::read(p.err).find("huge pages for activations and packed weights: "),
            std::string::npos);
  kill(p.pid, SIGINT);
  EXPECT_EQ(p.wait_exit(30), 0);
}

TEST(ServeProcess, BadOptionsAreOneLineAndExit2) {
  test::TempDir dir;
  struct Case {
    std::vector<std::string> args;
    std::string needle;
  };
  for (const Case& k : std::vector<Case>{
           {{"--models-dir", dir.file("missing")}, "--models-dir: expected an existing folder"},
           {{"--models-dir", dir.path(), "--api-auth", "alice"}, "--api-auth: expected"},
           {{"--models-dir", dir.path(), "--max-queue", "0"}, "--max-queue: expected at least 1"},
           {{"-m", dir.file("none.safetensors")}, "-m: expected an existing model file"},
           {{}, "expected a models folder or -m MODEL"}}) {
    ServeProcess p(dir, k.args);
    EXPECT_EQ(p.wait_exit(30), 2) << k.needle;
    const std::string err = ServeProcess::read(p.err);
    EXPECT_NE(err.find(k.needle), std::string::npos) << err;
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  }
  // A bad memory setting, before any model loads.
  setenv("SDC_HUGE_PAGES", "yes", 1);
  test::make_models_dir(dir.file("models"));
  ServeProcess p(dir, {"--models-dir", dir.file("models"), "--port", "0"});
  unsetenv("SDC_HUGE_PAGES");
  EXPECT_EQ(p.wait_exit(30), 2);
  const std::string err = ServeProcess::read(p.err);
  EXPECT_NE(err.find("SDC_HUGE_PAGES: expected auto, advise or system, found \"yes\""),
            std::string::npos)
      << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
}

}  // namespace
}  // namespace sdc
