// The pipeline end to end inside one process: real stores, a real Notifier, real inferd-echo
// model servers (see test_util.h).
#include "dispatch/dispatcher.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>

#include "common/base64.h"
#include "dispatch/test_util.h"

namespace inferd::dispatch {
namespace {

using namespace testing;  // test_util.h: the harness, matchers, InvocationState

TEST_F(DispatcherTest, SuccessWritesTheOutputAndPublishesOneNotification) {
  h_.StartDispatcher();
  h_.CreateEndpoint("ep", AsyncConfig(ok_, err_, R"({"IncludeInferenceResponseIn":
      ["SUCCESS_NOTIFICATION_TOPIC"]})"));
  // The endpoint's creation sent SageMaker's TestNotification to both topics.
  EXPECT_EQ(h_.WaitMessages(ok_, 1, "TestNotification").size(), 1u);
  EXPECT_EQ(h_.WaitMessages(err_, 1, "TestNotification").size(), 1u);
  InstanceRef echo = h_.StartEcho("AllTraffic");
  h_.SetInstances("ep", {echo});

  AcceptRequest r;
  r.accept = "text/csv";
  r.custom_attributes = "trace=1";
  Accepted a = h_.InvokeWith("ep", "1,2,3\n", r);
  ASSERT_FALSE(a.inference_id.empty());
  // The output is named by a fresh UUID, not by the InferenceId.
  EXPECT_THAT(a.output_location, StartsWith("s3://output/results/"));
  EXPECT_THAT(a.output_location, ::testing::EndsWith(".out"));
  EXPECT_EQ(a.output_location.find(a.inference_id), std::string::npos);
  const std::string uuid = a.output_location.substr(a.output_location.rfind('/') + 1, 36);
  EXPECT_EQ(a.failure_location, "s3://failure/errors/" + uuid + "-error.out");

  queue::Invocation done = h_.WaitDone("ep", a.inference_id);
  EXPECT_EQ(done.state, InvocationState::kCompleted);
  EXPECT_EQ(done.attempts, 1);
  EXPECT_EQ(done.variant, "AllTraffic");
  EXPECT_EQ(done.instance, "127.0.0.1:" + std::to_string(echo.port));
  EXPECT_EQ(done.response_content_type, "text/csv");
  // Published before the end was recorded, so the end and `notified` are one write: a restart
  // now owes nothing.
  EXPECT_TRUE(done.notified);
  auto out = h_.Get(a.output_location);
  ASSERT_TRUE(out);
  EXPECT_EQ(out->first, "1,2,3\n");
  EXPECT_EQ(out->second.attributes.content_type, "text/csv");  // the container's
  EXPECT_EQ(Harness::Header(out->second, "x-amz-meta-inferd-output-id"), uuid);
  EXPECT_FALSE(h_.Get(a.failure_location));

  auto messages = h_.WaitMessages(ok_, 1);
  json::object& m = messages[0];
  EXPECT_EQ(Str(m["invocationStatus"]), "Completed");
  EXPECT_EQ(Str(m["inferenceId"]), a.inference_id);
  EXPECT_EQ(Str(m["awsRegion"]), "us-east-1");
  EXPECT_EQ(Str(m["receivedTime"]), "2027-01-15T08:00:00.000Z");
  EXPECT_EQ(json::serialize(m["requestParameters"]),
            R"({"accept":"text/csv","contentType":"text/csv","customAttributes":"trace=1",)"
            R"("endpointName":"ep","inputLocation":"s3://input/input-1"})");
  EXPECT_EQ(Str(m["responseParameters"].at("outputLocation")), a.output_location);
  EXPECT_EQ(Str(m["responseParameters"].at("contentType")), "text/csv");
  EXPECT_EQ(*Base64Decode(Str(m["responseBody"].at("content"))), "1,2,3\n");
  EXPECT_TRUE(h_.Messages(err_, "InferenceResult").empty());

  EXPECT_EQ(h_.Stats(echo)["requests"].as_int64(), 1);
  std::string metrics = h_.dispatcher->RenderMetrics();
  EXPECT_THAT(metrics, HasSubstr("inferd_invocations_processed_total{endpoint=\"ep\","
                                 "variant=\"AllTraffic\"} 1\n"));
  EXPECT_THAT(metrics, HasSubstr("inferd_approximate_backlog_size{endpoint=\"ep\"} 0\n"));
  EXPECT_THAT(metrics, HasSubstr("inferd_model_latency_microseconds_count{endpoint=\"ep\","
                                 "variant=\"AllTraffic\"} 1\n"));
}

TEST_F(DispatcherTest, AFailedPublishIsCountedAndRetriedWithoutFailingTheInvocation) {
  const std::string later = "arn:aws:sns:us-east-1:123456789012:later";  // does not exist yet
  h_.CreateEndpoint("ep", AsyncConfig(later, err_, R"({"IncludeInferenceResponseIn":
      ["SUCCESS_NOTIFICATION_TOPIC"]})"));
  h_.StartDispatcher();
  h_.SetInstances("ep", {h_.StartEcho("AllTraffic")});
  Accepted a = h_.InvokeWith("ep", "x");
  queue::Invocation done = h_.WaitDone("ep", a.inference_id);
  EXPECT_EQ(done.state, InvocationState::kCompleted);  // the publish failing changes nothing
  ASSERT_TRUE(WaitFor([&] {
    return h_.dispatcher->RenderMetrics().find(
               "inferd_notification_failures_total{endpoint=\"ep\",variant=\"AllTraffic\"} 1\n") !=
           std::string::npos;
  }));
  EXPECT_FALSE(h_.queue->GetBySeq(done.seq).value()->notified);

  ASSERT_EQ(h_.Topic("later"), later);
  ASSERT_TRUE(WaitFor([&] {
    h_.clock.Advance(2s);  // past the retry's backoff
    h_.dispatcher->Wake();
    return h_.Messages(later, "InferenceResult").size() == 1;
  }));
  json::object retried = h_.Messages(later, "InferenceResult")[0];
  EXPECT_EQ(Str(retried["inferenceId"]), a.inference_id);
  // The retry reads the answer back from the output object to embed it.
  EXPECT_EQ(*Base64Decode(Str(retried["responseBody"].at("content"))), "x");
  ASSERT_TRUE(WaitFor([&] { return h_.queue->GetBySeq(done.seq).value()->notified; }));
}

TEST_F(DispatcherTest, APublishThatKeepsFailingIsGivenUpAfterTheRetryPeriod) {
  h_.options.notification_retry_for = 5s;
  const std::string never = "arn:aws:sns:us-east-1:123456789012:never";  // never created
  h_.CreateEndpoint("ep", AsyncConfig(never, err_));
  h_.StartDispatcher();
  h_.SetInstances("ep", {h_.StartEcho("AllTraffic")});
  Accepted a = h_.InvokeWith("ep", "x");
  queue::Invocation done = h_.WaitDone("ep", a.inference_id);
  EXPECT_EQ(done.state, InvocationState::kCompleted);
  // Retried (1 s, 2 s, ...) on the dispatcher's clock until 5 s have passed, then marked
  // notified so that no restart publishes it again.
  ASSERT_TRUE(WaitFor([&] {
    h_.clock.Advance(1s);
    h_.dispatcher->Wake();
    return h_.queue->GetBySeq(done.seq).value()->notified;
  }));
  const std::string metrics = h_.dispatcher->RenderMetrics();
  const std::string series =
      "inferd_notification_failures_total{endpoint=\"ep\",variant=\"AllTraffic\"} ";
  const size_t at = metrics.find(series);
  ASSERT_NE(at, std::string::npos) << metrics;
  EXPECT_GE(std::stoi(metrics.substr(at + series.size())), 2);  // the first try and a retry
  EXPECT_TRUE(h_.Messages(err_, "InferenceResult").empty());
}

TEST_F(DispatcherTest, InlineBodyExtensionAndFilename) {
  h_.CreateEndpoint("ep", AsyncConfig(ok_, err_));
  h_.StartDispatcher();
  h_.SetInstances("ep", {h_.StartEcho("AllTraffic")});
  AcceptRequest r;
  r.endpoint = "EP";  // endpoint names match case-insensitively
  r.inline_body = "inline payload";
  r.inference_id = "my-id";
  r.output_path_extension = "2026/run-1/";
  r.filename = "answer.bin";
  auto a = h_.Invoke(r);
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->inference_id, "my-id");
  EXPECT_EQ(a->output_location, "s3://output/results/2026/run-1/answer.bin");
  EXPECT_EQ(h_.WaitDone("ep", "my-id").state, InvocationState::kCompleted);
  auto out = h_.Get(a->output_location);
  ASSERT_TRUE(out);
  EXPECT_EQ(out->first, "inline payload");
  // No Content-Type was given, so none reached the model (inferd-echo then answers with its own).
  EXPECT_EQ(out->second.attributes.content_type, "application/octet-stream");
  auto m = h_.WaitMessages(ok_, 1);
  EXPECT_EQ(json::serialize(m[0]["requestParameters"]), R"({"endpointName":"EP"})");
  EXPECT_FALSE(m[0].contains("responseBody"));  // not asked for
}

TEST_F(DispatcherTest, ModelErrorWritesTheFailureObjectAndAnErrorNotification) {
  h_.CreateEndpoint("ep", AsyncConfig(ok_, err_, R"({"IncludeInferenceResponseIn":
      ["ERROR_NOTIFICATION_TOPIC"]})"));
  h_.StartDispatcher();
  h_.SetInstances("ep", {h_.StartEcho("AllTraffic", {{"ECHO_STATUS", "500"}})});
  Accepted a = h_.InvokeWith("ep", "x");
  queue::Invocation done = h_.WaitDone("ep", a.inference_id);
  EXPECT_EQ(done.state, InvocationState::kFailed);
  const std::string reason =
      "ClientError: Received server error (500) from model. See the SageMaker Endpoint logs in "
      "your account for more information.";
  EXPECT_EQ(done.failure_reason, reason);
  auto failure = h_.Get(a.failure_location);
  ASSERT_TRUE(failure);
  EXPECT_EQ(failure->first, "echo: failing with 500 as asked");  // the model's body
  EXPECT_EQ(Harness::Header(failure->second, "x-amz-meta-failure-reason"), reason);
  EXPECT_EQ(Harness::Header(failure->second, "x-amz-meta-inferd-output-id"), done.output_id);
  EXPECT_FALSE(h_.Get(a.output_location));

  auto m = h_.WaitMessages(err_, 1);
  EXPECT_EQ(Str(m[0]["invocationStatus"]), "Failed");
  EXPECT_EQ(Str(m[0]["failureReason"]), reason);
  EXPECT_EQ(Str(m[0]["responseParameters"].at("failureLocation")), a.failure_location);
  EXPECT_EQ(*Base64Decode(Str(m[0]["responseBody"].at("content"))),
            "echo: failing with 500 as asked");
  EXPECT_TRUE(h_.Messages(ok_, "InferenceResult").empty());
  EXPECT_THAT(h_.dispatcher->RenderMetrics(),
              HasSubstr("inferd_invocation_5xx_errors_total{endpoint=\"ep\","
                        "variant=\"AllTraffic\"} 1\n"));
}

TEST_F(DispatcherTest, MissingInputFailsWithoutCallingTheModel) {
  h_.CreateEndpoint("ep", AsyncConfig(ok_, err_));
  h_.StartDispatcher();
  InstanceRef echo = h_.StartEcho("AllTraffic");
  h_.SetInstances("ep", {echo});
  AcceptRequest r;
  r.endpoint = "ep";
  r.input_location = "s3://input/not-there.csv";
  auto a = h_.Invoke(r);
  ASSERT_TRUE(a.ok());
  queue::Invocation done = h_.WaitDone("ep", a->inference_id);
  EXPECT_EQ(done.state, InvocationState::kFailed);
  EXPECT_THAT(done.failure_reason,
              StartsWith("Failed to download the input from s3://input/not-there.csv: NoSuchKey"));
  EXPECT_EQ(h_.Get(a->failure_location)->first, done.failure_reason);
  EXPECT_EQ(Str(h_.WaitMessages(err_, 1)[0]["failureReason"]), done.failure_reason);
  EXPECT_EQ(h_.Stats(echo)["requests"].as_int64(), 0);
  EXPECT_THAT(h_.dispatcher->RenderMetrics(),
              HasSubstr("inferd_request_download_failures_total{endpoint=\"ep\","
                        "variant=\"AllTraffic\"} 1\n"));
}

TEST_F(DispatcherTest, InvocationTimeoutFailsWithTheReason) {
  h_.CreateEndpoint("ep", AsyncConfig(ok_, err_));
  h_.StartDispatcher();
  h_.SetInstances("ep", {h_.StartEcho("AllTraffic", {{"ECHO_DELAY_MS", "5000"}})});
  AcceptRequest r;
  r.invocation_timeout_seconds = 1;
  const auto start = std::chrono::steady_clock::now();
  Accepted a = h_.InvokeWith("ep", "slow", r);
  queue::Invocation done = h_.WaitDone("ep", a.inference_id);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 4s);
  EXPECT_EQ(done.state, InvocationState::kFailed);
  EXPECT_THAT(done.failure_reason,
              StartsWith("Your invocation timed out while waiting for a response from container "
                         "primary: no complete answer within InvocationTimeoutSeconds (1 s)."));
  EXPECT_EQ(h_.Get(a.failure_location)->first, done.failure_reason);
  EXPECT_EQ(done.attempts, 1);  // a timeout is not retried
}

TEST_F(DispatcherTest, AnInstanceThatDiesMidRequestIsRetriedElsewhere) {
  h_.options.failed_instance_cooldown = 30s;  // the dead instance gets no more work
  h_.CreateEndpoint("ep", AsyncConfig(ok_, err_));
  h_.StartDispatcher();
  // Answers one request, then exits on the next one without answering.
  InstanceRef fragile = h_.StartEcho("AllTraffic", {{"ECHO_CRASH_AFTER", "1"}});
  h_.SetInstances("ep", {fragile});
  Accepted first = h_.InvokeWith("ep", "one");
  EXPECT_EQ(h_.WaitDone("ep", first.inference_id).state, InvocationState::kCompleted);

  Accepted second = h_.InvokeWith("ep", "two");
  // It goes back to the queue: no capacity left until another instance appears.
  ASSERT_TRUE(WaitFor([&] {
    auto s = h_.dispatcher->Describe(kRegion, "ep", second.inference_id);
    return s.ok() && s->invocation.attempts == 1 && s->invocation.state == InvocationState::kQueued;
  }));
  InstanceRef healthy = h_.StartEcho("AllTraffic");
  h_.SetInstances("ep", {fragile, healthy});
  queue::Invocation done = h_.WaitDone("ep", second.inference_id);
  EXPECT_EQ(done.state, InvocationState::kCompleted);
  EXPECT_EQ(done.attempts, 2);
  EXPECT_EQ(done.instance, "127.0.0.1:" + std::to_string(healthy.port));
  EXPECT_EQ(h_.Get(second.output_location)->first, "two");
  auto m = h_.WaitMessages(ok_, 2);
  EXPECT_EQ(Str(m[1]["inferenceId"]), second.inference_id);  // one notification each
}

// A "model" on a loopback port that hands each connection to `serve` (on its own thread), then
// closes it: for answers inferd-echo cannot give.
class RawModel {
 public:
  explicit RawModel(std::function<void(int fd)> serve) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(fd_, 16), 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this, serve = std::move(serve)] {
      for (;;) {
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        serve(c);
        ::close(c);
      }
    });
  }
  ~RawModel() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
};

TEST_F(DispatcherTest, RetriesAreBoundedThenTheInvocationFails) {
  h_.options.max_attempts = 2;
  h_.options.failed_instance_cooldown = 10ms;
  h_.CreateEndpoint("ep", AsyncConfig(ok_, err_));
  h_.StartDispatcher();
  RawModel dead([](int c) {  // takes the request head, then hangs up
    char buf[4096];
    (void)::recv(c, buf, sizeof buf, 0);
  });
  h_.SetInstances("ep", {{"AllTraffic", "127.0.0.1", dead.port()}});
  Accepted a = h_.InvokeWith("ep", "x");
  // The refusing instance cools down (on the dispatcher's clock) before its next attempt.
  ASSERT_TRUE(WaitFor([&] {
    h_.clock.Advance(20ms);
    h_.dispatcher->Wake();
    auto s = h_.dispatcher->Describe(kRegion, "ep", a.inference_id);
    return s.ok() && s->invocation.state == InvocationState::kFailed;
  }));
  queue::Invocation done = h_.WaitDone("ep", a.inference_id);
  EXPECT_EQ(done.attempts, 2);
  // A hang-up with part of the request unread reaches the client as a reset rather than a close,
  // depending on how the request's bytes arrived: either is the instance failing to answer.
  const std::string reason =
      "Connection reset by peer for the ep endpoint. Please retry. (The model instance failed "
      "before answering, 2 attempts in all; last: connection ";
  EXPECT_THAT(done.failure_reason, AnyOf(StartsWith(reason + "closed by 127.0.0.1:"),
                                         StartsWith(reason + "reset by 127.0.0.1:")));
  EXPECT_EQ(h_.Get(a.failure_location)->first, done.failure_reason);
  EXPECT_EQ(h_.WaitMessages(err_, 1).size(), 1u);
}

size_t RssBytes() { return static_cast<size_t>(store::testing::RssKiB()) * 1024; }

TEST_F(DispatcherTest, LargeAnswersStreamThroughTheStore) {
  h_.CreateEndpoint("ep", AsyncConfig(ok_, err_, R"({"IncludeInferenceResponseIn":
      ["SUCCESS_NOTIFICATION_TOPIC"]})"));
  h_.StartDispatcher();
  h_.SetInstances("ep", {h_.StartEcho("AllTraffic")});
  constexpr uint64_t kSize = 48 * 1024 * 1024;  // inferd-echo buffers up to 64 MiB
  PatternSource big(kSize);
  ASSERT_TRUE(h_.objects->Put("input", "big.bin", {"application/octet-stream", {}}, big).ok());
  AcceptRequest r;
  r.endpoint = "ep";
  r.input_location = "s3://input/big.bin";
  r.content_type = "application/x-big";
  // Neither the input nor the answer is ever held whole by inferd's side.
  const auto t0 = std::chrono::steady_clock::now();
  const size_t baseline = RssBytes();
  std::atomic<size_t> peak{baseline};
  std::atomic<bool> sampling{true};
  std::thread sampler([&] {
    while (sampling) {
      peak = std::max(peak.load(), RssBytes());
      std::this_thread::sleep_for(2ms);
    }
  });
  auto a = h_.Invoke(r);
  ASSERT_TRUE(a.ok());
  queue::Invocation done = h_.WaitDone("ep", a->inference_id);
  sampling = false;
  sampler.join();
  EXPECT_EQ(done.state, InvocationState::kCompleted);
  EXPECT_LT(peak - baseline, kSize / 3) << "RSS grew by " << (peak - baseline) / 1024 << " KiB";
  std::cerr << "RSS grew by " << (peak - baseline) / 1024 << " KiB in "
            << std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - t0)
                   .count()
            << " ms\n";
  auto out = h_.Get(a->output_location);
  ASSERT_TRUE(out);
  ASSERT_EQ(out->first.size(), kSize);
  PatternSource expected(kSize);
  std::string want(kSize, '\0');
  ASSERT_EQ(*expected.Read(want.data(), kSize), kSize);
  EXPECT_TRUE(out->first == want);
  EXPECT_EQ(out->second.attributes.content_type, "application/x-big");
  EXPECT_FALSE(h_.WaitMessages(ok_, 1)[0].contains("responseBody"));  // over 128 KiB
}

TEST_F(DispatcherTest, OversizeAnswersFail) {
  h_.options.max_response_bytes = 1000;
  h_.options.memory_response_bytes = 1000;
  h_.CreateEndpoint("ep", AsyncConfig(ok_, err_));
  h_.StartDispatcher();
  h_.SetInstances("ep", {h_.StartEcho("AllTraffic")});
  Accepted a = h_.InvokeWith("ep", std::string(2000, 'x'));
  queue::Invocation done = h_.WaitDone("ep", a.inference_id);
  EXPECT_EQ(done.state, InvocationState::kFailed);
  EXPECT_EQ(done.failure_reason,
            "The response from container primary is too large: 2000 bytes (Content-Length), over "
            "the limit of 1000 bytes for asynchronous inference.");
  EXPECT_FALSE(h_.Get(a.output_location));
  EXPECT_EQ(h_.Get(a.failure_location)->first, done.failure_reason);
}

// A model that answers 200 with a chunked body (no Content-Length).
void AnswerChunked(int c) {
  std::string in;
  char buf[4096];
  while (in.find("\r\n\r\n") == std::string::npos) {
    ssize_t n = ::recv(c, buf, sizeof buf, 0);
    if (n <= 0) break;
    in.append(buf, static_cast<size_t>(n));
  }
  const std::string out =
      "HTTP/1.1 200 OK\r\nContent-Type: application/jsonlines\r\nTransfer-Encoding: "
      "chunked\r\nConnection: close\r\n\r\n6\r\n{\"a\":1\r\n2\r\n}\n\r\n0\r\n\r\n";
  (void)::send(c, out.data(), out.size(), MSG_NOSIGNAL);
}

TEST_F(DispatcherTest, ChunkedAnswersAreAccepted) {
  h_.CreateEndpoint("ep", AsyncConfig(ok_, err_));
  h_.StartDispatcher();
  RawModel model(AnswerChunked);
  h_.SetInstances("ep", {{"AllTraffic", "127.0.0.1", model.port()}});
  auto a = h_.InvokeInline("ep", "x");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(h_.WaitDone("ep", a->inference_id).state, InvocationState::kCompleted);
  auto out = h_.Get(a->output_location);
  ASSERT_TRUE(out);
  EXPECT_EQ(out->first, "{\"a\":1}\n");
  EXPECT_EQ(out->second.attributes.content_type, "application/jsonlines");
}

TEST_F(DispatcherTest, ChunkedAnswersOverTheLimitFail) {
  h_.options.max_response_bytes = 5;  // the chunked answer has 8 bytes
  h_.options.memory_response_bytes = 5;
  h_.CreateEndpoint("ep", AsyncConfig(ok_, err_));
  h_.StartDispatcher();
  RawModel model(AnswerChunked);
  h_.SetInstances("ep", {{"AllTraffic", "127.0.0.1", model.port()}});
  auto a = h_.InvokeInline("ep", "x");
  ASSERT_TRUE(a.ok());
  queue::Invocation done = h_.WaitDone("ep", a->inference_id);
  EXPECT_EQ(done.state, InvocationState::kFailed);
  EXPECT_EQ(done.failure_reason,
            "The response from container primary is too large: more than the limit of 5 bytes "
            "for asynchronous inference.");
  EXPECT_FALSE(h_.Get(a->output_location));
  EXPECT_EQ(h_.Get(a->failure_location)->first, done.failure_reason);
}

}  // namespace
}  // namespace inferd::dispatch
