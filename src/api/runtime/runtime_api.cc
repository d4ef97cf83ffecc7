#include "api/runtime/runtime_api.h"

#include <boost/json.hpp>
#include <cctype>

#include "api/runtime/request_parse.h"

namespace inferd::api::runtime {

namespace json = boost::json;

namespace {

constexpr std::size_t kMaxOriginalMessage = 2048;  // the model's Message shape

// At most `max` bytes of `s`, cut at a UTF-8 code point boundary.
std::string Truncate(const std::string& s, std::size_t max) {
  if (s.size() <= max) return s;
  std::size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n);
}

// The first "(NNN)" in a message, for a ModelError the backend reported as an Error.
int StatusInMessage(const std::string& message) {
  for (std::size_t i = 0; i + 4 < message.size(); ++i) {
    if (message[i] == '(' && std::isdigit(static_cast<unsigned char>(message[i + 1])) &&
        std::isdigit(static_cast<unsigned char>(message[i + 2])) &&
        std::isdigit(static_cast<unsigned char>(message[i + 3])) && message[i + 4] == ')') {
      return std::stoi(message.substr(i + 1, 3));
    }
  }
  return 0;
}

// The container's body inside the dispatcher's wording: `... with message "<body>". See ...`.
std::string OriginalMessageIn(const std::string& message) {
  constexpr std::string_view kOpen = "with message \"";
  constexpr std::string_view kClose = "\". See";
  auto open = message.find(kOpen);
  if (open == std::string::npos) return "";
  open += kOpen.size();
  auto close = message.rfind(kClose);
  if (close == std::string::npos || close < open) return "";
  return message.substr(open, close - open);
}

http::Response Fail(const Error& e, const std::string& request_id, std::string operation) {
  http::Response r = MakeErrorResponse(Protocol::kRuntime, e, request_id);
  r.operation = std::move(operation);
  return r;
}

std::string LogStreamArn(const std::string& region, const std::string& account_id,
                         const std::string& endpoint) {
  return "arn:aws:logs:" + region + ":" + account_id + ":log-group:/aws/sagemaker/Endpoints/" +
         endpoint;
}

// The runtime's ModelError response for `message`, with `members` (OriginalStatusCode, ...)
// added to its JSON body.
http::Response ModelErrorWith(const std::string& message, const std::string& request_id,
                              json::object members) {
  http::Response r =
      MakeErrorResponse(Protocol::kRuntime, Error(Errc::kModelError, message), request_id);
  boost::system::error_code ec;
  json::value body = json::parse(r.body, ec);
  if (!ec && body.is_object()) {
    for (auto& [key, value] : members) body.get_object()[key] = std::move(value);
    r.body = json::serialize(body);
  }
  return r;
}

// ModelError (424) for a container's non-2xx answer to InvokeEndpoint, in SageMaker's shape:
// x-amzn-ErrorType ModelError, body {"ErrorCode", "message", "OriginalStatusCode",
// "OriginalMessage", "LogStreamArn"}.
http::Response ModelErrorResponse(int original_status, const std::string& original_body,
                                  const std::string& region, const std::string& account_id,
                                  const std::string& endpoint, const std::string& request_id) {
  std::string original = Truncate(original_body, kMaxOriginalMessage);
  std::string kind = original_status >= 500 ? "server" : "client";
  std::string message = "Received " + kind + " error (" + std::to_string(original_status) +
                        ") from primary with message \"" + original + "\". See `inferd logs " +
                        endpoint + "` for more information.";
  return ModelErrorWith(message, request_id,
                        {{"OriginalStatusCode", original_status},
                         {"OriginalMessage", original},
                         {"LogStreamArn", LogStreamArn(region, account_id, endpoint)}});
}

// The same from the Dispatcher's Error (kModelError): its message is kept; OriginalStatusCode is
// the first "(NNN)" in it and OriginalMessage the text between `with message "` and `". See`
// (both left out when the container never answered, e.g. a timeout).
http::Response ModelErrorFromMessage(const std::string& message, const std::string& region,
                                     const std::string& account_id, const std::string& endpoint,
                                     const std::string& request_id) {
  json::object members;
  // A timeout has no status: the container never answered.
  if (int status = StatusInMessage(message); status > 0) {
    members["OriginalStatusCode"] = status;
    members["OriginalMessage"] = Truncate(OriginalMessageIn(message), kMaxOriginalMessage);
  }
  members["LogStreamArn"] = LogStreamArn(region, account_id, endpoint);
  return ModelErrorWith(message, request_id, std::move(members));
}

}  // namespace

RuntimeApi::RuntimeApi(InvocationBackend& backend, BlockingPool& pool, std::string account_id)
    : backend_(backend), pool_(pool), account_id_(std::move(account_id)) {}

void RuntimeApi::Handle(http::Request request, const http::sigv4::Identity& identity,
                        http::Responder respond) {
  auto path = ParseRuntimePath(request.path);
  if (!path.ok()) {
    return respond(Fail(Error(Errc::kUnknownOperation, path.error().message), request.request_id,
                        "SageMakerRuntime.?"));
  }
  if (path->async) {
    InvokeAsync(std::move(request), identity.region, std::move(respond));
  } else {
    Invoke(std::move(request), identity.region, std::move(respond));
  }
}

void RuntimeApi::InvokeAsync(http::Request request, const std::string& region,
                             http::Responder respond) {
  static const std::string kOperation = "SageMakerRuntime.InvokeEndpointAsync";
  std::string request_id = std::move(request.request_id);
  auto parsed = ParseInvokeEndpointAsync(std::move(request), region);
  if (!parsed.ok()) return respond(Fail(parsed.error(), request_id, kOperation));
  backend_.Accept(
      std::move(parsed).value(), [request_id = std::move(request_id), respond = std::move(respond)](
                                     Result<dispatch::Accepted> accepted) {
        if (!accepted.ok()) {
          return respond(Fail(accepted.error(), request_id, kOperation));
        }
        http::Response r;
        r.status = 202;
        r.headers.Reserve(3);
        r.headers.Add("Content-Type", "application/json");
        r.headers.Add("X-Amzn-SageMaker-OutputLocation", std::move(accepted->output_location));
        if (!accepted->failure_location.empty()) {
          r.headers.Add("X-Amzn-SageMaker-FailureLocation", std::move(accepted->failure_location));
        }
        r.body = json::serialize(json::object{{"InferenceId", accepted->inference_id}});
        r.operation = kOperation;
        respond(std::move(r));
      });
}

void RuntimeApi::Invoke(http::Request request, const std::string& region, http::Responder respond) {
  static const std::string kOperation = "SageMakerRuntime.InvokeEndpoint";
  std::string request_id = std::move(request.request_id);
  auto parsed = ParseInvokeEndpoint(std::move(request), region);
  if (!parsed.ok()) return respond(Fail(parsed.error(), request_id, kOperation));
  pool_.Post([this, sync = std::move(parsed).value(), request_id = std::move(request_id),
              respond = std::move(respond)]() mutable {
    Result<dispatch::SyncResponse> answer =
        CallGuarded(kOperation, [&] { return backend_.InvokeSync(sync); });
    http::Response r;
    if (!answer.ok()) {
      const Error& e = answer.error();
      if (e.code == Errc::kModelError) {
        r = ModelErrorFromMessage(e.message, sync.region, account_id_, sync.endpoint, request_id);
      } else {
        r = Fail(e, request_id, kOperation);
      }
    } else if (answer->status < 200 || answer->status > 299) {
      r = ModelErrorResponse(answer->status, answer->body, sync.region, account_id_, sync.endpoint,
                             request_id);
    } else {
      r.status = 200;
      r.headers.Add("Content-Type", answer->content_type.empty() ? "application/octet-stream"
                                                                 : answer->content_type);
      if (!answer->variant.empty()) {
        r.headers.Add("x-Amzn-Invoked-Production-Variant", answer->variant);
      }
      if (!answer->custom_attributes.empty()) {
        r.headers.Add("X-Amzn-SageMaker-Custom-Attributes", answer->custom_attributes);
      }
      r.body = std::move(answer->body);
    }
    r.operation = kOperation;
    respond(std::move(r));
  });
}

}  // namespace inferd::api::runtime
