// Restarts: what Start() does with what the store says is unfinished (a simulated crash at each
// step), and Stop() abandoning calls still running at its deadline.
#include <set>

#include "common/ids.h"
#include "dispatch/pipeline.h"
#include "dispatch/test_util.h"
#include "notify/testing.h"
#include "queue/testing.h"

namespace inferd::dispatch {
namespace {

using namespace testing;  // test_util.h: the harness, matchers, InvocationState

class RecoveryTest : public DispatcherTest {
 protected:
  void SetUp() override {
    DispatcherTest::SetUp();
    h_.CreateEndpoint("ep", R"({"OutputConfig":{"S3OutputPath":"s3://output/r",
        "S3FailurePath":"s3://failure/r","NotificationConfig":{"SuccessTopic":")" +
                                ok_ + R"(","ErrorTopic":")" + err_ + R"("}}})");
  }

  // A record as Accept makes it (the dispatcher is not running).
  queue::Invocation Record(const std::string& id, const std::string& endpoint = "ep") {
    queue::Invocation v;
    v.region = kRegion;
    v.endpoint = endpoint;
    v.inference_id = id;
    v.output_id = NewUuid();
    v.received_ms = 1'800'000'000'000;
    v.inline_body = "body of " + id;
    v.content_type = "text/plain";
    v.output_location = "s3://output/r/" + v.output_id + ".out";
    v.failure_location = "s3://failure/r/" + v.output_id + "-error.out";
    return v;
  }
  int64_t Insert(queue::Invocation& v) {
    auto seq = queue::testing::InsertSync(*h_.queue, v);
    EXPECT_TRUE(seq.ok());
    v.seq = *seq;
    return v.seq;
  }
  void Wait(std::function<void(queue::InvocationStore::Done)> write) {
    Status st = queue::testing::Wait(write);
    ASSERT_TRUE(st.ok()) << st.error().message;
  }
  void Started(const queue::Invocation& v) {
    Wait([&](auto done) { h_.queue->MarkStarted(v.seq, 1, "AllTraffic", "127.0.0.1:1", 1, done); });
  }
  // A result object as the pipeline writes it.
  void PutResult(const std::string& location, const std::string& output_id, const std::string& body,
                 const std::string& content_type, const std::string& reason = "") {
    auto loc = store::ParseS3Uri(location);
    store::ObjectAttributes a{content_type, {{kOutputIdHeader, output_id}}};
    if (!reason.empty()) a.headers.push_back({kFailureReasonHeader, reason});
    store::testing::StringSource src(body);
    ASSERT_TRUE(h_.objects->Put(loc->bucket, loc->key, a, src).ok());
  }
  std::set<std::string> Ids(const std::vector<json::object>& messages) {
    std::set<std::string> ids;
    for (auto m : messages) ids.insert(Str(m["inferenceId"]));
    return ids;
  }
};

TEST_F(RecoveryTest, StartedInvocationsWithAResultAreFinishedNotRunAgain) {
  auto done_before = Record("done-before-crash");
  auto failed_before = Record("failed-before-crash");
  auto never_answered = Record("never-answered");
  auto collision = Record("someone-elses-object");
  auto queued = Record("queued");
  auto owed = Record("finished-not-notified");
  for (auto* v : {&done_before, &failed_before, &never_answered, &collision, &queued, &owed}) {
    Insert(*v);
  }
  for (auto* v : {&done_before, &failed_before, &never_answered, &collision, &owed}) Started(*v);
  PutResult(done_before.output_location, done_before.output_id, "answer", "application/json");
  PutResult(failed_before.failure_location, failed_before.output_id, "model said no", "text/plain",
            "ClientError: Received client error (400) from model. See ...");
  PutResult(collision.output_location, "another-output-id", "not mine", "text/plain");
  queue::Invocation finished = owed;
  finished.state = InvocationState::kCompleted;
  finished.finished_ms = 1'800'000'001'000;
  finished.response_content_type = "text/plain";
  PutResult(owed.output_location, owed.output_id, "owed", "text/plain");
  Wait([&](auto done) { h_.queue->Finish(finished, done); });

  InstanceRef echo = h_.StartEcho("AllTraffic");
  h_.SetInstances("ep", {echo});
  h_.StartDispatcher();

  auto a = h_.WaitDone("ep", "done-before-crash");
  EXPECT_EQ(a.state, InvocationState::kCompleted);
  EXPECT_EQ(a.response_content_type, "application/json");
  auto b = h_.WaitDone("ep", "failed-before-crash");
  EXPECT_EQ(b.state, InvocationState::kFailed);
  EXPECT_EQ(b.failure_reason, "ClientError: Received client error (400) from model. See ...");
  for (const char* id : {"never-answered", "someone-elses-object", "queued"}) {
    auto v = h_.WaitDone("ep", id);
    EXPECT_EQ(v.state, InvocationState::kCompleted) << id;
    EXPECT_EQ(h_.Get(v.output_location)->first, std::string("body of ") + id);
  }
  EXPECT_EQ(h_.Get(never_answered.output_location)->first, "body of never-answered");
  EXPECT_EQ(h_.WaitDone("ep", "never-answered").attempts, 2);  // the crash counted as one
  // Only the three without a result of their own reached the model.
  EXPECT_EQ(h_.Stats(echo)["requests"].as_int64(), 3);

  auto ok = h_.WaitMessages(ok_, 5);
  EXPECT_EQ(Ids(ok),
            (std::set<std::string>{"done-before-crash", "never-answered", "someone-elses-object",
                                   "queued", "finished-not-notified"}));
  auto errors = h_.WaitMessages(err_, 1);
  EXPECT_EQ(Str(errors[0]["failureReason"]), b.failure_reason);

  // A second restart owes nothing: no model call, no notification.
  h_.dispatcher.reset();
  h_.StartDispatcher();
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(h_.Messages(ok_, "InferenceResult").size(), 5u);
  EXPECT_EQ(h_.Messages(err_, "InferenceResult").size(), 1u);
  EXPECT_EQ(h_.Stats(echo)["requests"].as_int64(), 3);
}

TEST_F(RecoveryTest, ANotificationPublishedBeforeTheCrashIsNotPublishedAgain) {
  auto v = Record("published-then-crashed");
  Insert(v);
  queue::Invocation finished = v;
  finished.state = InvocationState::kCompleted;
  finished.finished_ms = 1'800'000'001'000;
  Wait([&](auto done) { h_.queue->Finish(finished, done); });
  PutResult(v.output_location, v.output_id, "x", "text/plain");
  // The dispatcher published (keyed by the output id) and died before MarkNotified.
  notify::PublishRequest earlier;
  earlier.topic_arn = ok_;
  earlier.message = R"({"inferenceId":"published-then-crashed","eventName":"InferenceResult"})";
  earlier.dedup_id = v.output_id;
  ASSERT_TRUE(h_.notifier->Publish(earlier).ok());

  h_.StartDispatcher();
  // Marked notified only after its (deduplicated) publish returned: nothing more can come.
  ASSERT_TRUE(WaitFor([&] { return h_.queue->GetBySeq(v.seq).value()->notified; }));
  EXPECT_EQ(h_.Messages(ok_, "InferenceResult").size(), 1u);
}

// Older inferd versions published a 2xx answer's notification held while the output committed,
// and released it once both were durable; a crash in between left it held (notify/store.h).
// Their data dirs are recovered as they were.
TEST_F(RecoveryTest, AHeldNotificationOfAnOutputWrittenBeforeTheCrashIsSentAsItWas) {
  auto v = Record("held-output-durable");
  Insert(v);
  Started(v);  // attempt 1
  PutResult(v.output_location, v.output_id, "answer", "text/plain");
  notify::PublishRequest held;
  held.topic_arn = ok_;
  held.message = R"({"inferenceId":"held-output-durable","eventName":"InferenceResult",)"
                 R"("eventTime":"as the worker wrote it"})";
  held.dedup_id = v.output_id;
  ASSERT_TRUE(notify::testing::PublishHeld(*h_.notifier, held, /*tag=*/1, 1.8e9).ok());
  ASSERT_TRUE(h_.Messages(ok_).empty());

  h_.StartDispatcher();
  auto done = h_.WaitDone("ep", "held-output-durable");
  EXPECT_EQ(done.state, InvocationState::kCompleted);
  // Released as it was (it may have been sent before the crash: the same message again).
  auto messages = h_.WaitMessages(ok_, 1);
  EXPECT_EQ(Str(messages[0]["eventTime"]), "as the worker wrote it");
  ASSERT_TRUE(WaitFor([&] { return h_.queue->GetBySeq(v.seq).value()->notified; }));
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(h_.Messages(ok_, "InferenceResult").size(), 1u);
}

TEST_F(RecoveryTest, AHeldNotificationOfAnOutputNeverWrittenIsReplacedByTheRerunsOwn) {
  auto v = Record("held-output-lost");
  Insert(v);
  Started(v);  // attempt 1: answered, its notification held, then the crash before the output
  notify::PublishRequest held;
  held.topic_arn = ok_;
  held.message = R"({"inferenceId":"held-output-lost","eventName":"InferenceResult",)"
                 R"("eventTime":"of the lost attempt"})";
  held.dedup_id = v.output_id;
  ASSERT_TRUE(notify::testing::PublishHeld(*h_.notifier, held, /*tag=*/1, 1.8e9).ok());

  InstanceRef echo = h_.StartEcho("AllTraffic");
  h_.SetInstances("ep", {echo});
  h_.StartDispatcher();
  auto done = h_.WaitDone("ep", "held-output-lost");
  EXPECT_EQ(done.state, InvocationState::kCompleted);
  EXPECT_EQ(done.attempts, 2);
  EXPECT_EQ(h_.Get(v.output_location)->first, "body of held-output-lost");
  auto messages = h_.WaitMessages(ok_, 1);
  EXPECT_NE(Str(messages[0]["eventTime"]), "of the lost attempt");
  EXPECT_EQ(Str(messages[0]["responseParameters"].as_object()["outputLocation"]),
            v.output_location);
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(h_.Messages(ok_, "InferenceResult").size(), 1u);
}

TEST_F(RecoveryTest, InvocationsOfADeletedEndpointFailWithoutNotification) {
  auto v = Record("orphan", "gone");
  Insert(v);
  h_.StartDispatcher();
  auto done = h_.WaitDone("gone", "orphan");
  EXPECT_EQ(done.state, InvocationState::kFailed);
  EXPECT_THAT(done.failure_reason,
              StartsWith("Endpoint gone was deleted before the invocation ran"));
  EXPECT_EQ(h_.Get(v.failure_location)->first, done.failure_reason);
  ASSERT_TRUE(WaitFor([&] { return h_.queue->GetBySeq(v.seq).value()->notified; }));
  EXPECT_TRUE(h_.Messages(err_, "InferenceResult").empty());
}

TEST_F(RecoveryTest, StopAbandonsCallsPastItsDeadlineAndTheNextStartRunsThem) {
  h_.SetInstances("ep", {h_.StartEcho("AllTraffic", {{"ECHO_DELAY_MS", "10000"}})});
  h_.StartDispatcher();
  auto a = h_.InvokeInline("ep", "slow");
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(WaitFor([&] {
    auto s = h_.dispatcher->Describe(kRegion, "ep", a->inference_id);
    return s.ok() && s->invocation.state == InvocationState::kStarted && !s->instance.empty();
  }));
  const auto start = std::chrono::steady_clock::now();
  h_.dispatcher->Stop(std::chrono::steady_clock::now() + 200ms);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_EQ(h_.queue->Get(kRegion, "ep", a->inference_id).value()->state,
            InvocationState::kStarted);
  EXPECT_FALSE(h_.Get(a->output_location));

  h_.dispatcher.reset();
  h_.SetInstances("ep", {h_.StartEcho("AllTraffic")});
  h_.StartDispatcher();
  auto done = h_.WaitDone("ep", a->inference_id);
  EXPECT_EQ(done.state, InvocationState::kCompleted);
  EXPECT_EQ(done.attempts, 2);
  EXPECT_EQ(h_.Get(a->output_location)->first, "slow");
  EXPECT_EQ(h_.WaitMessages(ok_, 1).size(), 1u);
}

TEST_F(RecoveryTest, HundredsInterruptedAreEachFinishedExactlyOnce) {
  h_.options.worker_threads = 16;
  h_.SetInstances("ep", {h_.StartEcho("AllTraffic", {{"ECHO_DELAY_MS", "20"}}),
                         h_.StartEcho("AllTraffic", {{"ECHO_DELAY_MS", "20"}})});
  h_.StartDispatcher();
  constexpr int kCount = 300;
  // Accepted concurrently (group commit), as a busy front end would.
  std::vector<std::future<inferd::Result<Accepted>>> answers;
  for (int i = 0; i < kCount; ++i) {
    AcceptRequest r;
    r.endpoint = "ep";
    r.inline_body = "n" + std::to_string(i);
    answers.push_back(h_.AcceptAsync(std::move(r)));
  }
  std::vector<Accepted> accepted;
  for (auto& f : answers) accepted.push_back(*f.get());
  // Interrupt with work queued and in flight: nothing gets time to finish.
  h_.dispatcher->Stop(std::chrono::steady_clock::now());
  h_.dispatcher.reset();
  h_.StartDispatcher();
  for (int i = 0; i < kCount; ++i) {
    auto v = h_.WaitDone("ep", accepted[i].inference_id);
    ASSERT_EQ(v.state, InvocationState::kCompleted);
    ASSERT_EQ(h_.Get(accepted[i].output_location)->first, "n" + std::to_string(i));
  }
  auto messages = h_.WaitMessages(ok_, kCount);
  EXPECT_EQ(Ids(messages).size(), static_cast<size_t>(kCount));
  EXPECT_TRUE(h_.Messages(err_, "InferenceResult").empty());
}

}  // namespace
}  // namespace inferd::dispatch
