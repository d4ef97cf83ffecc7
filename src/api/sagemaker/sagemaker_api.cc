#include "api/sagemaker/sagemaker_api.h"

#include <boost/json.hpp>
#include <string_view>
#include <unordered_map>

#include "api/sagemaker/validator.h"

namespace inferd::api::sagemaker {

namespace json = boost::json;

namespace {

using Op = Result<json::object> (catalog::Catalog::*)(const std::string&, const json::object&);

const std::unordered_map<std::string_view, Op>& Operations() {
  using C = catalog::Catalog;
  static const std::unordered_map<std::string_view, Op> kOps{
      {"CreateModel", &C::CreateModel},
      {"DescribeModel", &C::DescribeModel},
      {"ListModels", &C::ListModels},
      {"DeleteModel", &C::DeleteModel},
      {"CreateEndpointConfig", &C::CreateEndpointConfig},
      {"DescribeEndpointConfig", &C::DescribeEndpointConfig},
      {"ListEndpointConfigs", &C::ListEndpointConfigs},
      {"DeleteEndpointConfig", &C::DeleteEndpointConfig},
      {"CreateEndpoint", &C::CreateEndpoint},
      {"DescribeEndpoint", &C::DescribeEndpoint},
      {"ListEndpoints", &C::ListEndpoints},
      {"UpdateEndpoint", &C::UpdateEndpoint},
      {"UpdateEndpointWeightsAndCapacities", &C::UpdateEndpointWeightsAndCapacities},
      {"DeleteEndpoint", &C::DeleteEndpoint},
      {"AddTags", &C::AddTags},
      {"DeleteTags", &C::DeleteTags},
      {"ListTags", &C::ListTags},
  };
  return kOps;
}

http::Response JsonResponse(const json::object& body) {
  http::Response r;
  r.headers.Add("Content-Type", "application/x-amz-json-1.1");
  r.body = json::serialize(body);
  return r;
}

}  // namespace

SageMakerApi::SageMakerApi(catalog::Catalog& catalog, BlockingPool& pool)
    : catalog_(catalog), pool_(pool) {}

void SageMakerApi::Handle(http::Request request, const http::sigv4::Identity& identity,
                          http::Responder respond) {
  std::string_view target = request.headers.Get("X-Amz-Target").value_or("");
  constexpr std::string_view kPrefix = "SageMaker.";
  auto fail = [&](const Error& e, std::string operation) {
    http::Response r = MakeErrorResponse(Protocol::kSageMaker, e, request.request_id);
    r.operation = std::move(operation);
    respond(std::move(r));
  };
  if (target.substr(0, kPrefix.size()) != kPrefix) {
    return fail(Error(Errc::kUnknownOperation,
                      "Unknown operation " + std::string(target) + " for service SageMaker."),
                "SageMaker.?");
  }
  std::string op(target.substr(kPrefix.size()));
  std::string label = "SageMaker." + op;
  auto it = Operations().find(op);
  const auto& validator = EmbeddedValidator();
  if (it == Operations().end() && !(validator.ok() && validator->IsKnownOperation(op))) {
    return fail(Error(Errc::kUnknownOperation,
                      "Unknown operation " + std::string(target) + " for service SageMaker."),
                label);
  }
  if (it == Operations().end()) {
    return fail(Error(Errc::kNotImplemented,
                      "inferd does not implement the SageMaker operation " + op + "."),
                label);
  }
  json::value body;
  if (request.body.empty()) {
    body = json::object{};
  } else {
    boost::system::error_code ec;
    body = json::parse(request.body, ec);
    if (ec || !body.is_object()) {
      return fail(Error(Errc::kSerialization, "The request body is not a JSON object."), label);
    }
  }
  if (auto st = ValidateInput(op, body); !st.ok()) return fail(st.error(), label);

  pool_.Post([this, fn = it->second, region = identity.region, body = std::move(body),
              request_id = std::move(request.request_id), label = std::move(label),
              respond = std::move(respond)]() mutable {
    Result<json::object> result =
        CallGuarded(label, [&] { return (catalog_.*fn)(region, body.as_object()); });
    http::Response r = result.ok()
                           ? JsonResponse(*result)
                           : MakeErrorResponse(Protocol::kSageMaker, result.error(), request_id);
    r.operation = std::move(label);
    respond(std::move(r));
  });
}

}  // namespace inferd::api::sagemaker
