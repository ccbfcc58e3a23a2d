// run_batch: the pipeline call with progress, step timings and cancellation wired to the job.
#include "engine/batch_runner.h"

#include <cstdio>

namespace sdc::engine {

pipeline::BatchResult run_batch(pipeline::StableDiffusion& sd,
                                const pipeline::GenerationRequest& request, int64_t first_seed,
                                BatchContext& ctx) {
  Stopwatch step_clock;
  JobProgress p = ctx.job.snapshot().progress;
  p.batch = ctx.batch;
  p.batch_count = ctx.batch_count;
  p.step = 0;
  p.stage = pipeline::GenerationStage::Preparing;
  ctx.job.update_progress(p);
  auto on_step = [&](int done, int total) {
    ctx.metrics.step_seconds.observe(step_clock.seconds());
    step_clock.reset();
    if (ctx.job.stop_token().cancelled()) throw pipeline::GenerationCancelled();
    p.stage = pipeline::GenerationStage::Denoising;
    p.step = done;
    p.total_steps = total;
    p.fraction = (ctx.batch + double(done) / std::max(total, 1)) / ctx.batch_count;
    p.elapsed_s = ctx.job_clock.seconds();
    p.eta_s = p.fraction > 0 ? p.elapsed_s / p.fraction - p.elapsed_s : -1;
    char text[96];
    std::snprintf(text, sizeof text, "Batch %d/%d, sampling step %d/%d", ctx.batch + 1,
                  ctx.batch_count, done, total);
    p.textinfo = text;
    ctx.job.update_progress(p);
  };
  if (ctx.job.stop_token().cancelled()) throw pipeline::GenerationCancelled();
  pipeline::BatchResult r = sd.generate_batch(request, first_seed, on_step);
  if (ctx.job.stop_token().cancelled()) throw pipeline::GenerationCancelled();
  return r;
}

}  // namespace sdc::engine
