// prometheus_metrics: counters, gauges and histograms in the text format.
#include "server/metrics_text.h"

#include <sstream>

#include "engine/engine.h"

namespace sdc::server {
namespace {

void header(std::ostringstream& o, const char* name, const char* type, const char* help) {
  o << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << "\n";
}

void histogram(std::ostringstream& o, const char* name, const char* help,
               const engine::Histogram& h) {
  header(o, name, "histogram", help);
  const auto s = h.snapshot();
  for (size_t i = 0; i < s.upper_bounds.size(); ++i)
    o << name << "_bucket{le=\"" << s.upper_bounds[i] << "\"} " << s.cumulative_counts[i] << "\n";
  o << name << "_bucket{le=\"+Inf\"} " << s.count << "\n";
  o << name << "_sum " << s.sum << "\n" << name << "_count " << s.count << "\n";
}

}  // namespace

std::string prometheus_metrics(engine::Engine& engine) {
  engine::EngineMetrics& m = engine.metrics();
  std::ostringstream o;
  header(o, "sdc_queue_depth", "gauge", "Jobs waiting in the queue (the running one not counted).");
  o << "sdc_queue_depth " << engine.queue_depth() << "\n";
  header(o, "sdc_queue_capacity", "gauge", "Jobs the queue accepts before answering 429.");
  o << "sdc_queue_capacity " << engine.queue_capacity() << "\n";
  header(o, "sdc_job_running", "gauge", "1 while a job is running.");
  o << "sdc_job_running " << (engine.busy() ? 1 : 0) << "\n";
  header(o, "sdc_jobs_submitted_total", "counter", "Jobs accepted into the queue.");
  o << "sdc_jobs_submitted_total " << m.jobs_submitted.load() << "\n";
  header(o, "sdc_jobs_rejected_total", "counter", "Jobs refused because the queue was full.");
  o << "sdc_jobs_rejected_total " << m.jobs_rejected.load() << "\n";
  header(o, "sdc_jobs_total", "counter", "Finished jobs by outcome.");
  o << "sdc_jobs_total{outcome=\"succeeded\"} " << m.jobs_succeeded.load() << "\n";
  o << "sdc_jobs_total{outcome=\"failed\"} " << m.jobs_failed.load() << "\n";
  o << "sdc_jobs_total{outcome=\"cancelled\"} " << m.jobs_cancelled.load() << "\n";
  header(o, "sdc_jobs_interrupted_total", "counter",
         "Succeeded jobs stopped early by skip/interrupt (partial images).");
  o << "sdc_jobs_interrupted_total " << m.jobs_interrupted.load() << "\n";
  header(o, "sdc_images_generated_total", "counter", "Images generated.");
  o << "sdc_images_generated_total " << m.images_generated.load() << "\n";
  header(o, "sdc_model_loads_total", "counter", "Model (+LoRA combination) loads by result.");
  o << "sdc_model_loads_total{result=\"ok\"} " << m.model_loads.load() << "\n";
  o << "sdc_model_loads_total{result=\"error\"} " << m.model_load_failures.load() << "\n";
  header(o, "sdc_model_unloads_total", "counter", "Models unloaded (LRU or on request).");
  o << "sdc_model_unloads_total " << m.model_unloads.load() << "\n";
  header(o, "sdc_models_loaded", "gauge", "Model (+LoRA combination) entries in memory.");
  o << "sdc_models_loaded " << engine.loaded_models().size() << "\n";
  histogram(o, "sdc_step_seconds", "Seconds per sampler step.", m.step_seconds);
  histogram(o, "sdc_image_seconds", "Seconds per generated image (batch time / images).",
            m.image_seconds);
  histogram(o, "sdc_model_load_seconds", "Seconds to load a model (with LoRA merges).",
            m.load_seconds);
  return o.str();
}

}  // namespace sdc::server
