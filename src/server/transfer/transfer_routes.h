// The HTTP face of the server-file browser and the upload store:
//   GET    /v1/files?root=models|imports&path=REL   a folder's sub-folders and model files
//   GET    /v1/files/info?root=…&path=REL          one model file's description
//   POST   /v1/uploads   JSON {"name", "size"}      → 201 a resumable upload (id, received 0)
//   POST   /v1/uploads?name=NAME  raw body          → 201 the whole file in one request
//   PUT    /v1/uploads/{id}  [Content-Range: bytes START-END/SIZE]  a chunk, appended at START
//   GET    /v1/uploads[/{id}]                      where uploads stand (`received` = resume here)
//   DELETE /v1/uploads/{id}                        abort / delete, the file removed
// Errors are JSON {"error": KIND, "detail": MESSAGE} with 400 (bad path or input), 404, 409
// (offset, busy, in use — the body then also carries the upload so a client can resume), 413.
#pragma once

#include <httplib.h>

#include "server/transfer/file_browser.h"
#include "server/transfer/upload_store.h"

namespace sdc::server::transfer {

struct TransferServices {
  FileBrowser* files = nullptr;    // null: /v1/files answers 404
  UploadStore* uploads = nullptr;  // null: /v1/uploads answers 404
};

// Registers the routes above on `server`; `services` must outlive it.
void add_transfer_routes(httplib::Server& server, const TransferServices& services);

// {"error": kind, "detail": e.what()} with the status that fits the exception's type (used by
// the convert routes too).
void send_transfer_error(httplib::Response& res, const std::exception& e);

nlohmann::json upload_json(const UploadInfo& u);
nlohmann::json file_entry_json(const FileEntry& e);

}  // namespace sdc::server::transfer
