// RuntimeApi: the sagemaker-runtime front end (REST-JSON, spec §2).
//
//   POST /endpoints/{name}/async-invocations  InvokeEndpointAsync → 202 {"InferenceId": …},
//        X-Amzn-SageMaker-OutputLocation and (when the endpoint has an S3FailurePath)
//        X-Amzn-SageMaker-FailureLocation; answered once the invocation is durable.
//   POST /endpoints/{name}/invocations        InvokeEndpoint → 200 with the container's body and
//        Content-Type, x-Amzn-Invoked-Production-Variant, X-Amzn-SageMaker-Custom-Attributes;
//        a container error is ModelError (424) with OriginalStatusCode and OriginalMessage.
//
// Handle() runs on an I/O thread: it parses and validates the request there (cheap), hands
// InvokeEndpointAsync to InvocationBackend::Accept (non-blocking) and runs InvokeEndpoint on the
// BlockingPool. Errors go through api/error_table (runtime column: x-amzn-ErrorType + JSON body).
#pragma once

#include <string>

#include "api/router.h"
#include "api/runtime/backend.h"
#include "common/blocking_pool.h"

namespace inferd::api::runtime {

class RuntimeApi final : public ApiHandler {
 public:
  // `account_id` names the account in ModelError's LogStreamArn.
  RuntimeApi(InvocationBackend& backend, BlockingPool& pool, std::string account_id);
  void Handle(http::Request request, const http::sigv4::Identity& identity,
              http::Responder respond) override;

 private:
  void InvokeAsync(http::Request request, const std::string& region, http::Responder respond);
  void Invoke(http::Request request, const std::string& region, http::Responder respond);

  InvocationBackend& backend_;
  BlockingPool& pool_;
  std::string account_id_;
};

}  // namespace inferd::api::runtime
