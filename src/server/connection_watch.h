// ConnectionWatch: tells a handler that blocks on a long job whether its client is still there,
// so that a client that hangs up mid-generation gets its job cancelled instead of leaving the
// queue busy for nobody. httplib (0.11) does not hand the socket to handlers, so the socket is
// found once by its TCP 4-tuple (getsockname/getpeername over this process's descriptors) and
// then peeked without blocking: an orderly close or a reset reads as gone.
#pragma once

namespace httplib {
struct Request;
}

namespace sdc::server {

class ConnectionWatch {
 public:
  explicit ConnectionWatch(const httplib::Request& req);
  // False once the peer closed or reset the connection; true while it is open (or when the
  // socket could not be identified: then the job simply runs to its end).
  bool client_connected() const;

 private:
  int fd_ = -1;
};

}  // namespace sdc::server
