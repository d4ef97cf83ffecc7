// XgboostHandler: the HTTP face of inferd-xgboost (hosting contract, spec §7.1; the SageMaker
// XGBoost container's behaviour, spec §7.2).
//
//   GET  /ping                   200 (the model is loaded before the server starts listening)
//   POST /invocations            Content-Type → parse → predict → encode by Accept, on the pool
//   GET  /execution-parameters   Batch Transform's parameters, as the container answers them
//
// Handle() runs on an I/O thread and never blocks: parsing and prediction run on the
// BlockingPool, which responds from there. The Model and the pool outlive the handler's use.
#pragma once

#include <cstddef>

#include "common/blocking_pool.h"
#include "http/message.h"
#include "inferd-xgboost/content_types.h"
#include "inferd-xgboost/model.h"
#include "inferd-xgboost/payload.h"

namespace inferd::xgboost_server {

// Read from the environment by main.cc.
struct HandlerOptions {
  // SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT: the response type for no Accept or */*.
  OutputType default_accept{OutputFormat::kCsv, "text/csv"};
  // SAGEMAKER_BATCH: CSV with one prediction per line.
  bool batch = false;
  // INFERD_LIBSVM_INDEXING.
  LibsvmIndexing libsvm_indexing = LibsvmIndexing::kAuto;
  // Reported by /execution-parameters.
  int workers = 1;
  size_t max_payload_bytes = 6 * 1024 * 1024;
};

class XgboostHandler : public http::Handler {
 public:
  XgboostHandler(const Model& model, BlockingPool& pool, HandlerOptions options);

  void Handle(http::Request request, http::Responder respond) override;
  http::Response ErrorResponse(const http::Request& request, const Error& error) override;

  // The whole /invocations exchange, synchronously (the pool runs it; tests call it directly).
  http::Response Invoke(const http::Request& request) const;

 private:
  const Model& model_;
  BlockingPool& pool_;
  HandlerOptions options_;
};

}  // namespace inferd::xgboost_server
