// Router: the server's Handler. Recognises which API a request is aimed at from its shape,
// authenticates it (SigV4), and hands it to that API's front end; errors before that point
// (authentication, transport) are answered in the protocol the request was aimed at.
//
//   X-Amz-Target present                          → SageMaker control plane (JSON 1.1)
//   POST /endpoints/{name}/(async-)invocations    → runtime (REST-JSON)
//   POST / form-encoded, or ?Action= on /,
//   GET /SimpleNotificationService-<id>.pem       → SNS (Query; the signing certificate)
//   /inferd/..., GET /metrics (no query)          → inferd's own API (JSON; metrics unsigned)
//   anything else                                 → S3 (REST-XML)
//
// Thread-safety: Handle() runs on I/O threads concurrently; the router holds no mutable state.
#pragma once

#include <exception>
#include <memory>
#include <optional>
#include <string_view>

#include "api/protocol.h"
#include "http/message.h"
#include "http/sigv4.h"

namespace inferd::api {

// One API's front end. `identity` is the verified signer (its region scopes regional resources).
class ApiHandler {
 public:
  virtual ~ApiHandler() = default;
  virtual void Handle(http::Request request, const http::sigv4::Identity& identity,
                      http::Responder respond) = 0;
  // Whether the request must carry a valid signature. Unsigned requests an API accepts (SNS's
  // SubscribeURL/UnsubscribeURL links and signing certificate, S3 anonymous reads…) reach Handle()
  // with an empty Identity.
  virtual bool RequiresAuth(const http::Request& request) const { return true; }
  // See http::Handler::StreamBody.
  virtual bool StreamBody(const http::Request& head) { return false; }
};

// Runs an API's blocking call (on a pool thread): an exception escaping it is logged under
// `operation` and becomes kInternal "internal error: <what>" (500), so a bug answers the request
// instead of taking the pool thread down.
Error InternalError(std::string_view operation, const std::exception& e);  // logs
template <class Call>
auto CallGuarded(std::string_view operation, Call&& call) -> decltype(call()) {
  try {
    return call();
  } catch (const std::exception& e) {
    return InternalError(operation, e);
  }
}

Protocol Classify(const http::Request& request);

// The runtime's two paths, /endpoints/{name}/invocations and /endpoints/{name}/async-invocations:
// the name (still percent-encoded) and which of the two; nullopt for any other path.
struct RuntimeTarget {
  std::string_view encoded_endpoint;
  bool async = false;
};
std::optional<RuntimeTarget> MatchRuntimePath(std::string_view path);

// GET /metrics without a query: the Prometheus scrape, served unsigned by the inferd API. A bucket
// named "metrics" is still listed by ListObjectsV2 (?list-type=2) and boto3's ListObjects
// (?encoding-type=url).
bool IsMetricsScrape(const http::Request& request);

class Router final : public http::Handler {
 public:
  struct Apis {
    ApiHandler* sagemaker = nullptr;
    ApiHandler* runtime = nullptr;
    ApiHandler* sns = nullptr;
    ApiHandler* s3 = nullptr;
    ApiHandler* inferd = nullptr;  // /inferd/ and /metrics
  };
  Router(const http::sigv4::Verifier& verifier, Apis apis);

  void Handle(http::Request request, http::Responder respond) override;
  bool StreamBody(const http::Request& head) override;
  http::Response ErrorResponse(const http::Request& request, const Error& error) override;

 private:
  const http::sigv4::Verifier& verifier_;
  ApiHandler* ApiFor(Protocol protocol) const;

  Apis apis_;
};

// Answers every request with 501 NotImplemented in its protocol's format: the front end for an
// API whose implementation has not landed yet.
class NotImplementedApi final : public ApiHandler {
 public:
  NotImplementedApi(Protocol protocol, std::string what);
  void Handle(http::Request request, const http::sigv4::Identity& identity,
              http::Responder respond) override;

 private:
  Protocol protocol_;
  std::string what_;
};

}  // namespace inferd::api
