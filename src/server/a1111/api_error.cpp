// A1111's error bodies.
#include "server/a1111/api_error.h"

namespace sdc::server::a1111 {
namespace {

std::string summary(const std::vector<FieldError>& errors) {
  std::string s;
  for (const FieldError& e : errors) {
    if (!s.empty()) s += "; ";
    std::string where;
    for (const auto& part : e.loc) {
      if (!where.empty()) where += '.';
      where += part.is_string() ? part.get<std::string>() : part.dump();
    }
    s += where + ": " + e.msg;
  }
  return s;
}

}  // namespace

ValidationError::ValidationError(std::vector<FieldError> errors)
    : std::runtime_error(summary(errors)), errors_(std::move(errors)) {}

nlohmann::json ValidationError::body() const {
  nlohmann::json detail = nlohmann::json::array();
  for (const FieldError& e : errors_) {
    nlohmann::json item = {{"loc", e.loc}, {"msg", e.msg}, {"type", e.type}};
    if (!e.ctx.is_null()) item["ctx"] = e.ctx;
    detail.push_back(std::move(item));
  }
  return {{"detail", std::move(detail)}};
}

ApiError::ApiError(int status, std::string name, std::string detail, std::string errors)
    : std::runtime_error(detail.empty() ? errors : detail),
      status_(status),
      name_(std::move(name)),
      detail_(std::move(detail)),
      errors_(std::move(errors)) {}

nlohmann::json ApiError::body() const {
  return {{"error", name_}, {"detail", detail_}, {"body", ""}, {"errors", errors_}};
}

ApiError http_exception(int status, const std::string& detail) {
  return ApiError(status, "HTTPException", detail);
}

void FieldErrors::add(nlohmann::json loc, std::string msg, std::string type, nlohmann::json ctx) {
  errors_.push_back({std::move(loc), std::move(msg), std::move(type), std::move(ctx)});
}

void FieldErrors::throw_if_any() const {
  if (!errors_.empty()) throw ValidationError(errors_);
}

}  // namespace sdc::server::a1111
