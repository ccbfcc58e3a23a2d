// transfer_routes: request parsing and status mapping around FileBrowser and UploadStore; the
// bytes of uploads go from httplib's content reader straight into a ChunkWriter.
#include "server/transfer/transfer_routes.h"

#include <optional>

#include "server/transfer/file_names.h"

namespace sdc::server::transfer {

namespace {

constexpr size_t kMaxJsonBody = 64 * 1024;

void send_json(httplib::Response& res, int status, const nlohmann::json& j) {
  res.status = status;
  res.set_content(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                  "application/json");
}

class BadRequest : public Error {
 public:
  using Error::Error;
};

std::optional<uint64_t> parse_u64(const std::string& s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + uint64_t(c - '0');
  }
  return v;
}

struct ContentRange {
  uint64_t start = 0, length = 0, total = 0;
};

// "bytes START-END/TOTAL" (END inclusive).
ContentRange parse_content_range(const std::string& v) {
  const std::string bad = "\"bytes START-END/TOTAL\"";
  if (v.rfind("bytes ", 0) != 0) throw BadRequest("", "Content-Range", bad, v);
  size_t dash = v.find('-', 6), slash = v.find('/', 6);
  if (dash == std::string::npos || slash == std::string::npos || slash < dash)
    throw BadRequest("", "Content-Range", bad, v);
  auto start = parse_u64(v.substr(6, dash - 6));
  auto end = parse_u64(v.substr(dash + 1, slash - dash - 1));
  auto total = parse_u64(v.substr(slash + 1));
  if (!start || !end || !total || *end < *start || *end >= *total)
    throw BadRequest("", "Content-Range", bad + " with START ≤ END < TOTAL", v);
  return {*start, *end - *start + 1, *total};
}

std::optional<uint64_t> content_length(const httplib::Request& req) {
  if (!req.has_header("Content-Length")) return std::nullopt;
  auto n = parse_u64(req.get_header_value("Content-Length"));
  if (!n)
    throw BadRequest("", "Content-Length", "a number", req.get_header_value("Content-Length"));
  return n;
}

// Streams the request body into `w`. False when the body broke off (the client went away).
bool stream_body(const httplib::ContentReader& reader, ChunkWriter& w,
                 std::optional<Error>& failure) {
  std::optional<UploadTooLarge> too_large;
  std::optional<UploadConflict> conflict;
  const bool ok = reader([&](const char* data, size_t n) {
    try {
      w.write(data, n);
      return true;
    } catch (const UploadTooLarge& e) {
      too_large = e;
    } catch (const UploadConflict& e) {
      conflict = e;
    } catch (const Error& e) {
      failure = e;
    }
    return false;
  });
  if (too_large) throw *too_large;
  if (conflict) throw *conflict;
  if (failure) throw *failure;
  return ok;
}

std::string read_small_body(const httplib::ContentReader& reader) {
  std::string body;
  bool too_big = false;
  reader([&](const char* data, size_t n) {
    if (body.size() + n > kMaxJsonBody) {
      too_big = true;
      return false;
    }
    body.append(data, n);
    return true;
  });
  if (too_big)
    throw BadRequest("", "body", "a JSON object under 64 KiB (send file bytes with PUT)", "more");
  return body;
}

}  // namespace

nlohmann::json upload_json(const UploadInfo& u) {
  nlohmann::json j{{"id", u.id},
                   {"name", u.name},
                   {"size", u.size ? nlohmann::json(*u.size) : nlohmann::json(nullptr)},
                   {"received", u.received},
                   {"complete", u.complete},
                   {"resumable", u.resumable}};
  if (u.complete) j["sha256"] = u.sha256;
  return j;
}

nlohmann::json file_entry_json(const FileEntry& e) {
  nlohmann::json j{{"name", e.name}, {"path", e.path}, {"is_dir", e.is_dir}};
  if (!e.is_dir || !e.kind.empty()) {
    j["size"] = e.size;
    j["kind"] = e.kind;
    j["format"] = e.format;
    j["architecture"] = e.architecture;
    j["supported"] = e.supported;
  }
  if (!e.error.empty()) j["error"] = e.error;
  if (!e.details.is_null()) j["details"] = e.details;
  return j;
}

void send_transfer_error(httplib::Response& res, const std::exception& e) {
  int status = 500;
  std::string kind = "InternalError";
  if (dynamic_cast<const UploadNotFound*>(&e)) {
    status = 404;
    kind = "NotFound";
  } else if (dynamic_cast<const UploadConflict*>(&e)) {
    status = 409;
    kind = "Conflict";
  } else if (dynamic_cast<const UploadTooLarge*>(&e)) {
    status = 413;
    kind = "TooLarge";
  } else if (dynamic_cast<const PathRefused*>(&e)) {
    status = 400;
    kind = "PathRefused";
  } else if (dynamic_cast<const Error*>(&e)) {
    status = 400;
    kind = "BadRequest";
  }
  send_json(res, status, {{"error", kind}, {"detail", e.what()}});
  // A body we stopped reading must not be taken for the next request.
  res.set_header("Connection", "close");
}

void add_transfer_routes(httplib::Server& server, const TransferServices& services) {
  FileBrowser* files = services.files;
  UploadStore* uploads = services.uploads;

  server.Get("/v1/files", [files](const httplib::Request& req, httplib::Response& res) {
    try {
      if (!files) throw UploadNotFound("(file browsing is not enabled)");
      const std::string root = req.has_param("root") ? req.get_param_value("root") : "models";
      Listing l = files->list(root, req.get_param_value("path"));
      nlohmann::json entries = nlohmann::json::array();
      for (const FileEntry& e : l.entries) entries.push_back(file_entry_json(e));
      nlohmann::json roots = nlohmann::json::array();
      for (const FileRoot& r : files->roots()) roots.push_back(r.name);
      send_json(res, 200,
                {{"root", l.root}, {"path", l.path}, {"roots", roots}, {"entries", entries}});
    } catch (const std::exception& e) {
      send_transfer_error(res, e);
    }
  });

  server.Get("/v1/files/info", [files](const httplib::Request& req, httplib::Response& res) {
    try {
      if (!files) throw UploadNotFound("(file browsing is not enabled)");
      const std::string root = req.has_param("root") ? req.get_param_value("root") : "models";
      send_json(res, 200, file_entry_json(files->describe(root, req.get_param_value("path"))));
    } catch (const std::exception& e) {
      send_transfer_error(res, e);
    }
  });

  server.Post("/v1/uploads", [uploads](const httplib::Request& req, httplib::Response& res,
                                       const httplib::ContentReader& reader) {
    try {
      if (!uploads) throw UploadNotFound("(uploads are not enabled)");
      const std::string type = req.get_header_value("Content-Type");
      if (type.rfind("application/json", 0) == 0) {
        const nlohmann::json j = nlohmann::json::parse(read_small_body(reader), nullptr, false);
        if (!j.is_object()) throw BadRequest("", "body", "a JSON object", "something else");
        if (!j.contains("name") || !j["name"].is_string() || j["name"].get<std::string>().empty())
          throw BadRequest("", "name", "the file's name (a non-empty string)", "none");
        if (!j.contains("size") || !j["size"].is_number_unsigned())
          throw BadRequest("", "size", "the file's size in bytes (a whole number ≥ 0)",
                           j.contains("size") ? j["size"].dump() : "none");
        send_json(res, 201,
                  upload_json(uploads->create(j["name"].get<std::string>(),
                                              j["size"].get<uint64_t>(), true)));
        return;
      }
      // The whole file in this one request.
      std::string name = req.get_param_value("name");
      if (name.empty()) name = req.get_header_value("X-File-Name");
      if (name.empty()) throw BadRequest("", "name", "?name=FILE or an X-File-Name header", "none");
      const std::optional<uint64_t> length = content_length(req);
      UploadInfo u = uploads->create(name, length, false);
      ChunkWriter w = uploads->begin_chunk(u.id, 0, length);
      std::optional<Error> failure;
      if (!stream_body(reader, w, failure)) return;  // gone; ~ChunkWriter removes the file
      send_json(res, 201, upload_json(w.finish()));
    } catch (const std::exception& e) {
      send_transfer_error(res, e);
    }
  });

  server.Put(R"(/v1/uploads/([A-Za-z0-9-]+))", [uploads](const httplib::Request& req,
                                                         httplib::Response& res,
                                                         const httplib::ContentReader& reader) {
    const std::string id = req.matches[1];
    try {
      if (!uploads) throw UploadNotFound(id);
      uint64_t start = 0;
      std::optional<uint64_t> length = content_length(req);
      if (req.has_header("Content-Range")) {
        const ContentRange cr = parse_content_range(req.get_header_value("Content-Range"));
        const UploadInfo now = uploads->get(id);
        if (now.size && cr.total != *now.size)
          throw BadRequest("upload " + id, "Content-Range", "total " + std::to_string(*now.size),
                           std::to_string(cr.total));
        if (length && *length != cr.length)
          throw BadRequest("upload " + id, "Content-Length",
                           std::to_string(cr.length) + " (as Content-Range says)",
                           std::to_string(*length));
        start = cr.start;
        length = cr.length;
      }
      ChunkWriter w = uploads->begin_chunk(id, start, length);
      std::optional<Error> failure;
      if (!stream_body(reader, w, failure)) return;  // the bytes that came are kept
      send_json(res, 200, upload_json(w.finish()));
    } catch (const UploadConflict& e) {
      send_transfer_error(res, e);
      try {  // tell the client where to resume
        nlohmann::json j = nlohmann::json::parse(res.body);
        j["upload"] = upload_json(uploads->get(id));
        res.set_content(j.dump(), "application/json");
      } catch (const std::exception&) {
      }
    } catch (const std::exception& e) {
      send_transfer_error(res, e);
    }
  });

  server.Get(R"(/v1/uploads/([A-Za-z0-9-]+))",
             [uploads](const httplib::Request& req, httplib::Response& res) {
               try {
                 if (!uploads) throw UploadNotFound(req.matches[1]);
                 send_json(res, 200, upload_json(uploads->get(req.matches[1])));
               } catch (const std::exception& e) {
                 send_transfer_error(res, e);
               }
             });

  server.Get("/v1/uploads", [uploads](const httplib::Request&, httplib::Response& res) {
    nlohmann::json list = nlohmann::json::array();
    if (uploads)
      for (const UploadInfo& u : uploads->list()) list.push_back(upload_json(u));
    send_json(res, 200, {{"uploads", list}});
  });

  server.Delete(R"(/v1/uploads/([A-Za-z0-9-]+))",
                [uploads](const httplib::Request& req, httplib::Response& res) {
                  try {
                    if (!uploads) throw UploadNotFound(req.matches[1]);
                    uploads->remove(req.matches[1]);
                    res.status = 204;
                  } catch (const std::exception& e) {
                    send_transfer_error(res, e);
                  }
                });
}

}  // namespace sdc::server::transfer
