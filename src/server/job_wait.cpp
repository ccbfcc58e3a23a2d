// wait_for_job: blocking wait with client-disconnect cancellation.
#include "server/job_wait.h"

#include "server/connection_watch.h"

namespace sdc::server {

engine::JobSnapshot wait_for_job(engine::Job& job, const httplib::Request& req) {
  const ConnectionWatch watch(req);
  for (;;) {
    if (auto done = job.wait_for(std::chrono::milliseconds(100))) return *done;
    if (!watch.client_connected()) {
      job.cancel("the client disconnected");
      return job.wait();
    }
  }
}

}  // namespace sdc::server
