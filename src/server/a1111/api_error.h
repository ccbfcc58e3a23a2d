// The two error shapes of AUTOMATIC1111's API, as exceptions the adapter throws and the routes
// turn into responses:
//   - 422 {"detail": [{"loc": [...], "msg": ..., "type": ...}, ...]}: FastAPI's answer when the
//     request body fails pydantic v1 validation (wrong type, out of range, not JSON). All field
//     errors of one body are collected, as pydantic does, so a client sees every problem at once.
//   - {"error": <exception class>, "detail": ..., "body": "", "errors": ...} with any other status:
//     A1111's own handler for HTTPException (404 "Init image not found", 400 "Sampler not found")
//     and for anything else (500, the message in "errors").
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sdc::server::a1111 {

// One pydantic v1 error item. `loc` starts with "body"; `ctx` is omitted when null.
struct FieldError {
  nlohmann::json loc;  // e.g. ["body", "steps"] or ["body", "styles", 0]
  std::string msg;     // e.g. "value is not a valid integer"
  std::string type;    // e.g. "type_error.integer"
  nlohmann::json ctx;  // e.g. {"limit_value": 150}
};

class ValidationError : public std::runtime_error {
 public:
  explicit ValidationError(std::vector<FieldError> errors);
  const std::vector<FieldError>& errors() const { return errors_; }
  // {"detail": [...]}
  nlohmann::json body() const;

 private:
  std::vector<FieldError> errors_;
};

// An error with an HTTP status. `name` is the "error" field: the Python class A1111 would name
// ("HTTPException" for the errors it raises on purpose, "RuntimeError", "KeyError", …).
class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string name, std::string detail, std::string errors = "");
  int status() const { return status_; }
  // {"error", "detail", "body", "errors"}
  nlohmann::json body() const;

 private:
  int status_;
  std::string name_, detail_, errors_;
};

// A1111's HTTPException(status, detail): {"error": "HTTPException", "detail": detail, …}.
ApiError http_exception(int status, const std::string& detail);

// Accumulates field errors while a body is read; throw_if_any() throws them as one
// ValidationError.
class FieldErrors {
 public:
  void add(nlohmann::json loc, std::string msg, std::string type, nlohmann::json ctx = nullptr);
  bool empty() const { return errors_.empty(); }
  size_t size() const { return errors_.size(); }
  void throw_if_any() const;

 private:
  std::vector<FieldError> errors_;
};

}  // namespace sdc::server::a1111
