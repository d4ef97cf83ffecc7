// InferdApi: inferd's own JSON API — what SageMaker lacks and its users ask for (the state of one
// invocation, an endpoint's backlog, cancelling queued work) — and the Prometheus metrics.
//
//   GET  /inferd/endpoints/{name}/invocations?state=Queued,InProgress&after=<seq>&limit=N
//        → {"Invocations": [Invocation…], "NextToken": "<seq>"}   (NextToken only when more)
//   GET  /inferd/endpoints/{name}/invocations/{inferenceId}   → Invocation
//   POST /inferd/endpoints/{name}/invocations/{inferenceId}/cancel → the cancelled Invocation
//        (a queued invocation ends as a failure "cancelled", with its notification; one that
//        already started or finished → 409 Conflict)
//   GET  /metrics → spec §6's metrics, Prometheus text format 0.0.4 (unauthenticated, read-only)
//
// Path segments are percent-decoded (an InferenceId holding '/' is sent as %2F). /inferd/ is
// SigV4-signed like every AWS API here (any service name; the CLI signs as "sagemaker"); the
// signature's region scopes the endpoint. Errors use the runtime's REST-JSON format
// (x-amzn-ErrorType + {"ErrorCode", "message"}) with the statuses of the error table's inferd
// column. The wire format is documented in docs/api.md.
//
// Handle() runs on an I/O thread; every backend call runs on the BlockingPool.
#pragma once

#include "api/router.h"
#include "api/runtime/backend.h"
#include "common/blocking_pool.h"

namespace inferd::api::runtime {

class InferdApi final : public ApiHandler {
 public:
  InferdApi(InvocationBackend& backend, BlockingPool& pool);
  void Handle(http::Request request, const http::sigv4::Identity& identity,
              http::Responder respond) override;
  // The metrics scrape (api::IsMetricsScrape) is open to scrapers that cannot sign; everything
  // else is signed.
  bool RequiresAuth(const http::Request& request) const override;

 private:
  InvocationBackend& backend_;
  BlockingPool& pool_;
};

}  // namespace inferd::api::runtime
