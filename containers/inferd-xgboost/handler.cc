#include "inferd-xgboost/handler.h"

#include <spdlog/spdlog.h>

#include <memory>
#include <string>
#include <utility>

#include "inferd-xgboost/encode.h"
#include "model_server/model_server.h"

namespace inferd::xgboost_server {
namespace {

using containers::TextResponse;

// The container's statuses are part of the contract inferd-xgboost emulates, so they are chosen
// here rather than by inferd's API error table.
int StatusFor(Errc code) {
  switch (code) {
    case Errc::kValidation:
    case Errc::kSerialization:
      return 400;
    case Errc::kPayloadTooLarge:
      return 413;
    default:
      return 500;
  }
}

}  // namespace

XgboostHandler::XgboostHandler(const Model& model, BlockingPool& pool, HandlerOptions options)
    : model_(model), pool_(pool), options_(std::move(options)) {}

void XgboostHandler::Handle(http::Request request, http::Responder respond) {
  const std::string& path = request.path;
  const bool get = request.method == "GET" || request.method == "HEAD";
  http::Response response;
  if (path == "/ping") {
    response = get ? TextResponse(200, "") : TextResponse(405, "Use GET /ping.\n");
    response.operation = "Ping";
  } else if (path == "/invocations") {
    if (request.method != "POST") {
      response = TextResponse(405, "Use POST /invocations.\n");
    } else {
      auto shared = std::make_shared<http::Request>(std::move(request));
      pool_.Post([this, shared, respond = std::move(respond)] {
        http::Response r = Invoke(*shared);
        r.operation = "Invocations";
        respond(std::move(r));
      });
      return;
    }
  } else if (path == "/execution-parameters" && get) {
    response = TextResponse(200,
                            "{\"MaxConcurrentTransforms\": " + std::to_string(options_.workers) +
                                ", \"BatchStrategy\": \"MULTI_RECORD\", \"MaxPayloadInMB\": " +
                                std::to_string(options_.max_payload_bytes / (1024 * 1024)) + "}",
                            "application/json");
  } else {
    response = TextResponse(404, "inferd-xgboost serves GET /ping and POST /invocations.\n");
  }
  respond(std::move(response));
}

http::Response XgboostHandler::Invoke(const http::Request& request) const {
  if (request.body.empty()) return TextResponse(204, "");

  auto content_type = request.headers.Get("Content-Type");
  auto input = ResolveContentType(content_type);
  if (!input.ok()) return TextResponse(400, input.error().message);
  if (!input->has_value()) {
    return TextResponse(415, UnsupportedContentTypeMessage(content_type.value_or("")));
  }
  auto accept_header = request.headers.Get("Accept");
  auto output = NegotiateAccept(accept_header, options_.default_accept);
  if (!output) return TextResponse(406, UnsupportedAcceptMessage(accept_header.value_or("")));

  auto matrix = ParsePayload(**input, request.body, options_.libsvm_indexing);
  if (!matrix.ok()) return TextResponse(StatusFor(matrix.error().code), matrix.error().message);

  auto predictions = model_.Predict(*matrix, (*input)->name);
  if (!predictions.ok()) {
    spdlog::info("prediction refused: {}", predictions.error().message);
    return TextResponse(StatusFor(predictions.error().code),
                        "Unable to evaluate payload provided: " + predictions.error().message);
  }
  http::Response r;
  r.status = 200;
  r.headers.Set("Content-Type", output->content_type);
  r.body = Encode(*output, *predictions, options_.batch);
  return r;
}

http::Response XgboostHandler::ErrorResponse(const http::Request& request, const Error& error) {
  return TextResponse(StatusFor(error.code), error.message + "\n");
}

}  // namespace inferd::xgboost_server
