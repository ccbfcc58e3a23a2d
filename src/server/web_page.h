// The page at "/": GET / gives index.html, GET /ui/PATH the other embedded files (CSS, JS
// modules) with their content type; nothing is read from disk and nothing comes from a CDN.
#pragma once

namespace httplib {
class Server;
}

namespace sdc::server {

void register_web_page(httplib::Server& http);

}  // namespace sdc::server
