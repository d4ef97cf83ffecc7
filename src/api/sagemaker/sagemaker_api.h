// SageMakerApi: the control plane's JSON 1.1 front end. Reads the operation from X-Amz-Target,
// parses and validates the body against the API model, runs the Catalog operation on the blocking
// pool, and answers in JSON 1.1 (errors through api/error_table).
#pragma once

#include "api/router.h"
#include "catalog/catalog.h"
#include "common/blocking_pool.h"

namespace inferd::api::sagemaker {

class SageMakerApi final : public ApiHandler {
 public:
  SageMakerApi(catalog::Catalog& catalog, BlockingPool& pool);
  void Handle(http::Request request, const http::sigv4::Identity& identity,
              http::Responder respond) override;

 private:
  catalog::Catalog& catalog_;
  BlockingPool& pool_;
};

}  // namespace inferd::api::sagemaker
