// The Prometheus text exposition (format 0.0.4) of the engine's state and metrics: queue depth
// and capacity, jobs by outcome, images, model loads, loaded models, step / image / load latency
// histograms. Names are prefixed "sdc_".
#pragma once

#include <string>

namespace sdc::engine {
class Engine;
}

namespace sdc::server {

std::string prometheus_metrics(engine::Engine& engine);

}  // namespace sdc::server
