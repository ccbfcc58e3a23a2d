// The engine's job queue on the tiny model: a full queue refuses with QueueFull, queued jobs
// cancel at once, events arrive in order, skip/interrupt keep decoded partial results, model
// selection persists, shutdown cancels everything, a one-shot engine draws the same images.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "common/fixtures.h"
#include "common/test_server.h"
#include "engine/engine.h"

namespace sdc {
namespace {
using namespace std::chrono_literals;

engine::JobRequest tiny_request(int steps, int batch_count = 1) {
  engine::JobRequest r;
  r.generation.prompt = "a red fox";
  r.generation.width = r.generation.height = 64;
  r.generation.steps = steps;
  r.generation.seed = 3;
  r.generation.batch_count = batch_count;
  return r;
}

std::shared_ptr<engine::Job> wait_running(engine::Engine& e) {
  for (int i = 0; i < 600; ++i) {
    auto j = e.current_job();
    if (j && j->snapshot().progress.step >= 1) return j;
    std::this_thread::sleep_for(50ms);
  }
  return nullptr;
}

TEST(JobQueue, FullQueueThrowsQueueFullAndQueuedJobsCancelAtOnce) {
  test::TempDir dir;
  auto o = test::tiny_engine_options(dir);
  o.max_queue = 2;
  engine::Engine e(o);
  auto running = e.submit(tiny_request(150, 16));
  ASSERT_TRUE(wait_running(e));
  auto q1 = e.submit(tiny_request(1));
  auto q2 = e.submit(tiny_request(1));
  EXPECT_EQ(q1->snapshot().queue_position, 0);
  EXPECT_EQ(q2->snapshot().queue_position, 1);
  EXPECT_EQ(e.queue_depth(), 2);
  try {
    e.submit(tiny_request(1));
    FAIL();
  } catch (const engine::QueueFull& full) {
    EXPECT_GE(full.retry_after_s(), 1);
    EXPECT_EQ(full.capacity(), 2);
  }
  EXPECT_TRUE(q1->cancel());
  EXPECT_EQ(q1->status(), engine::JobStatus::Cancelled);  // without waiting for the worker
  EXPECT_EQ(e.queue_depth(), 1);
  EXPECT_FALSE(q1->cancel());  // already final
  running->cancel();
  EXPECT_EQ(running->wait().status, engine::JobStatus::Cancelled);
  const auto done = q2->wait();
  EXPECT_EQ(done.status, engine::JobStatus::Succeeded);
  ASSERT_TRUE(done.result);
  EXPECT_EQ(done.result->images.size(), 1u);
  // Events of the queued job: queued(1), queued(0), started, steps, finished.
  const auto events = q2->events_after(0, 0ms);
  ASSERT_GE(events.size(), 4u);
  EXPECT_EQ(events.front().type, engine::JobEventType::Queued);
  EXPECT_EQ(events.back().type, engine::JobEventType::Finished);
  for (size_t i = 0; i < events.size(); ++i) EXPECT_EQ(events[i].seq, i + 1);
  EXPECT_TRUE(e.find_job(q2->id()));
  EXPECT_FALSE(e.find_job("ffff"));
}

TEST(JobQueue, InterruptKeepsWhatIsDoneAndEndsTheJob) {
  test::TempDir dir;
  engine::Engine e(test::tiny_engine_options(dir));
  auto job = e.submit(tiny_request(150, 16));
  ASSERT_TRUE(wait_running(e));
  EXPECT_TRUE(job->interrupt());
  const auto done = job->wait();
  ASSERT_EQ(done.status, engine::JobStatus::Succeeded) << done.error;
  EXPECT_TRUE(done.result->interrupted);
  EXPECT_LT(done.result->images.size(), 16u);
  EXPECT_EQ(e.metrics().jobs_interrupted.load(), 1u);
}

TEST(JobQueue, SelectModelPersistsItsTitle) {
  test::TempDir dir;
  auto o = test::tiny_engine_options(dir);
  {
    engine::Engine e(o);
    const auto m = e.select_model("tiny");
    EXPECT_EQ(m.name, "tiny.safetensors");
    EXPECT_EQ(e.loaded_models().size(), 1u);
    EXPECT_EQ(e.settings().get("sd_model_checkpoint"), m.title());
    EXPECT_THROW(e.select_model("../x"), engine::BadName);
    EXPECT_THROW(e.select_model("x"), engine::NotFound);
    e.unload_all();
    EXPECT_TRUE(e.loaded_models().empty());
  }
  engine::Engine again(o);
  EXPECT_EQ(again.current_model().name, "tiny.safetensors");
}

TEST(JobQueue, ShutdownCancelsQueuedAndRunningJobs) {
  test::TempDir dir;
  engine::Engine e(test::tiny_engine_options(dir));
  auto running = e.submit(tiny_request(150, 16));
  auto queued = e.submit(tiny_request(1));
  ASSERT_TRUE(wait_running(e));
  e.shutdown(true);
  EXPECT_EQ(running->wait().status, engine::JobStatus::Cancelled);
  EXPECT_EQ(queued->wait().status, engine::JobStatus::Cancelled);
  EXPECT_EQ(queued->snapshot().error, "the server is shutting down");
  EXPECT_THROW(e.submit(tiny_request(1)), engine::ShuttingDown);
}

TEST(JobQueue, BadRequestsAreRefusedBeforeQueueing) {
  test::TempDir dir;
  engine::Engine e(test::tiny_engine_options(dir));
  auto r = tiny_request(2);
  r.generation.width = 100;
  EXPECT_THROW(e.submit(r), UsageError);
  r = tiny_request(2);
  r.generation.sampler = "heun++ 9m";
  EXPECT_THROW(e.submit(r), UsageError);
  r = tiny_request(2);
  r.loras = {{"../kohya", 1.0f}};
  EXPECT_THROW(e.submit(r), engine::BadName);
  r = tiny_request(2);
  r.loras = {{"nope", 1.0f}};
  EXPECT_THROW(e.submit(r), engine::NotFound);
  EXPECT_EQ(e.metrics().jobs_submitted.load(), 0u);
}

// One-shot engines (sdc generate) drop components after their last use in the job's last batch:
// every batch still draws what a serving engine draws.
TEST(JobQueue, OneShotJobDrawsWhatAServingEngineDraws) {
  test::TempDir dir;
  auto serving = test::tiny_engine_options(dir);
  auto one_shot = serving;
  one_shot.one_shot = true;
  std::vector<std::string> images[2];
  int k = 0;
  for (const auto& o : {serving, one_shot}) {
    engine::Engine e(o);
    const auto done = e.submit(tiny_request(2, 2))->wait();
    ASSERT_EQ(done.status, engine::JobStatus::Succeeded);
    for (const auto& im : done.result->images) images[k].push_back(im.png);
    ++k;
  }
  ASSERT_EQ(images[0].size(), 2u);
  EXPECT_EQ(images[0], images[1]);
}

}  // namespace
}  // namespace sdc
