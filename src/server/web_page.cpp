// register_web_page: serves web_assets() from memory.
#include "server/web_page.h"

#include <httplib.h>

#include <string>

#include "server/web_assets.h"

namespace sdc::server {

namespace {

const char* content_type(std::string_view path) {
  auto ends = [&](std::string_view ext) {
    return path.size() >= ext.size() && path.substr(path.size() - ext.size()) == ext;
  };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  if (ends(".png")) return "image/png";
  return "application/octet-stream";
}

const WebAsset* find_asset(std::string_view path) {
  for (const WebAsset& a : web_assets())
    if (a.path == path) return &a;
  return nullptr;
}

void send_asset(httplib::Response& res, const WebAsset& a) {
  res.status = 200;
  res.set_header("Cache-Control", "no-cache");
  // The page talks only to this server: no inline scripts, no other origins.
  res.set_header("Content-Security-Policy",
                 "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
                 "script-src 'self'; connect-src 'self'; frame-ancestors 'none'");
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_content(std::string(a.bytes), content_type(a.path));
}

}  // namespace

void register_web_page(httplib::Server& http) {
  http.Get("/", [](const httplib::Request&, httplib::Response& res) {
    if (const WebAsset* a = find_asset("index.html")) send_asset(res, *a);
  });
  http.Get(R"(/ui/([A-Za-z0-9_./-]{1,200}))",
           [](const httplib::Request& req, httplib::Response& res) {
             const std::string path = req.matches[1];
             const WebAsset* a = path.find("..") == std::string::npos ? find_asset(path) : nullptr;
             if (!a) {
               res.status = 404;
               res.set_content("{\"error\":\"NotFound\",\"detail\":\"no such page file\"}",
                               "application/json");
               return;
             }
             send_asset(res, *a);
           });
}

}  // namespace sdc::server
