// Queueing, capacity and the API around the pipeline: concurrency caps, backlog and expiry,
// cancel, endpoint deletion and update, acceptance errors, InvokeEndpoint (see test_util.h).
#include <algorithm>
#include <atomic>
#include <thread>

#include "dispatch/dispatcher.h"
#include "dispatch/test_util.h"
#include "queue/testing.h"

namespace inferd::dispatch {
namespace {

using namespace testing;  // test_util.h: the harness, matchers, InvocationState

TEST_F(DispatcherTest, TheConcurrencyCapIsObservedByTheInstance) {
  h_.CreateEndpoint("ep", AsyncConfig(ok_, err_, "", /*max_concurrency=*/2));
  h_.StartDispatcher();
  InstanceRef echo = h_.StartEcho("AllTraffic", {{"ECHO_DELAY_MS", "150"}});
  h_.SetInstances("ep", {echo});
  std::vector<Accepted> accepted;
  for (int i = 0; i < 8; ++i) accepted.push_back(h_.InvokeWith("ep", "n" + std::to_string(i)));
  for (const Accepted& a : accepted) {
    EXPECT_EQ(h_.WaitDone("ep", a.inference_id).state, InvocationState::kCompleted);
  }
  json::object stats = h_.Stats(echo);
  EXPECT_EQ(stats["requests"].as_int64(), 8);
  EXPECT_EQ(stats["max_in_flight"].as_int64(), 2);
}

TEST_F(DispatcherTest, DefaultCapAppliesWithoutClientConfig) {
  h_.options.default_max_concurrency_per_instance = 3;
  h_.CreateEndpoint("ep", AsyncConfig(ok_, err_));
  h_.StartDispatcher();
  InstanceRef echo = h_.StartEcho("AllTraffic", {{"ECHO_DELAY_MS", "150"}});
  h_.SetInstances("ep", {echo});
  std::vector<Accepted> accepted;
  for (int i = 0; i < 9; ++i) accepted.push_back(h_.InvokeWith("ep", "n"));
  for (const Accepted& a : accepted) h_.WaitDone("ep", a.inference_id);
  EXPECT_EQ(h_.Stats(echo)["max_in_flight"].as_int64(), 3);
}

TEST_F(DispatcherTest, QueuedWorkWaitsForCapacityThenExpires) {
  h_.CreateEndpoint("ep", AsyncConfig(ok_, err_));
  h_.StartDispatcher();
  AcceptRequest r;
  r.ttl_seconds = 60;
  Accepted a = h_.InvokeWith("ep", "x", r);
  h_.clock.Advance(30s);
  auto queued = h_.dispatcher->Describe(kRegion, "ep", a.inference_id);
  ASSERT_TRUE(queued.ok());
  EXPECT_EQ(queued->invocation.state, InvocationState::kQueued);
  EXPECT_EQ(queued->queue_position, 0);
  std::string metrics = h_.dispatcher->RenderMetrics();
  EXPECT_THAT(metrics, HasSubstr("inferd_has_backlog_without_capacity{endpoint=\"ep\"} 1\n"));
  EXPECT_THAT(metrics,
              HasSubstr("inferd_approximate_age_of_oldest_request_seconds{endpoint=\"ep\"} 30\n"));
  EXPECT_THAT(metrics, HasSubstr("inferd_approximate_backlog_size{endpoint=\"ep\"} 1\n"));
  EXPECT_THAT(metrics,
              HasSubstr("inferd_approximate_backlog_size_per_instance{endpoint=\"ep\"} 1\n"));

  h_.clock.Advance(31s);
  h_.dispatcher->Wake();
  queue::Invocation done = h_.WaitDone("ep", a.inference_id);
  EXPECT_EQ(done.state, InvocationState::kFailed);
  EXPECT_EQ(done.failure_reason,
            "Request expired: it waited longer than RequestTTLSeconds (60 s) in the queue before "
            "a model instance was free. Add capacity to the endpoint or invoke with a longer "
            "RequestTTLSeconds.");
  EXPECT_EQ(h_.Get(a.failure_location)->first, done.failure_reason);
  EXPECT_EQ(Str(h_.WaitMessages(err_, 1)[0]["failureReason"]), done.failure_reason);
  EXPECT_THAT(h_.dispatcher->RenderMetrics(),
              HasSubstr("inferd_expired_requests_total{endpoint=\"ep\",variant=\"\"} 1\n"));
}

// How many objects `bucket` holds (0 if it cannot be listed).
size_t Objects(store::ObjectStore& objects, const std::string& bucket) {
  auto listed = objects.List(bucket, {});
  return listed.ok() ? listed->objects.size() : 0;
}

// An accept that finds its endpoint idle (nothing queued, a slot free) goes to a worker at once,
// and its Insert records the start (no MarkStarted). Its model call runs and its result object
// is stored while that Insert syncs; only its 202, its notification and its end wait for it.
TEST_F(DispatcherTest, AnIdleEndpointRunsTheInvocationWhileTheAcceptIsWritten) {
  InstanceRef echo = ServeWithEcho("ep");
  AcceptRequest r = h_.InputRequest("ep", "a,b\n");
  const int64_t writes = h_.queue->Stats().writes;
  std::future<Result<Accepted>> answer;
  {
    queue::testing::WriterGate held(*h_.queue);  // the accept's write waits behind this one
    answer = h_.AcceptAsync(r);
    EXPECT_TRUE(WaitFor([&] { return h_.Stats(echo)["requests"].as_int64() == 1; }));
    EXPECT_TRUE(WaitFor([&] { return Objects(*h_.objects, "output") == 1; }));
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(answer.wait_for(0s), std::future_status::timeout);  // no 202 before it is stored
    EXPECT_EQ(*h_.notifier->store().CountDeliveries(), 0) << "notified before it was stored";
    held.Open();
  }
  Result<Accepted> a = answer.get();
  ASSERT_TRUE(a.ok()) << a.error().message;
  queue::Invocation done = h_.WaitDone("ep", a->inference_id);
  EXPECT_EQ(done.state, InvocationState::kCompleted);
  EXPECT_EQ(done.attempts, 1);
  EXPECT_EQ(done.instance, "127.0.0.1:" + std::to_string(echo.port));
  EXPECT_EQ(done.started_ms, done.received_ms);
  ASSERT_TRUE(h_.Get(a->output_location));
  EXPECT_EQ(h_.Get(a->output_location)->first, "a,b\n");
  EXPECT_EQ(h_.WaitMessages(ok_, 1).size(), 1u);
  // The held write, the accept (recording the start) and the end: no MarkStarted.
  EXPECT_EQ(h_.queue->Stats().writes - writes, 3);
}

// A 2xx answer's notification is prepared at the answer but committed only once the output and
// the invocation's start are durable (here the accept's write waits), and the end is recorded
// only once that commit is durable, so a crash before it leaves the invocation Started and the
// restart publishes the key again (recovery tests).
TEST_F(DispatcherTest, TheNotificationFollowsTheOutputAndTheEndFollowsItsCommit) {
  InstanceRef echo = ServeWithEcho("ep");
  AcceptRequest r = h_.InputRequest("ep", "x");
  std::future<Result<Accepted>> answer;
  std::unique_lock<std::mutex> notify_waits;
  {
    queue::testing::WriterGate held(*h_.queue);  // the accept's write, so the notification, waits
    answer = h_.AcceptAsync(r);
    EXPECT_TRUE(WaitFor([&] { return h_.Stats(echo)["requests"].as_int64() == 1; }));
    // The model answered and the output is stored: its notification is not written yet.
    EXPECT_TRUE(WaitFor([&] { return Objects(*h_.objects, "output") == 1; }));
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(*h_.notifier->store().CountDeliveries(), 0);
    notify_waits = h_.notifier->store().HoldWriterForTesting();
    held.Open();
  }
  Result<Accepted> a = answer.get();
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_TRUE(WaitFor([&] { return h_.Get(a->output_location).has_value(); }));
  std::this_thread::sleep_for(150ms);
  auto state = h_.dispatcher->Describe(kRegion, "ep", a->inference_id);
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->invocation.state, InvocationState::kStarted);  // not recorded yet
  notify_waits.unlock();
  queue::Invocation done = h_.WaitDone("ep", a->inference_id);
  EXPECT_EQ(done.state, InvocationState::kCompleted);
  EXPECT_TRUE(WaitFor([&] { return h_.queue->GetBySeq(done.seq).value()->notified; }));
  auto messages = h_.WaitMessages(ok_, 1);
  EXPECT_EQ(Str(messages[0]["inferenceId"]), a->inference_id);
}

// An accept whose Insert fails was never accepted: its caller gets the error, and the result its
// worker stored meanwhile is removed, unannounced.
TEST_F(DispatcherTest, AnAcceptThatCannotBeStoredLeavesNoResultAndNoNotification) {
  ServeWithEcho("ep");
  AcceptRequest r = h_.InputRequest("ep", "x");
  r.inference_id = "never-stored";
  std::future<Result<Accepted>> answer;
  {
    queue::testing::WriterGate held(*h_.queue);  // the accept's write waits until it fails
    answer = h_.AcceptAsync(r);
    EXPECT_TRUE(WaitFor([&] { return Objects(*h_.objects, "output") == 1; }));
    h_.queue->FailCommitsForTesting(Error(Errc::kInternal, "disk I/O error"));
    held.Open();
  }
  Result<Accepted> a = answer.get();
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().code, Errc::kInternal);
  EXPECT_NE(a.error().message.find("disk I/O error"), std::string::npos) << a.error().message;
  h_.queue->FailCommitsForTesting(std::nullopt);
  EXPECT_TRUE(WaitFor([&] { return Objects(*h_.objects, "output") == 0; }))
      << "the result of an invocation that was never accepted stayed";
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(*h_.notifier->store().CountDeliveries(), 0);
  EXPECT_EQ(h_.dispatcher->Describe(kRegion, "ep", "never-stored").error().code, Errc::kNotFound);
  // The endpoint goes on: the next invocation runs as usual.
  auto next = h_.Invoke(h_.InputRequest("ep", "y"));
  ASSERT_TRUE(next.ok()) << next.error().message;
  EXPECT_EQ(h_.WaitDone("ep", next->inference_id).state, InvocationState::kCompleted);
  EXPECT_EQ(h_.Get(next->output_location)->first, "y");
}

// An accept does not pass work ahead of it: not an invocation still being written when the
// slot frees, nor one already queued.
TEST_F(DispatcherTest, AnAcceptDoesNotPassWorkAheadOfIt) {
  h_.options.capacity_poll_interval = 1h;  // the loop learns of capacity only when woken
  h_.options.expiry_sweep_interval = 1h;
  h_.CreateEndpoint("ep", AsyncConfig(ok_, err_, "", /*max_concurrency=*/1));
  h_.StartDispatcher();
  AcceptRequest r = h_.InputRequest("ep", "x");
  std::future<Result<Accepted>> f1, f2;
  {
    queue::testing::WriterGate held(*h_.queue);
    // No instance: the first goes to the queue, and is still being written when one appears.
    f1 = h_.AcceptAsync(r);
    h_.SetInstances("ep", {h_.StartEcho("AllTraffic", {{"ECHO_DELAY_MS", "400"}})},
                    /*wake=*/false);
    f2 = h_.AcceptAsync(r);
    held.Open();
  }
  Result<Accepted> first = f1.get();
  Result<Accepted> second = f2.get();
  ASSERT_TRUE(first.ok() && second.ok());
  auto state = [&](const Result<Accepted>& a) {
    auto s = h_.dispatcher->Describe(kRegion, "ep", a->inference_id);
    return s.ok() ? s->invocation.state : InvocationState::kFailed;
  };
  // The first runs (once its queue wakes the loop), the second waits its turn.
  EXPECT_TRUE(WaitFor([&] { return state(first) == InvocationState::kStarted; }));
  EXPECT_EQ(state(second), InvocationState::kQueued);
  EXPECT_EQ(h_.WaitDone("ep", first->inference_id).state, InvocationState::kCompleted);
  EXPECT_EQ(h_.WaitDone("ep", second->inference_id).state, InvocationState::kCompleted);
  // While one is queued (no capacity known to the loop), a later accept is queued behind it
  // even with a slot free.
  h_.SetInstances("ep", {}, /*wake=*/false);
  Accepted third = h_.InvokeWith("ep", "third");  // no instance: queued
  h_.SetInstances("ep", {h_.StartEcho("AllTraffic")}, /*wake=*/false);
  Accepted fourth = h_.InvokeWith("ep", "fourth");
  std::this_thread::sleep_for(200ms);
  auto fourth_state = h_.dispatcher->Describe(kRegion, "ep", fourth.inference_id);
  ASSERT_TRUE(fourth_state.ok());
  EXPECT_EQ(fourth_state->invocation.state, InvocationState::kQueued);
  h_.dispatcher->Wake();
  EXPECT_EQ(h_.WaitDone("ep", third.inference_id).state, InvocationState::kCompleted);
  EXPECT_EQ(h_.WaitDone("ep", fourth.inference_id).state, InvocationState::kCompleted);
}

TEST_F(DispatcherTest, BacklogDrainsInOrderWhenCapacityReturns) {
  h_.CreateEndpoint("ep", AsyncConfig(ok_, err_, "", /*max_concurrency=*/1));
  h_.StartDispatcher();
  std::vector<Accepted> accepted;
  for (int i = 0; i < 5; ++i) accepted.push_back(h_.InvokeWith("ep", std::to_string(i)));
  auto listed = h_.dispatcher->List(kRegion, "ep", {}, 0, 100);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 5u);
  EXPECT_EQ((*listed)[4].queue_position, 4);
  // The dispatcher's clock moves while the backlog drains (each call takes 50 ms), so the start
  // times tell the order the invocations ran in.
  std::atomic<bool> ticking{true};
  std::thread ticker([&] {
    while (ticking) {
      h_.clock.Advance(1ms);
      std::this_thread::sleep_for(1ms);
    }
  });
  h_.SetInstances("ep", {h_.StartEcho("AllTraffic", {{"ECHO_DELAY_MS", "50"}})});
  int64_t previous_start = 0;
  for (const Accepted& a : accepted) {
    queue::Invocation done = h_.WaitDone("ep", a.inference_id);
    EXPECT_EQ(done.state, InvocationState::kCompleted);
    EXPECT_GE(done.started_ms, previous_start);
    previous_start = done.started_ms;
  }
  ticking = false;
  ticker.join();
  EXPECT_TRUE(h_.dispatcher->List(kRegion, "ep", {}, 0, 100)->empty());
}

// Workers carry the backlog themselves: with the loop asleep (its polls an hour apart) after
// handing out the first invocation, one worker runs every queued invocation of two endpoints,
// taking them in turn.
TEST_F(DispatcherTest, AWorkerTakesTheNextInvocationItselfInTurnBetweenEndpoints) {
  h_.options.worker_threads = 1;
  h_.options.capacity_poll_interval = 1h;
  h_.options.expiry_sweep_interval = 1h;
  h_.CreateEndpoint("ep-a", AsyncConfig(ok_, err_, "", /*max_concurrency=*/1));
  h_.CreateEndpoint("ep-b", AsyncConfig(ok_, err_, "", /*max_concurrency=*/1));
  h_.StartDispatcher();
  std::vector<std::pair<std::string, Accepted>> accepted;
  for (int i = 0; i < 4; ++i) {
    for (const char* ep : {"ep-a", "ep-b"}) accepted.emplace_back(ep, h_.InvokeWith(ep, "x"));
  }
  std::atomic<bool> ticking{true};
  std::thread ticker([&] {
    while (ticking) {
      h_.clock.Advance(1ms);
      std::this_thread::sleep_for(1ms);
    }
  });
  InstanceRef echo = h_.StartEcho("AllTraffic", {{"ECHO_DELAY_MS", "20"}});
  {
    // Both endpoints' capacity becomes known in one pass of the loop.
    h_.SetInstances("ep-a", {echo});
    h_.SetInstances("ep-b", {echo});
  }
  std::vector<std::pair<int64_t, std::string>> starts;
  for (const auto& [ep, a] : accepted) {
    queue::Invocation done = h_.WaitDone(ep, a.inference_id, 10s);
    EXPECT_EQ(done.state, InvocationState::kCompleted);
    starts.emplace_back(done.started_ms, ep);
  }
  ticking = false;
  ticker.join();
  std::sort(starts.begin(), starts.end());
  // In turn: no endpoint runs twice in a row while the other has backlog (the first pass may
  // start either).
  int same_in_a_row = 0;
  for (size_t i = 1; i + 1 < starts.size(); ++i) {
    if (starts[i].second == starts[i + 1].second) ++same_in_a_row;
  }
  EXPECT_LE(same_in_a_row, 1);
  EXPECT_EQ(h_.Stats(echo)["max_in_flight"].as_int64(), 1);
}

TEST_F(DispatcherTest, CancelEndsAQueuedInvocationWithItsNotification) {
  h_.CreateEndpoint("ep", AsyncConfig(ok_, err_));
  h_.StartDispatcher();
  Accepted a = h_.InvokeWith("ep", "x");
  Accepted b = h_.InvokeWith("ep", "y");
  EXPECT_EQ(h_.dispatcher->Describe(kRegion, "ep", b.inference_id)->queue_position, 1);
  auto cancelled = h_.dispatcher->Cancel(kRegion, "ep", a.inference_id);
  ASSERT_TRUE(cancelled.ok()) << cancelled.error().message;
  EXPECT_EQ(cancelled->invocation.state, InvocationState::kFailed);
  EXPECT_THAT(cancelled->invocation.failure_reason, StartsWith("Cancelled: "));
  EXPECT_EQ(h_.dispatcher->Describe(kRegion, "ep", b.inference_id)->queue_position, 0);
  EXPECT_EQ(h_.Get(a.failure_location)->first, cancelled->invocation.failure_reason);
  EXPECT_EQ(Str(h_.WaitMessages(err_, 1)[0]["inferenceId"]), a.inference_id);

  auto again = h_.dispatcher->Cancel(kRegion, "ep", a.inference_id);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, Errc::kInvalidState);
  EXPECT_EQ(again.error().message, "Invocation " + a.inference_id +
                                       " of endpoint ep is Failed: only queued invocations can "
                                       "be cancelled.");
  auto unknown = h_.dispatcher->Cancel(kRegion, "ep", "nope");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, Errc::kNotFound);
  EXPECT_EQ(unknown.error().message, "Invocation nope of endpoint ep not found.");

  // The other one still runs once there is capacity.
  h_.SetInstances("ep", {h_.StartEcho("AllTraffic")});
  EXPECT_EQ(h_.WaitDone("ep", b.inference_id).state, InvocationState::kCompleted);
  auto finished = h_.dispatcher->Cancel(kRegion, "ep", b.inference_id);
  EXPECT_EQ(finished.error().code, Errc::kInvalidState);
}

TEST_F(DispatcherTest, DeletingTheEndpointFailsItsQueuedInvocations) {
  h_.CreateEndpoint("ep", AsyncConfig(ok_, err_));
  h_.StartDispatcher();
  std::vector<Accepted> accepted;
  for (int i = 0; i < 3; ++i) accepted.push_back(h_.InvokeWith("ep", "x"));
  ASSERT_TRUE(h_.catalog->DeleteEndpoint(kRegion, json::object{{"EndpointName", "ep"}}).ok());
  for (const Accepted& a : accepted) {
    queue::Invocation done = h_.WaitDone("ep", a.inference_id);
    EXPECT_EQ(done.state, InvocationState::kFailed);
    EXPECT_THAT(done.failure_reason,
                StartsWith("Endpoint ep was deleted before the invocation ran"));
  }
  EXPECT_EQ(h_.WaitMessages(err_, 3).size(), 3u);
  auto refused = h_.InvokeInline("ep", "x");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Errc::kValidation);
  EXPECT_EQ(refused.error().message, "Endpoint ep of account 123456789012 not found.");
}

TEST_F(DispatcherTest, UpdateEndpointSendsTheTestNotificationOfTheNewConfiguration) {
  const std::string other = h_.Topic("other");
  h_.StartDispatcher();
  h_.CreateEndpoint("ep", AsyncConfig(ok_, err_));
  h_.WaitMessages(ok_, 1, "TestNotification");
  h_.InService("ep");
  h_.CreateEndpoint("ep", AsyncConfig(other, other), {{"AllTraffic", 1}}, "ep-config-2");
  auto up = h_.catalog->UpdateEndpoint(
      kRegion, json::object{{"EndpointName", "ep"}, {"EndpointConfigName", "ep-config-2"}});
  ASSERT_TRUE(up.ok()) << up.error().message;
  auto test = h_.WaitMessages(other, 1, "TestNotification");  // one per distinct topic
  EXPECT_EQ(
      json::serialize(test[0]),
      R"({"eventVersion":"1.0","eventSource":"aws:sagemaker","eventName":"TestNotification"})");
  // Queued work is kept across the update.
  Accepted a = h_.InvokeWith("ep", "kept");
  h_.SetInstances("ep", {h_.StartEcho("AllTraffic")});
  EXPECT_EQ(h_.WaitDone("ep", a.inference_id).state, InvocationState::kCompleted);
}

TEST_F(DispatcherTest, AcceptRefusesWhatSageMakerRefuses) {
  h_.CreateEndpoint("rt", "");
  h_.StartDispatcher();
  auto missing = h_.InvokeInline("missing", "x");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, Errc::kValidation);
  EXPECT_EQ(missing.error().aws_code, "");
  EXPECT_EQ(missing.error().message, "Endpoint missing of account 123456789012 not found.");
  auto real_time = h_.InvokeInline("rt", "x");
  ASSERT_FALSE(real_time.ok());
  EXPECT_EQ(real_time.error().code, Errc::kValidation);
  EXPECT_THAT(real_time.error().message,
              StartsWith("Endpoint rt of account 123456789012 is not configured for asynchronous "
                         "inference"));
}

TEST_F(DispatcherTest, InvokeSyncOnARealTimeEndpoint) {
  h_.CreateEndpoint("rt", "", {{"a", 1}, {"b", 1}});
  h_.CreateEndpoint("async", AsyncConfig(ok_, err_));
  h_.StartDispatcher();
  SyncRequest r;
  r.region = kRegion;
  r.endpoint = "rt";
  r.body = "ping";
  r.content_type = "text/plain";
  r.custom_attributes = "c=1";
  auto none = h_.dispatcher->InvokeSync(r);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, Errc::kThrottled);
  EXPECT_EQ(none.error().aws_code, "ModelNotReadyException");

  h_.SetInstances("rt", {h_.StartEcho("a"), h_.StartEcho("b", {{"ECHO_STATUS", "400"}})});
  r.target_variant = "a";
  auto ok = h_.dispatcher->InvokeSync(r);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(ok->body, "ping");
  EXPECT_EQ(ok->content_type, "text/plain");
  EXPECT_EQ(ok->variant, "a");
  EXPECT_EQ(ok->custom_attributes, "c=1");

  r.target_variant = "b";
  auto model_error = h_.dispatcher->InvokeSync(r);
  ASSERT_FALSE(model_error.ok());
  EXPECT_EQ(model_error.error().code, Errc::kModelError);
  EXPECT_EQ(model_error.error().aws_code, "ModelError");
  EXPECT_THAT(model_error.error().message,
              StartsWith("Received client error (400) from primary with message \"echo: failing "
                         "with 400 as asked\". See "));

  r.target_variant = "c";
  EXPECT_EQ(h_.dispatcher->InvokeSync(r).error().code, Errc::kValidation);
  r.target_variant = "";
  r.endpoint = "async";
  auto async = h_.dispatcher->InvokeSync(r);
  ASSERT_FALSE(async.ok());
  EXPECT_EQ(async.error().code, Errc::kValidation);
  EXPECT_THAT(async.error().message, HasSubstr("accepts only InvokeEndpointAsync"));
}

TEST_F(DispatcherTest, InvokeSyncThrottlesWhenEveryInstanceIsAtItsCap) {
  h_.options.default_max_concurrency_per_instance = 1;
  h_.CreateEndpoint("rt", "");
  h_.StartDispatcher();
  InstanceRef slow = h_.StartEcho("AllTraffic", {{"ECHO_DELAY_MS", "2000"}});
  h_.SetInstances("rt", {slow});
  SyncRequest r;
  r.region = kRegion;
  r.endpoint = "rt";
  r.body = "x";
  std::thread first([&] { EXPECT_TRUE(h_.dispatcher->InvokeSync(r).ok()); });
  ASSERT_TRUE(WaitFor([&] { return h_.Stats(slow)["in_flight"].as_int64() == 1; }));
  // The only slot stays taken for longer than sync_slot_wait (500 ms).
  auto throttled = h_.dispatcher->InvokeSync(r);
  first.join();
  ASSERT_FALSE(throttled.ok());
  EXPECT_EQ(throttled.error().code, Errc::kThrottled);
  EXPECT_EQ(throttled.error().aws_code, "");  // ThrottlingException
  EXPECT_EQ(throttled.error().message,
            "Every instance of endpoint rt is serving its maximum of 1 concurrent requests. Retry "
            "later.");
  EXPECT_EQ(h_.Stats(slow)["requests"].as_int64(), 1);
}

TEST_F(DispatcherTest, InvokeSyncTimeoutIsAModelError) {
  h_.options.sync_timeout = 300ms;
  h_.CreateEndpoint("rt", "");
  h_.StartDispatcher();
  h_.SetInstances("rt", {h_.StartEcho("AllTraffic", {{"ECHO_DELAY_MS", "3000"}})});
  SyncRequest r;
  r.region = kRegion;
  r.endpoint = "rt";
  r.body = "x";
  auto timed_out = h_.dispatcher->InvokeSync(r);
  ASSERT_FALSE(timed_out.ok());
  EXPECT_EQ(timed_out.error().code, Errc::kModelError);
  EXPECT_EQ(timed_out.error().aws_code, "ModelError");
  EXPECT_THAT(timed_out.error().message,
              StartsWith("Your invocation timed out while waiting for a response from container "
                         "primary."));
}

}  // namespace
}  // namespace inferd::dispatch
