// run_batch: the pipeline call with progress, step timings, previews and stop requests wired to
// the job.
#include "engine/batch_runner.h"

#include <algorithm>
#include <cstdio>

#include "io/image.h"
#include "pipeline/hires_fix.h"

namespace sdc::engine {

pipeline::BatchResult run_batch(pipeline::StableDiffusion& sd,
                                const pipeline::GenerationRequest& request, int64_t first_seed,
                                BatchContext& ctx) {
  Stopwatch step_clock;
  JobProgress p = ctx.job.snapshot().progress;
  p.batch = ctx.batch;
  p.batch_count = ctx.batch_count;
  p.step = 0;
  int last_step = 0;

  pipeline::GenerationObserver observer;
  observer.stop = &ctx.job.stop_token();
  observer.preview_every = ctx.preview_every;
  observer.on_progress = [&](const pipeline::ProgressEvent& e) {
    p.stage = e.stage;
    if (e.stage == pipeline::GenerationStage::Denoising) {
      if (e.step > last_step) {  // a step finished: its wall time, UNet calls included
        ctx.metrics.step_seconds.observe(step_clock.seconds() / (e.step - last_step));
        last_step = e.step;
      }
      step_clock.reset();
      p.step = e.step;
      p.total_steps = e.total_steps;
    }
    // Overall fraction: finished batches plus this batch's share of its steps (decoding counts
    // as the batch's end).
    const double within =
        e.stage == pipeline::GenerationStage::Decoding || e.stage == pipeline::GenerationStage::Done
            ? 1.0
            : double(p.step) / std::max(p.total_steps, 1);
    p.fraction = std::min(1.0, (ctx.batch + within) / ctx.batch_count);
    p.elapsed_s = ctx.job_clock.seconds();
    p.eta_s = p.fraction > 0 ? p.elapsed_s / p.fraction - p.elapsed_s : -1;
    char text[128];
    std::snprintf(text, sizeof text, "Batch %d/%d, %s, step %d/%d", ctx.batch + 1, ctx.batch_count,
                  pipeline::stage_name(e.stage), p.step, p.total_steps);
    p.textinfo = text;
    if (e.preview) {
      const std::vector<uint8_t> png = io::encode_png(*e.preview);
      p.preview_png.assign(png.begin(), png.end());
      p.preview_id += 1;
    }
    ctx.job.update_progress(p);
  };
  return request.enable_hr
             ? pipeline::generate_hires(sd, request, first_seed, observer, ctx.release)
             : sd.generate_batch(request, first_seed, observer, ctx.release);
}

}  // namespace sdc::engine
