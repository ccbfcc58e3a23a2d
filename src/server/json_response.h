// JSON replies and errors in the shapes A1111 clients know (and the native and OpenAI routes
// reuse): 422 {"detail":[{"loc":[…],"msg":…,"type":…}]} for a request that fails validation,
// {"error":CLASS,"detail":…,"body":"","errors":…} for everything else, and the one mapping from
// an exception (engine, pipeline, decoding) to a status code.
#pragma once

#include <exception>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

namespace httplib {
struct Response;
}

namespace sdc::server {

// A request field that fails validation: pydantic-v1 style location, message and type, e.g.
// loc {"body","steps"}, "value is not a valid integer", "type_error.integer".
class ValidationError : public std::runtime_error {
 public:
  ValidationError(std::vector<nlohmann::json> loc, std::string msg, std::string type);
  const std::vector<nlohmann::json>& loc() const { return loc_; }
  const std::string& msg() const { return msg_; }
  const std::string& type() const { return type_; }
  nlohmann::json detail() const;  // [{"loc":…, "msg":…, "type":…}]

 private:
  std::vector<nlohmann::json> loc_;
  std::string msg_, type_;
};

// An error with an explicit status and A1111's {"error","detail","body","errors"} body.
class HttpError : public std::runtime_error {
 public:
  HttpError(int status, std::string detail, std::string error_class = "HTTPException");
  int status() const { return status_; }
  const std::string& detail() const { return detail_; }
  const std::string& error_class() const { return class_; }

 private:
  int status_;
  std::string detail_, class_;
};

void send_json(httplib::Response& res, int status, const nlohmann::json& body);
void send_error(httplib::Response& res, int status, const std::string& error_class,
                const std::string& detail, const std::string& errors = "");

// Maps the exception in flight to a reply: ValidationError → 422, HttpError → its status,
// engine QueueFull → 429 + Retry-After, NotFound → 404, BadName → 400, ShuttingDown → 503,
// sdc::UsageError → 422 (a value out of range), other sdc::Error → 400, bad_alloc → 503,
// anything else → 500. Never throws.
void send_exception(httplib::Response& res, std::exception_ptr e);

}  // namespace sdc::server
