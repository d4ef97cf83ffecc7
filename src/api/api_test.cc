#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "api/protocol.h"
#include "api/router.h"

namespace inferd::api {
namespace {

http::Request Req(std::string method, std::string path, std::string query = "") {
  http::Request r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.query = std::move(query);
  return r;
}

TEST(Classify, RoutesByRequestShape) {
  auto sm = Req("POST", "/");
  sm.headers.Add("X-Amz-Target", "SageMaker.ListModels");
  EXPECT_EQ(Classify(sm), Protocol::kSageMaker);
  EXPECT_EQ(Classify(Req("POST", "/endpoints/ep/async-invocations")), Protocol::kRuntime);
  EXPECT_EQ(Classify(Req("POST", "/endpoints/ep/invocations")), Protocol::kRuntime);
  // S3 multipart upload on a bucket called "endpoints" is still S3.
  EXPECT_EQ(Classify(Req("POST", "/endpoints/ep/invocations", "uploads")), Protocol::kS3);
  EXPECT_EQ(Classify(Req("GET", "/endpoints/ep/invocations")), Protocol::kS3);
  auto sns = Req("POST", "/");
  sns.headers.Add("Content-Type", "application/x-www-form-urlencoded; charset=utf-8");
  EXPECT_EQ(Classify(sns), Protocol::kSns);
  EXPECT_EQ(Classify(Req("GET", "/", "Action=ConfirmSubscription&Token=x")), Protocol::kSns);
  EXPECT_EQ(Classify(Req("GET", "/")), Protocol::kS3);  // ListBuckets
  EXPECT_EQ(Classify(Req("PUT", "/bucket/key")), Protocol::kS3);
}

TEST(Classify, InferdApiAndMetrics) {
  EXPECT_EQ(Classify(Req("GET", "/inferd/endpoints/ep/invocations")), Protocol::kInferd);
  EXPECT_EQ(Classify(Req("POST", "/inferd/endpoints/ep/invocations/i/cancel")), Protocol::kInferd);
  EXPECT_EQ(Classify(Req("GET", "/metrics")), Protocol::kInferd);
  // A bucket called "metrics" is still S3 when listed with a query or written to.
  EXPECT_EQ(Classify(Req("GET", "/metrics", "list-type=2")), Protocol::kS3);
  EXPECT_EQ(Classify(Req("PUT", "/metrics")), Protocol::kS3);
  EXPECT_EQ(Classify(Req("GET", "/metrics/key")), Protocol::kS3);
  EXPECT_EQ(Classify(Req("GET", "/inferd")), Protocol::kS3);  // the reserved bucket: NoSuchBucket
}

TEST(Classify, RuntimePathGrammar) {
  auto async = MatchRuntimePath("/endpoints/my%2Dep/async-invocations");
  ASSERT_TRUE(async.has_value());
  EXPECT_EQ(async->encoded_endpoint, "my%2Dep");  // decoding is the runtime's business
  EXPECT_TRUE(async->async);
  auto sync = MatchRuntimePath("/endpoints/ep/invocations");
  ASSERT_TRUE(sync.has_value());
  EXPECT_EQ(sync->encoded_endpoint, "ep");
  EXPECT_FALSE(sync->async);
  for (const char* other : {"/endpoints//invocations", "/endpoints/ep", "/endpoints/ep/",
                            "/endpoints/ep/invocations/x", "/endpoint/ep/invocations"}) {
    EXPECT_FALSE(MatchRuntimePath(other).has_value()) << other;
  }
}

TEST(ErrorTable, InferdColumnUsesHttpStatuses) {
  EXPECT_EQ(LookupError(Protocol::kInferd, Error(Errc::kNotFound, "")).status, 404);
  EXPECT_EQ(LookupError(Protocol::kInferd, Error(Errc::kInvalidState, "")).status, 409);
  EXPECT_EQ(LookupError(Protocol::kInferd, Error(Errc::kInvalidState, "")).code, "Conflict");
  auto r = MakeErrorResponse(Protocol::kInferd, Error(Errc::kInvalidState, "started"), "rid");
  EXPECT_EQ(r.headers.Get("x-amzn-ErrorType").value(), "Conflict");
  EXPECT_EQ(boost::json::parse(r.body).at("message").as_string(), "started");
}

TEST(ErrorTable, NotFoundDiffersPerProtocol) {
  Error e(Errc::kNotFound, "Could not find model \"arn\".");
  EXPECT_EQ(LookupError(Protocol::kSageMaker, e).status, 400);
  EXPECT_EQ(LookupError(Protocol::kSageMaker, e).code, "ValidationException");
  EXPECT_EQ(LookupError(Protocol::kRuntime, e).code, "ValidationError");
  EXPECT_EQ(LookupError(Protocol::kS3, e).status, 404);
  EXPECT_EQ(LookupError(Protocol::kS3, Error(Errc::kNotFound, "", "NoSuchBucket")).code,
            "NoSuchBucket");
}

TEST(ErrorTable, EveryErrcHasARow) {
  for (int i = 0; i <= static_cast<int>(Errc::kInternal); ++i) {
    EXPECT_TRUE(ErrorTableCovers(static_cast<Errc>(i))) << ErrcName(static_cast<Errc>(i));
  }
}

TEST(ErrorResponse, FormatsEachProtocol) {
  Error e(Errc::kBadSignature, "bad <sig>");
  auto sm = MakeErrorResponse(Protocol::kSageMaker, e, "rid");
  EXPECT_EQ(sm.status, 403);
  auto body = boost::json::parse(sm.body).as_object();
  EXPECT_EQ(body.at("__type").as_string(), "InvalidSignatureException");
  EXPECT_EQ(body.at("message").as_string(), "bad <sig>");
  auto rt = MakeErrorResponse(Protocol::kRuntime, e, "rid");
  EXPECT_EQ(rt.headers.Get("x-amzn-ErrorType").value(), "InvalidSignatureException");
  auto s3 = MakeErrorResponse(Protocol::kS3, e, "rid");
  EXPECT_NE(s3.body.find("<Code>SignatureDoesNotMatch</Code>"), std::string::npos);
  EXPECT_NE(s3.body.find("<Message>bad &lt;sig&gt;</Message>"), std::string::npos);
  auto sns = MakeErrorResponse(Protocol::kSns, e, "rid");
  EXPECT_NE(sns.body.find("<Type>Sender</Type><Code>SignatureDoesNotMatch</Code>"),
            std::string::npos);
}

}  // namespace
}  // namespace inferd::api
