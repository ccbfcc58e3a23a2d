// Waiting for a job on behalf of a blocking HTTP handler (A1111 txt2img, OpenAI images, the
// native ?wait=true): the handler's client is watched while it waits, and a client that hangs up
// gets its job cancelled, so nobody's queue slot is spent on an image no one will read.
#pragma once

#include "engine/job.h"

namespace httplib {
struct Request;
}

namespace sdc::server {

// Blocks until `job` is final. Every ~100 ms checks that the client of `req` is still connected;
// if not, cancels the job ("the client disconnected") and returns its final snapshot.
engine::JobSnapshot wait_for_job(engine::Job& job, const httplib::Request& req);

}  // namespace sdc::server
