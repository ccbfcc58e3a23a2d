// Error bodies and the exception → status mapping shared by every route.
#include "server/json_response.h"

#include <httplib.h>

#include "engine/engine_errors.h"

namespace sdc::server {

ValidationError::ValidationError(std::vector<nlohmann::json> loc, std::string msg, std::string type)
    : std::runtime_error(msg), loc_(std::move(loc)), msg_(std::move(msg)), type_(std::move(type)) {}

nlohmann::json ValidationError::detail() const {
  return nlohmann::json::array({{{"loc", loc_}, {"msg", msg_}, {"type", type_}}});
}

HttpError::HttpError(int status, std::string detail, std::string error_class)
    : std::runtime_error(detail),
      status_(status),
      detail_(std::move(detail)),
      class_(std::move(error_class)) {}

void send_json(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  // Invalid UTF-8 from a request (echoed prompts) is replaced, never a throw while replying.
  res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                  "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& error_class,
                const std::string& detail, const std::string& errors) {
  send_json(res, status,
            {{"error", error_class}, {"detail", detail}, {"body", ""}, {"errors", errors}});
}

void send_exception(httplib::Response& res, std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const ValidationError& v) {
    send_json(res, 422, {{"detail", v.detail()}});
  } catch (const HttpError& h) {
    send_error(res, h.status(), h.error_class(), h.detail());
  } catch (const engine::QueueFull& q) {
    res.set_header("Retry-After", std::to_string(q.retry_after_s()));
    send_error(res, 429, "QueueFull", q.what());
  } catch (const engine::NotFound& n) {
    send_error(res, 404, "NotFound", n.what());
  } catch (const engine::BadName& b) {
    send_error(res, 400, "BadName", b.what());
  } catch (const engine::ShuttingDown& s) {
    send_error(res, 503, "ShuttingDown", s.what());
  } catch (const UsageError& u) {
    const std::string field = u.key().empty() ? "body" : u.key();
    send_json(res, 422,
              {{"detail",
                nlohmann::json::array(
                    {{{"loc", {"body", field}}, {"msg", u.what()}, {"type", "value_error"}}})}});
  } catch (const Error& s) {
    send_error(res, 400, "Error", s.what());
  } catch (const std::bad_alloc&) {
    send_error(res, 503, "MemoryError", "out of memory");
  } catch (const std::exception& x) {
    send_error(res, 500, "InternalError", "", x.what());
  } catch (...) {
    send_error(res, 500, "InternalError", "", "unknown exception");
  }
}

}  // namespace sdc::server
