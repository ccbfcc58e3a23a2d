// PLACEHOLDER until branch `a1111` is merged: that branch implements register_a1111_routes (the
// /sdapi/v1 adapter) in its own files and deletes this one in the merge. It exists only so that
// branch `serve` links on its own; it registers no route, so /sdapi/v1/* answers 404 here.
#include "server/a1111/a1111_routes.h"

namespace sdc::server {

void register_a1111_routes(httplib::Server&, engine::Engine&, const ServerOptions&,
                           HttpMiddleware&) {}

}  // namespace sdc::server
