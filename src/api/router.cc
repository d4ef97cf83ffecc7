#include "api/router.h"

#include <spdlog/spdlog.h>

namespace inferd::api {
namespace {

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

bool HasActionParam(std::string_view query) {
  return StartsWith(query, "Action=") || query.find("&Action=") != std::string_view::npos;
}

}  // namespace

std::optional<RuntimeTarget> MatchRuntimePath(std::string_view path) {
  constexpr std::string_view kPrefix = "/endpoints/";
  if (!StartsWith(path, kPrefix)) return std::nullopt;
  auto rest = path.substr(kPrefix.size());
  auto slash = rest.find('/');
  if (slash == 0 || slash == std::string_view::npos) return std::nullopt;
  auto op = rest.substr(slash + 1);
  if (op != "invocations" && op != "async-invocations") return std::nullopt;
  return RuntimeTarget{rest.substr(0, slash), op == "async-invocations"};
}

Error InternalError(std::string_view operation, const std::exception& e) {
  spdlog::error("{} failed: {}", operation, e.what());
  return Error(Errc::kInternal, std::string("internal error: ") + e.what());
}

bool IsMetricsScrape(const http::Request& req) {
  return req.path == "/metrics" && req.method == "GET" && req.query.empty();
}

Protocol Classify(const http::Request& req) {
  if (req.headers.Has("X-Amz-Target")) return Protocol::kSageMaker;
  // The bucket name "inferd" is reserved for this API (S3's CreateBucket refuses it).
  if (StartsWith(req.path, "/inferd/") || IsMetricsScrape(req)) return Protocol::kInferd;
  // A query string makes it S3 (e.g. POST /endpoints/k?uploads is CreateMultipartUpload).
  if (req.method == "POST" && req.query.empty() && MatchRuntimePath(req.path)) {
    return Protocol::kRuntime;
  }
  if (req.path == "/") {
    auto type = req.headers.Get("Content-Type").value_or("");
    if (req.method == "POST" && StartsWith(type, "application/x-www-form-urlencoded")) {
      return Protocol::kSns;
    }
    if (HasActionParam(req.query)) return Protocol::kSns;
  }
  // S3 bucket names are lower case, so this path can never name a bucket.
  if (req.method == "GET" && StartsWith(req.path, "/SimpleNotificationService-")) {
    return Protocol::kSns;
  }
  return Protocol::kS3;
}

Router::Router(const http::sigv4::Verifier& verifier, Apis apis)
    : verifier_(verifier), apis_(apis) {}

ApiHandler* Router::ApiFor(Protocol protocol) const {
  switch (protocol) {
    case Protocol::kSageMaker:
      return apis_.sagemaker;
    case Protocol::kRuntime:
      return apis_.runtime;
    case Protocol::kSns:
      return apis_.sns;
    case Protocol::kS3:
      return apis_.s3;
    case Protocol::kInferd:
      return apis_.inferd;
  }
  return apis_.s3;
}

bool Router::StreamBody(const http::Request& head) {
  return ApiFor(Classify(head))->StreamBody(head);
}

void Router::Handle(http::Request request, http::Responder respond) {
  Protocol protocol = Classify(request);
  ApiHandler* api = ApiFor(protocol);
  http::sigv4::Identity identity;
  if (api->RequiresAuth(request)) {
    auto verified = verifier_.Verify(request);
    if (!verified.ok()) {
      http::Response r = MakeErrorResponse(protocol, verified.error(), request.request_id);
      r.operation = std::string(ProtocolName(protocol)) + ".Auth";
      respond(std::move(r));
      return;
    }
    identity = std::move(verified).value();
  }
  api->Handle(std::move(request), identity, std::move(respond));
}

http::Response Router::ErrorResponse(const http::Request& request, const Error& error) {
  Protocol protocol = Classify(request);
  http::Response r = MakeErrorResponse(protocol, error, request.request_id);
  r.operation = std::string(ProtocolName(protocol));
  return r;
}

NotImplementedApi::NotImplementedApi(Protocol protocol, std::string what)
    : protocol_(protocol), what_(std::move(what)) {}

void NotImplementedApi::Handle(http::Request request, const http::sigv4::Identity&,
                               http::Responder respond) {
  http::Response r = MakeErrorResponse(
      protocol_,
      Error(Errc::kNotImplemented, "inferd does not implement the " + what_ + " API yet."),
      request.request_id);
  r.operation = std::string(ProtocolName(protocol_));
  respond(std::move(r));
}

}  // namespace inferd::api
