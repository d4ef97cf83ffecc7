#include "api/sns/sns_api.h"

#include "api/sns/sns_params.h"
#include "http/uri.h"
#include "notify/envelope.h"

namespace inferd::api::sns {

namespace {

bool IsSigned(const http::Request& request) {
  if (request.headers.Has("Authorization")) return true;
  auto params = http::ParseQuery(request.query);
  return http::FindParam(params, "X-Amz-Signature").has_value();
}

}  // namespace

SnsApi::SnsApi(notify::Notifier& notifier, BlockingPool& pool) : notifier_(notifier), pool_(pool) {}

bool SnsApi::RequiresAuth(const http::Request& request) const {
  if (request.method != "GET") return true;
  if (request.path.rfind("/SimpleNotificationService-", 0) == 0) return false;
  if (request.path != "/" || IsSigned(request)) return true;
  auto params = http::ParseQuery(request.query);
  auto action = http::FindParam(params, "Action").value_or("");
  return action != "ConfirmSubscription" && action != "Unsubscribe";
}

void SnsApi::Handle(http::Request request, const http::sigv4::Identity& identity,
                    http::Responder respond) {
  auto fail = [&](const Error& e, std::string operation) {
    http::Response r = MakeErrorResponse(Protocol::kSns, e, request.request_id);
    r.operation = std::move(operation);
    respond(std::move(r));
  };
  if (request.method == "GET" && request.path.rfind("/SimpleNotificationService-", 0) == 0) {
    const notify::Signer& signer = notifier_.signer();
    if (request.path != notify::SigningCertPath(signer.cert_id())) {
      return fail(
          Error(Errc::kNotFound, "No signing certificate at " + request.path + ".", "NotFound"),
          "SNS.SigningCert");
    }
    http::Response r;
    r.headers.Add("Content-Type", "application/x-x509-ca-cert");
    r.body = signer.cert_pem();
    r.operation = "SNS.SigningCert";
    respond(std::move(r));
    return;
  }
  if (request.method != "GET" && request.method != "POST") {
    return fail(
        Error(Errc::kUnknownOperation,
              "SNS accepts GET and POST requests, not " + request.method + ".", "InvalidAction"),
        "SNS.?");
  }
  Params params = Params::FromRequest(request);
  std::string action = params.GetOr("Action");
  if (action.empty()) {
    return fail(
        Error(Errc::kUnknownOperation, "Missing required parameter Action.", "MissingAction"),
        "SNS.?");
  }
  notify::Caller caller{identity.region, !identity.access_key_id.empty()};
  pool_.Post([this, action = std::move(action), params = std::move(params), caller,
              request_id = std::move(request.request_id), respond = std::move(respond)]() mutable {
    Result<std::string> body = CallGuarded(
        "SNS." + action, [&] { return RunAction(notifier_, action, params, caller, request_id); });
    http::Response r;
    if (body.ok()) {
      r.headers.Add("Content-Type", "text/xml");
      r.body = std::move(body).value();
    } else {
      r = MakeErrorResponse(Protocol::kSns, body.error(), request_id);
    }
    r.operation = "SNS." + action;
    respond(std::move(r));
  });
}

}  // namespace inferd::api::sns
