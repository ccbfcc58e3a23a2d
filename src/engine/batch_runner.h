// Running one batch of a job on a loaded pipeline while turning the pipeline's progress into the
// job's (overall fraction across batches, ETA, textinfo, step latency, preview PNG) and the job's
// stop requests into the pipeline's. Kept apart from the queue so the pipeline's calling
// convention lives in one place.
#pragma once

#include <cstdint>

#include "common/stopwatch.h"
#include "engine/engine_metrics.h"
#include "engine/job.h"
#include "pipeline/stable_diffusion.h"

namespace sdc::engine {

struct BatchContext {
  Job& job;
  EngineMetrics& metrics;
  const Stopwatch& job_clock;  // started when the job started running
  int batch = 0, batch_count = 1;
  int preview_every = 0;
  pipeline::ReleaseAfterUse release;  // what the pipeline may drop after its last use
};

// Throws pipeline::GenerationCancelled when the job is cancelled, sdc::Error for bad input.
pipeline::BatchResult run_batch(pipeline::StableDiffusion& sd,
                                const pipeline::GenerationRequest& request, int64_t first_seed,
                                BatchContext& ctx);

}  // namespace sdc::engine
