// RuntimeApi and InferdApi over a fake backend: what a client sees on the wire.
#include "api/runtime/runtime_api.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <future>
#include <stdexcept>
#include <thread>

#include "api/runtime/inferd_api.h"
#include "api/runtime/request_parse.h"

namespace inferd::api::runtime {
namespace {

namespace json = boost::json;

class FakeBackend final : public InvocationBackend {
 public:
  // What the next calls answer.
  Result<dispatch::Accepted> accept_result = dispatch::Accepted{};
  Result<dispatch::SyncResponse> sync_result = dispatch::SyncResponse{};
  Result<dispatch::InvocationStatus> status_result = dispatch::InvocationStatus{};
  std::vector<dispatch::InvocationStatus> listed;
  std::string metrics = "# metrics\n";
  bool sync_throws = false;

  // What the calls received.
  int accept_calls = 0;
  dispatch::AcceptRequest accepted;
  dispatch::SyncRequest invoked;
  std::vector<queue::InvocationState> list_states;
  int64_t list_after = -1;
  int list_limit = -1;
  std::string described;

  void Accept(dispatch::AcceptRequest request,
              std::function<void(Result<dispatch::Accepted>)> done) override {
    ++accept_calls;
    accepted = request;
    std::thread([done = std::move(done), result = accept_result] { done(result); }).detach();
  }
  Result<dispatch::SyncResponse> InvokeSync(const dispatch::SyncRequest& request) override {
    invoked = request;
    if (sync_throws) throw std::runtime_error("boom");
    return sync_result;
  }
  Result<dispatch::InvocationStatus> Describe(const std::string& region,
                                              const std::string& endpoint,
                                              const std::string& inference_id) override {
    described = region + "/" + endpoint + "/" + inference_id;
    return status_result;
  }
  Result<std::vector<dispatch::InvocationStatus>> List(
      const std::string&, const std::string&, const std::vector<queue::InvocationState>& states,
      int64_t after_seq, int limit) override {
    list_states = states;
    list_after = after_seq;
    list_limit = limit;
    std::vector<dispatch::InvocationStatus> out;
    for (const auto& s : listed) {
      if (s.invocation.seq > after_seq && static_cast<int>(out.size()) < limit) out.push_back(s);
    }
    return out;
  }
  Result<dispatch::InvocationStatus> Cancel(const std::string& region, const std::string& endpoint,
                                            const std::string& inference_id) override {
    described = region + "/" + endpoint + "/" + inference_id;
    return status_result;
  }
  std::string RenderMetrics() const override { return metrics; }
};

class RuntimeApiTest : public ::testing::Test {
 protected:
  http::Response Send(ApiHandler& api, http::Request r) {
    std::promise<http::Response> done;
    auto future = done.get_future();
    r.request_id = "rid-1";
    http::sigv4::Identity id;
    id.region = "eu-west-1";
    api.Handle(std::move(r), id, [&done](http::Response resp) { done.set_value(std::move(resp)); });
    return future.get();
  }
  static http::Request Post(std::string path) {
    http::Request r;
    r.method = "POST";
    r.path = std::move(path);
    return r;
  }
  static http::Request Get(std::string path, std::string query = "") {
    http::Request r;
    r.method = "GET";
    r.path = std::move(path);
    r.query = std::move(query);
    return r;
  }
  static json::object Body(const http::Response& r) { return json::parse(r.body).as_object(); }

  FakeBackend backend_;
  BlockingPool pool_{2};
  RuntimeApi runtime_{backend_, pool_, "123456789012"};
  InferdApi inferd_{backend_, pool_};
};

TEST_F(RuntimeApiTest, InvokeEndpointAsyncAnswers202WithLocations) {
  backend_.accept_result =
      dispatch::Accepted{"id-1", "s3://out/p/u.out", "s3://fail/p/u-error.out"};
  http::Request r = Post("/endpoints/ep/async-invocations");
  r.headers.Add("X-Amzn-SageMaker-InputLocation", "s3://b/in.csv");
  r.headers.Add("X-Amzn-SageMaker-Inference-Id", "id-1");
  http::Response resp = Send(runtime_, std::move(r));
  EXPECT_EQ(resp.status, 202);
  EXPECT_EQ(resp.headers.Get("Content-Type").value(), "application/json");
  EXPECT_EQ(resp.headers.Get("X-Amzn-SageMaker-OutputLocation").value(), "s3://out/p/u.out");
  EXPECT_EQ(resp.headers.Get("X-Amzn-SageMaker-FailureLocation").value(),
            "s3://fail/p/u-error.out");
  EXPECT_EQ(Body(resp).at("InferenceId").as_string(), "id-1");
  EXPECT_EQ(backend_.accepted.region, "eu-west-1");
  EXPECT_EQ(backend_.accepted.endpoint, "ep");
  EXPECT_EQ(backend_.accepted.input_location, "s3://b/in.csv");

  // No S3FailurePath: no FailureLocation header at all.
  backend_.accept_result = dispatch::Accepted{"gen", "s3://out/u.out", ""};
  http::Request r2 = Post("/endpoints/ep/async-invocations");
  r2.headers.Add("X-Amzn-SageMaker-InputLocation", "s3://b/in.csv");
  http::Response resp2 = Send(runtime_, std::move(r2));
  EXPECT_EQ(resp2.status, 202);
  EXPECT_FALSE(resp2.headers.Has("X-Amzn-SageMaker-FailureLocation"));
}

TEST_F(RuntimeApiTest, ErrorsUseTheRuntimeFormat) {
  backend_.accept_result =
      Error(Errc::kValidation, "Endpoint x of account 123456789012 not found.");
  http::Request r = Post("/endpoints/x/async-invocations");
  r.headers.Add("X-Amzn-SageMaker-InputLocation", "s3://b/in.csv");
  http::Response resp = Send(runtime_, std::move(r));
  EXPECT_EQ(resp.status, 400);
  EXPECT_EQ(resp.headers.Get("x-amzn-ErrorType").value(), "ValidationError");
  EXPECT_EQ(Body(resp).at("message").as_string(), "Endpoint x of account 123456789012 not found.");

  // Validation happens before the backend is asked.
  http::Request bad = Post("/endpoints/x/async-invocations");
  bad.headers.Add("X-Amzn-SageMaker-InputLocation", "ftp://b/in.csv");
  http::Response invalid = Send(runtime_, std::move(bad));
  EXPECT_EQ(invalid.status, 400);
  EXPECT_EQ(invalid.headers.Get("x-amzn-ErrorType").value(), "ValidationError");
  EXPECT_EQ(std::string(Body(invalid).at("message").as_string()).substr(0, 29),
            "1 validation error detected: ");
  EXPECT_EQ(backend_.accept_calls, 1);  // only the first request reached the backend
}

TEST_F(RuntimeApiTest, InvokeEndpointBodyLimitAndUnsupportedFeatures) {
  http::Request big = Post("/endpoints/rt/invocations");
  big.body = std::string(kMaxSyncBodyBytes + 1, 'x');
  http::Response too_big = Send(runtime_, std::move(big));
  EXPECT_EQ(too_big.status, 413);
  EXPECT_EQ(too_big.headers.Get("x-amzn-ErrorType").value(), "ValidationError");
  EXPECT_EQ(Body(too_big).at("message").as_string(),
            "1 validation error detected: Value at 'body' failed to satisfy constraint: Member "
            "must have length less than or equal to 6291456");

  for (const char* header :
       {"X-Amzn-SageMaker-Target-Model", "X-Amzn-SageMaker-Target-Container-Hostname",
        "X-Amzn-SageMaker-Inference-Component", "X-Amzn-SageMaker-Session-Id"}) {
    http::Request r = Post("/endpoints/rt/invocations");
    r.headers.Add(header, "x");
    http::Response refused = Send(runtime_, std::move(r));
    EXPECT_EQ(refused.status, 400) << header;
    EXPECT_EQ(refused.headers.Get("x-amzn-ErrorType").value(), "ValidationError") << header;
    EXPECT_NE(std::string(Body(refused).at("message").as_string()).find(header), std::string::npos)
        << header;
  }
}

TEST_F(RuntimeApiTest, BackendExceptionIsInternalFailure) {
  backend_.sync_throws = true;
  http::Response resp = Send(runtime_, Post("/endpoints/rt/invocations"));
  EXPECT_EQ(resp.status, 500);
  EXPECT_EQ(resp.headers.Get("x-amzn-ErrorType").value(), "InternalFailure");
  EXPECT_EQ(Body(resp).at("message").as_string(), "internal error: boom");
}

TEST_F(RuntimeApiTest, InvokeEndpointReturnsTheContainersAnswer) {
  backend_.sync_result = dispatch::SyncResponse{200, "text/csv", "0.5\n", "AllTraffic", "a=1"};
  http::Request r = Post("/endpoints/rt/invocations");
  r.body = "1,2,3";
  r.headers.Add("Content-Type", "text/csv");
  http::Response resp = Send(runtime_, std::move(r));
  EXPECT_EQ(resp.status, 200);
  EXPECT_EQ(resp.body, "0.5\n");
  EXPECT_EQ(resp.headers.Get("Content-Type").value(), "text/csv");
  EXPECT_EQ(resp.headers.Get("x-Amzn-Invoked-Production-Variant").value(), "AllTraffic");
  EXPECT_EQ(resp.headers.Get("X-Amzn-SageMaker-Custom-Attributes").value(), "a=1");
  EXPECT_EQ(backend_.invoked.body, "1,2,3");
  EXPECT_EQ(backend_.invoked.content_type, "text/csv");
}

TEST_F(RuntimeApiTest, ContainerErrorIsModelError) {
  backend_.sync_result = dispatch::SyncResponse{500, "text/plain", "boom", "AllTraffic", ""};
  http::Response resp = Send(runtime_, Post("/endpoints/rt/invocations"));
  EXPECT_EQ(resp.status, 424);
  EXPECT_EQ(resp.headers.Get("x-amzn-ErrorType").value(), "ModelError");
  json::object body = Body(resp);
  EXPECT_EQ(body.at("OriginalStatusCode").as_int64(), 500);
  EXPECT_EQ(body.at("OriginalMessage").as_string(), "boom");
  EXPECT_EQ(body.at("message").as_string(),
            "Received server error (500) from primary with message \"boom\". See `inferd logs "
            "rt` for more information.");
  EXPECT_EQ(body.at("LogStreamArn").as_string(),
            "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/sagemaker/Endpoints/rt");

  // The same reported as an Error by the backend (the Dispatcher's wording).
  const std::string message =
      "Received client error (404) from primary with message \"no \"such\" thing\". See the "
      "logs of endpoint rt (inferd logs rt) in account 123456789012 for more information.";
  backend_.sync_result = Error(Errc::kModelError, message, "ModelError");
  http::Response err = Send(runtime_, Post("/endpoints/rt/invocations"));
  EXPECT_EQ(err.status, 424);
  EXPECT_EQ(err.headers.Get("x-amzn-ErrorType").value(), "ModelError");
  EXPECT_EQ(Body(err).at("OriginalStatusCode").as_int64(), 404);
  EXPECT_EQ(Body(err).at("OriginalMessage").as_string(), "no \"such\" thing");
  EXPECT_EQ(Body(err).at("message").as_string(), message);

  // A timeout: the container never answered, so there is no original status.
  backend_.sync_result = Error(Errc::kModelError,
                               "Your invocation timed out while waiting for a response from "
                               "container primary.",
                               "ModelError");
  http::Response timeout = Send(runtime_, Post("/endpoints/rt/invocations"));
  EXPECT_EQ(timeout.status, 424);
  EXPECT_FALSE(Body(timeout).contains("OriginalStatusCode"));

  // No instance yet: ModelNotReadyException (429).
  backend_.sync_result = Error(Errc::kThrottled, "not ready", "ModelNotReadyException");
  http::Response not_ready = Send(runtime_, Post("/endpoints/rt/invocations"));
  EXPECT_EQ(not_ready.status, 429);
  EXPECT_EQ(not_ready.headers.Get("x-amzn-ErrorType").value(), "ModelNotReadyException");
}

dispatch::InvocationStatus Status(int64_t seq, std::string id, queue::InvocationState state) {
  dispatch::InvocationStatus s;
  s.invocation.seq = seq;
  s.invocation.inference_id = std::move(id);
  s.invocation.endpoint = "ep";
  s.invocation.state = state;
  s.invocation.received_ms = 1643150760455;
  s.invocation.input_location = "s3://b/in";
  s.invocation.output_location = "s3://out/u.out";
  return s;
}

TEST_F(RuntimeApiTest, InferdListPagesWithNextToken) {
  for (int i = 1; i <= 3; ++i) {
    backend_.listed.push_back(
        Status(i * 10, "id-" + std::to_string(i), queue::InvocationState::kQueued));
  }
  backend_.listed[0].queue_position = 0;
  http::Response first =
      Send(inferd_, Get("/inferd/endpoints/ep/invocations", "state=Queued,InProgress&limit=2"));
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.headers.Get("Content-Type").value(), "application/json");
  json::object page = Body(first);
  ASSERT_EQ(page.at("Invocations").as_array().size(), 2u);
  EXPECT_EQ(page.at("NextToken").as_string(), "20");
  EXPECT_EQ(backend_.list_limit, 3);  // one more than asked, to know whether more exist
  EXPECT_EQ(backend_.list_states,
            (std::vector<queue::InvocationState>{queue::InvocationState::kQueued,
                                                 queue::InvocationState::kStarted}));
  const json::object& one = page.at("Invocations").as_array()[0].as_object();
  EXPECT_EQ(one.at("inferenceId").as_string(), "id-1");
  EXPECT_EQ(one.at("state").as_string(), "Queued");
  EXPECT_EQ(one.at("receivedTime").as_string(), "2022-01-25T22:46:00.455Z");
  EXPECT_EQ(one.at("queuePosition").as_int64(), 0);
  EXPECT_FALSE(one.contains("startedTime"));

  json::object last = Body(Send(inferd_, Get("/inferd/endpoints/ep/invocations", "after=20")));
  EXPECT_EQ(last.at("Invocations").as_array().size(), 1u);
  EXPECT_FALSE(last.contains("NextToken"));
  EXPECT_EQ(backend_.list_after, 20);

  http::Response bad = Send(inferd_, Get("/inferd/endpoints/ep/invocations", "state=Running"));
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.headers.Get("x-amzn-ErrorType").value(), "ValidationError");
}

TEST_F(RuntimeApiTest, InferdListDefaultsAndLimits) {
  // docs/api.md: state defaults to Queued,InProgress, limit to 100 (1–1000).
  ASSERT_EQ(Send(inferd_, Get("/inferd/endpoints/ep/invocations")).status, 200);
  EXPECT_EQ(backend_.list_states,
            (std::vector<queue::InvocationState>{queue::InvocationState::kQueued,
                                                 queue::InvocationState::kStarted}));
  EXPECT_EQ(backend_.list_limit, 101);
  EXPECT_EQ(backend_.list_after, 0);
  ASSERT_EQ(Send(inferd_, Get("/inferd/endpoints/ep/invocations", "limit=1000")).status, 200);
  EXPECT_EQ(backend_.list_limit, 1001);
  for (const char* query : {"limit=0", "limit=1001", "limit=x", "after=-1", "other=1"}) {
    http::Response bad = Send(inferd_, Get("/inferd/endpoints/ep/invocations", query));
    EXPECT_EQ(bad.status, 400) << query;
    EXPECT_EQ(bad.headers.Get("x-amzn-ErrorType").value(), "ValidationError") << query;
  }
}

TEST_F(RuntimeApiTest, InferdGetAndCancel) {
  auto s = Status(7, "a/b", queue::InvocationState::kFailed);
  s.invocation.failure_reason = "cancelled";
  s.invocation.finished_ms = 1643150761000;
  backend_.status_result = s;
  http::Response got = Send(inferd_, Get("/inferd/endpoints/ep/invocations/a%2Fb"));
  ASSERT_EQ(got.status, 200) << got.body;
  EXPECT_EQ(backend_.described, "eu-west-1/ep/a/b");
  EXPECT_EQ(Body(got).at("failureReason").as_string(), "cancelled");
  EXPECT_EQ(Body(got).at("finishedTime").as_string(), "2022-01-25T22:46:01.000Z");

  backend_.status_result = Error(Errc::kInvalidState, "Invocation x already started.");
  http::Response conflict = Send(inferd_, Post("/inferd/endpoints/ep/invocations/x/cancel"));
  EXPECT_EQ(conflict.status, 409);
  EXPECT_EQ(conflict.headers.Get("x-amzn-ErrorType").value(), "Conflict");
  EXPECT_EQ(Body(conflict).at("message").as_string(), "Invocation x already started.");

  backend_.status_result = Error(Errc::kNotFound, "No invocation x.");
  EXPECT_EQ(Send(inferd_, Get("/inferd/endpoints/ep/invocations/x")).status, 404);
  // Wrong method or path.
  EXPECT_EQ(Send(inferd_, Get("/inferd/endpoints/ep/invocations/x/cancel")).status, 404);
  EXPECT_EQ(Send(inferd_, Get("/inferd/other")).status, 404);
}

TEST_F(RuntimeApiTest, MetricsAreUnsignedText) {
  http::Request scrape = Get("/metrics");
  EXPECT_FALSE(inferd_.RequiresAuth(scrape));
  EXPECT_TRUE(inferd_.RequiresAuth(Get("/inferd/endpoints/ep/invocations")));
  http::Response resp = Send(inferd_, scrape);
  EXPECT_EQ(resp.status, 200);
  EXPECT_EQ(resp.headers.Get("Content-Type").value(), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(resp.body, "# metrics\n");
}

}  // namespace
}  // namespace inferd::api::runtime
