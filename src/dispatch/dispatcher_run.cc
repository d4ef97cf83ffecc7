// Dispatcher: running one invocation, ending queued ones, notifications.
#include <spdlog/spdlog.h>

#include <future>
#include <thread>

#include "dispatch/dispatcher_impl.h"
#include "dispatch/notification.h"
#include "dispatch/reasons.h"
#include "notify/notifier.h"

namespace inferd::dispatch {

namespace {

using queue::InvocationState;

constexpr auto kMaxRetryBackoff = std::chrono::seconds(60);

// The object at `location` when it is at most kMaxEmbeddedResponse bytes.
std::optional<std::string> ReadSmall(store::ObjectStore& objects, const std::string& location) {
  auto loc = store::ParseS3Uri(location);
  if (!loc.ok()) return std::nullopt;
  auto reader = objects.Get(loc->bucket, loc->key);
  if (!reader.ok() || (*reader)->length() > kMaxEmbeddedResponse) return std::nullopt;
  std::string out;
  char buf[16 * 1024];
  for (;;) {
    auto n = (*reader)->Read(buf, sizeof buf);
    if (!n.ok()) return std::nullopt;
    if (*n == 0) break;
    out.append(buf, *n);
    if (out.size() > kMaxEmbeddedResponse) return std::nullopt;
  }
  return out;
}

}  // namespace

void Dispatcher::Impl::SetEnd(queue::Invocation& inv, InvocationState state, std::string reason,
                              std::string response_content_type) const {
  inv.state = state;
  inv.finished_ms = NowMs();
  inv.failure_reason = std::move(reason);
  inv.response_content_type = std::move(response_content_type);
  inv.notified = false;
}

std::future<Status> Dispatcher::Impl::FinishAsync(queue::Invocation& inv, InvocationState state,
                                                  std::string reason,
                                                  std::string response_content_type) {
  SetEnd(inv, state, std::move(reason), std::move(response_content_type));
  auto promise = std::make_shared<std::promise<Status>>();
  auto future = promise->get_future();
  queue.Finish(inv, [promise](Status s) { promise->set_value(std::move(s)); });
  return future;
}

std::optional<Dispatcher::Impl::Begun> Dispatcher::Impl::Begin(RunJob& job) {
  const QueueEntry entry = job.entry;
  if (job.accepted) {
    Begun b{std::move(*job.accepted), job.inserted};
    metrics.Observe(Summary::kTimeInBacklog, Label(job.view, b.inv.endpoint), job.instance.variant,
                    static_cast<double>(NowMs() - b.inv.received_ms));
    return b;
  }
  auto rec = queue.GetBySeq(entry.seq);
  if (!rec.ok()) {
    spdlog::error("dispatch: cannot read invocation #{}: {}; trying again in a second", entry.seq,
                  rec.error().message);
    job.lease.Release();
    std::this_thread::sleep_for(std::chrono::seconds(1));
    scheduler.Push(job.key, entry);
    Kick();
    return std::nullopt;
  }
  if (!*rec || (*rec)->state != InvocationState::kQueued) {
    spdlog::warn("dispatch: invocation #{} was dequeued but is not Queued in the store; skipped",
                 entry.seq);
    return std::nullopt;
  }
  Begun b{std::move(**rec), std::make_shared<StartGate>()};
  queue::Invocation& inv = b.inv;
  const int64_t now = NowMs();
  if (entry.ExpiredAt(now)) {
    job.lease.Release();
    EndQueued(std::move(inv), job.view, EndKind::kExpired);
    return std::nullopt;
  }
  if (inv.attempts == 0) {
    metrics.Observe(Summary::kTimeInBacklog, Label(job.view, inv.endpoint), job.instance.variant,
                    static_cast<double>(now - inv.received_ms));
  }
  inv.attempts += 1;
  inv.variant = job.instance.variant;
  inv.instance = InstanceKey(job.instance);
  inv.started_ms = now;
  inv.state = InvocationState::kStarted;
  // Durable before any result object commits (the pipeline's puts wait for the gate), overlapped
  // with the model call.
  queue.MarkStarted(inv.seq, inv.attempts, inv.variant, inv.instance, now,
                    [gate = b.gate](Status s) { gate->Set(std::move(s)); });
  return b;
}

bool Dispatcher::Impl::AtRest() {
  {
    std::lock_guard lock(mu);
    if (active_runs > 1) return false;
  }
  return load.Below(kRestCores);
}

std::optional<notify::PreparedPublish> Dispatcher::Impl::PrepareSuccess(
    const queue::Invocation& inv, const EndpointView& view, const std::string& topic,
    const std::string& content_type, const std::string* body, int64_t answered_ms) {
  std::optional<std::string> embed;
  if (body && view.async->Embeds(/*success=*/true)) embed = *body;
  NotificationFacts f = FactsOf(inv, std::move(embed));
  f.success = true;
  f.failure_reason.clear();
  f.event_ms = answered_ms;
  f.response_content_type = content_type;
  // Signed on a presign thread while one is free, otherwise by this thread as it publishes.
  auto prepared = notifier.Prepare(NotificationOf(f, topic, inv.output_id),
                                   notify::Presigner::SignOn::kThreadOrCaller);
  if (!prepared.ok()) {
    spdlog::warn(
        "dispatch: invocation {}: preparing its notification failed ({}); publishing "
        "it after the output",
        inv.inference_id, prepared.error().message);
    return std::nullopt;
  }
  return std::move(prepared).value();
}

void Dispatcher::Impl::Run(RunJob job) {
  const bool accepted = job.accepted.has_value();  // before Begin takes the invocation out
  std::optional<Begun> begun = Begin(job);
  if (!begun) return;
  queue::Invocation& inv = begun->inv;
  const std::shared_ptr<StartGate> gate = begun->gate;
  QueueEntry entry = job.entry;
  const std::shared_ptr<const EndpointView> view = job.view;
  const std::string label = Label(view, inv.endpoint);
  // A 2xx answer's notification is built as soon as the answer is complete and signed on a
  // presign thread while the output object commits — or, when none is free, by this worker once
  // the output is durable and its slot free, as it publishes (notify/presigner.h); that
  // publish's deliveries leave as soon as they are written, before its commit's sync
  // (notify::Notifier::Publish(PreparedPublish)). At rest it is built on the `prepare` thread, so
  // the worker goes straight on to the output's commit (≈ 0.1 ms, and a presign thread's
  // wake-up, off the worker's path); under load the worker builds it itself, which saves a
  // context switch per invocation.
  const std::string* topic = TopicOf(view, /*success=*/true);
  if (!accepted) {
    std::lock_guard lock(mu);
    running[inv.seq] = inv.instance;
  }
  std::optional<notify::PreparedPublish> prepared;
  int64_t answered_ms = 0;
  std::future<void> prepared_off_thread;  // waited for as soon as the attempt returns
  OnAnswer on_answer;
  if (topic) {
    on_answer = [&](const std::string& content_type, const std::string* body) {
      answered_ms = NowMs();
      if (!AtRest()) {
        prepared = PrepareSuccess(inv, *view, *topic, content_type, body, answered_ms);
        return;
      }
      // `body` lives only until the attempt returns: copied when it is to be embedded.
      std::optional<std::string> embedded;
      if (body && view->async->Embeds(/*success=*/true)) embedded = *body;
      // A packaged task: its future is ready however the task ends.
      auto build = std::make_shared<std::packaged_task<void()>>(
          [&, content_type, embedded = std::move(embedded)] {
            prepared = PrepareSuccess(inv, *view, *topic, content_type,
                                      embedded ? &*embedded : nullptr, answered_ms);
          });
      prepared_off_thread = build->get_future();
      prepare.Post([build] { (*build)(); });
    };
  }
  // Handed over at acceptance, its result commits while its Insert syncs (pipeline.h).
  AttemptOutcome out =
      pipeline.Attempt(inv, job.instance, *gate,
                       accepted ? ResultCommit::kAtOnce : ResultCommit::kAfterStart, on_answer);
  // The prepare thread reads `inv` and `view` and sets `prepared`: done before either is used.
  if (prepared_off_thread.valid()) prepared_off_thread.wait();
  job.lease.Release();
  if (accepted) {
    // Everything below names the invocation by the seq its Insert gave it.
    Status stored = gate->Wait();
    if (!stored.ok()) {
      spdlog::info("dispatch: invocation {} was not stored ({}); its caller got the error",
                   inv.inference_id, stored.error().message);
      if (!out.committed.empty()) {
        Status removed = pipeline.RemoveResult(out.committed, inv.output_id);
        if (!removed.ok()) {
          spdlog::error(
              "dispatch: invocation {} was not stored, and its result {} could not be "
              "removed: {}",
              inv.inference_id, out.committed, removed.error().message);
        }
      }
      return;
    }
    inv.seq = entry.seq = gate->seq();
  } else {
    std::lock_guard lock(mu);
    running.erase(inv.seq);
  }
  if (out.status != 0) {
    metrics.Observe(Summary::kModelLatency, label, inv.variant,
                    static_cast<double>(out.model_latency_us));
  }

  switch (out.kind) {
    case AttemptOutcome::kAbandoned:
      spdlog::info("dispatch: invocation {} abandoned at shutdown; it runs again at the next start",
                   inv.inference_id);
      return;
    case AttemptOutcome::kNotStarted:
      spdlog::error("dispatch: invocation {}: could not record its start ({}); queued again",
                    inv.inference_id, out.detail);
      if (gate->Wait().error().code == Errc::kInvalidState) return;
      std::this_thread::sleep_for(std::chrono::seconds(1));
      scheduler.Push(job.key, entry);
      Kick();
      return;
    case AttemptOutcome::kConnection:
      CoolDown(inv.instance);
      if (inv.attempts < options.max_attempts) {
        spdlog::warn(
            "dispatch: invocation {} of {}: instance {} failed before answering ({}); attempt "
            "{} of {}, running it again on another instance",
            inv.inference_id, label, inv.instance, out.detail, inv.attempts, options.max_attempts);
        CallbackIssued();
        queue.Requeue(inv.seq, [this, key = job.key, entry, id = inv.inference_id](Status s) {
          if (!s.ok()) {
            // Stays Started: recovered at the next start.
            spdlog::error("dispatch: invocation {} could not be queued again: {}", id,
                          s.error().message);
          } else {
            scheduler.Push(key, entry);
            Kick();
          }
          CallbackDone();
        });
        return;
      }
      out.reason = reasons::Connection(label, inv.attempts, out.detail);
      break;
    default:
      break;
  }

  const bool success = out.kind == AttemptOutcome::kCompleted;
  // What the failure object holds (the model's answer, or the reason), for the notification.
  std::optional<std::string> failure_content;
  if (!success) {
    if (out.kind == AttemptOutcome::kModelError &&
        (out.failure_object_written || inv.failure_location.empty())) {
      failure_content = out.body;
    } else if (!inv.failure_location.empty()) {
      Status st = pipeline.WriteFailureObject(inv, out.reason, gate.get());
      if (st.ok()) {
        failure_content = out.reason;
      } else {
        out.upload_failed = true;
        spdlog::warn("dispatch: invocation {}: could not write the failure object {}: {}",
                     inv.inference_id, inv.failure_location, st.error().message);
      }
    }
    metrics.Add(Counter::kInvocationFailures, label, inv.variant);
    if (out.kind == AttemptOutcome::kInputUnreadable) {
      metrics.Add(Counter::kRequestDownloadFailures, label, inv.variant);
    }
    if (out.status >= 400 && out.status < 500) {
      metrics.Add(Counter::kInvocation4xxErrors, label, inv.variant);
    } else if (out.status >= 500) {
      metrics.Add(Counter::kInvocation5xxErrors, label, inv.variant);
    }
    spdlog::info("dispatch: invocation {} of {} failed on {}: {}", inv.inference_id, label,
                 inv.instance, out.reason);
  }
  if (out.upload_failed) metrics.Add(Counter::kResponseUploadFailures, label, inv.variant);

  // The result object is durable already: the notification is published first, then the end is
  // recorded together with `notified` — one write, not waited for. If that write fails (or
  // inferd dies first) the next start finds the invocation Started, finishes it from its result
  // object and publishes again with the same deduplication key — still one notification.
  SetEnd(inv, success ? InvocationState::kCompleted : InvocationState::kFailed,
         success ? "" : out.reason, out.content_type);
  if (prepared && success) {
    inv.finished_ms = answered_ms;  // the eventTime it carries
    // At rest it lets the delivery it wakes go before its notify.db commit
    // (DeliveryWorker::Offer). Not otherwise: on a busy machine that yield hands the core away
    // while this worker leads the commit.
    prepared->delivery_first = AtRest();
    inv.notified = Published(notifier.Publish(std::move(*prepared)), inv, label, *topic);
  } else {
    // A failure, or no notification prepared: published now.
    auto current = directory.FindKey(job.key);
    if (!current) current = view;
    std::optional<std::string> embed;
    if (current && current->async && current->async->Embeds(success)) {
      embed = success ? out.body : failure_content;
    }
    inv.notified = Notify(inv, current, std::move(embed), /*mark_notified=*/false);
  }
  CallbackIssued();
  queue.Finish(inv, [this, seq = inv.seq, id = inv.inference_id, label, variant = inv.variant,
                     received_ms = inv.received_ms, notified = inv.notified](Status st) {
    if (!st.ok()) {
      // Started in the store: the next start finishes it from its result object.
      spdlog::error("dispatch: invocation {}: could not record its end: {}", id,
                    st.error().message);
    } else {
      metrics.Add(Counter::kInvocationsProcessed, label, variant);
      if (!notified) ScheduleRetry(seq, std::nullopt);
      metrics.Observe(Summary::kTotalProcessingTime, label, variant,
                      static_cast<double>(NowMs() - received_ms));
    }
    CallbackDone();
  });
}

std::optional<queue::Invocation> Dispatcher::Impl::EndQueued(
    queue::Invocation finished, const std::shared_ptr<const EndpointView>& view, EndKind kind) {
  const std::string label = Label(view, finished.endpoint);
  std::string reason = kind == EndKind::kExpired   ? reasons::Expired(finished.ttl_seconds)
                       : kind == EndKind::kDeleted ? reasons::EndpointDeleted(label)
                                                   : reasons::Cancelled();
  Status st = Finish(finished, InvocationState::kFailed, reason, "");
  if (!st.ok()) {
    if (st.error().code != Errc::kInvalidState) {
      spdlog::error("dispatch: invocation {}: could not record its end: {}", finished.inference_id,
                    st.error().message);
    }
    return std::nullopt;
  }
  metrics.Add(Counter::kInvocationFailures, label, "");
  if (kind == EndKind::kExpired) metrics.Add(Counter::kExpiredRequests, label, "");
  // The record is final: a crash from here on is repaired by NotifyFromStore (failure object
  // written if missing, notification published).
  std::optional<std::string> embed;
  Status written = pipeline.WriteFailureObject(finished, reason, nullptr);
  if (!written.ok()) {
    metrics.Add(Counter::kResponseUploadFailures, label, "");
    spdlog::warn("dispatch: invocation {}: could not write the failure object {}: {}",
                 finished.inference_id, finished.failure_location, written.error().message);
  } else if (!finished.failure_location.empty() && view && view->async &&
             view->async->Embeds(/*success=*/false)) {
    embed = reason;
  }
  finished.notified = Notify(finished, view, std::move(embed));
  if (!finished.notified) ScheduleRetry(finished.seq, std::nullopt);
  metrics.Observe(Summary::kTotalProcessingTime, label, "",
                  static_cast<double>(NowMs() - finished.received_ms));
  return finished;
}

NotificationFacts Dispatcher::Impl::FactsOf(const queue::Invocation& inv,
                                            std::optional<std::string> body) {
  NotificationFacts f;
  f.region = inv.region;
  f.received_ms = inv.received_ms;
  f.event_ms = inv.finished_ms;
  f.success = inv.state == InvocationState::kCompleted;
  f.failure_reason = inv.failure_reason;
  f.accept = inv.accept;
  f.content_type = inv.content_type;
  f.custom_attributes = inv.custom_attributes;
  f.endpoint_name = inv.endpoint;
  f.input_location = inv.input_location;
  f.response_content_type = inv.response_content_type;
  f.output_location = inv.output_location;
  f.failure_location = inv.failure_location;
  f.inference_id = inv.inference_id;
  f.response_body = std::move(body);
  return f;
}

const std::string* Dispatcher::Impl::TopicOf(const std::shared_ptr<const EndpointView>& view,
                                             bool success) {
  const AsyncConfig* config = view && view->async ? &*view->async : nullptr;
  const std::string* topic =
      config ? (success ? &config->success_topic : &config->error_topic) : nullptr;
  return topic && !topic->empty() ? topic : nullptr;
}

notify::PublishRequest Dispatcher::Impl::NotificationOf(const NotificationFacts& f,
                                                        const std::string& topic,
                                                        const std::string& output_id) {
  notify::PublishRequest req;
  req.topic_arn = topic;
  req.message = f.success ? SuccessMessage(f) : ErrorMessage(f);
  req.dedup_id = output_id;
  return req;
}

bool Dispatcher::Impl::Notify(const queue::Invocation& inv,
                              const std::shared_ptr<const EndpointView>& view,
                              std::optional<std::string> body, bool mark_notified,
                              int64_t release_held) {
  const std::string* topic = TopicOf(view, inv.state == InvocationState::kCompleted);
  if (!topic) {
    if (mark_notified) queue.MarkNotified(inv.seq);
    return true;
  }
  notify::PublishRequest req = NotificationOf(FactsOf(inv, std::move(body)), *topic, inv.output_id);
  req.release_held = release_held;
  // Signed by this thread when no presign thread is free, as a prepared publish is.
  auto published = notifier.Publish(req, {}, notify::Presigner::SignOn::kThreadOrCaller);
  if (!Published(published, inv, Label(view, inv.endpoint), *topic)) return false;
  if (mark_notified) queue.MarkNotified(inv.seq);
  return true;
}

bool Dispatcher::Impl::Published(const Result<std::string>& published, const queue::Invocation& inv,
                                 const std::string& label, const std::string& topic) {
  if (published.ok()) return true;
  metrics.Add(Counter::kNotificationFailures, label, inv.variant);
  spdlog::warn("dispatch: invocation {}: publishing its notification to {} failed ({}); retrying",
               inv.inference_id, topic, published.error().message);
  return false;
}

void Dispatcher::Impl::NotifyFromStore(int64_t seq, std::optional<NotifyRetry> retry) {
  auto rec = queue.GetBySeq(seq);
  if (!rec.ok()) {
    spdlog::error("dispatch: cannot read invocation #{}: {}", seq, rec.error().message);
    ScheduleRetry(seq, retry);
    return;
  }
  if (!*rec || (*rec)->notified) return;
  const queue::Invocation& inv = **rec;
  const bool success = inv.state == InvocationState::kCompleted;
  if (!success && inv.state != InvocationState::kFailed) return;
  auto view = directory.Find(inv.region, inv.endpoint);
  if (!success && !inv.failure_location.empty()) {
    // An invocation ended without running may have stopped before its failure object.
    auto loc = store::ParseS3Uri(inv.failure_location);
    if (loc.ok()) {
      auto head = objects.Head(loc->bucket, loc->key);
      if (!head.ok() && head.error().code == Errc::kNotFound) {
        Status st = pipeline.WriteFailureObject(inv, inv.failure_reason, nullptr);
        if (!st.ok()) {
          spdlog::warn("dispatch: invocation {}: could not write the failure object {}: {}",
                       inv.inference_id, inv.failure_location, st.error().message);
        }
      }
    }
  }
  if (!view) {
    spdlog::warn(
        "dispatch: invocation {}: endpoint {} no longer exists, so its notification "
        "cannot be sent",
        inv.inference_id, inv.endpoint);
  }
  std::optional<std::string> body;
  const std::string& written = success ? inv.output_location : inv.failure_location;
  if (view && view->async && view->async->Embeds(success) && !written.empty()) {
    body = ReadSmall(objects, written);
  }
  // A Completed invocation's output object is durable: a notification held for it by the
  // attempt that wrote it (the same attempt number) announces it and may have been sent.
  const int64_t release = success ? inv.attempts : 0;
  if (!Notify(inv, view, std::move(body), /*mark_notified=*/true, release)) {
    ScheduleRetry(seq, retry);
  }
}

void Dispatcher::Impl::ScheduleRetry(int64_t seq, std::optional<NotifyRetry> previous) {
  const auto now = clock.Monotonic();
  NotifyRetry r;
  if (previous) {
    r = *previous;
    r.backoff = std::min<std::chrono::milliseconds>(r.backoff * 2, kMaxRetryBackoff);
  } else {
    r.give_up = now + options.notification_retry_for;
  }
  if (now >= r.give_up) {
    spdlog::error(
        "dispatch: giving up the notification of invocation #{} after {} ms of failed publishes",
        seq, options.notification_retry_for.count());
    queue.MarkNotified(seq);
    return;
  }
  r.seq = seq;
  r.due = now + r.backoff;
  {
    std::lock_guard lock(mu);
    if (stopping) return;  // not notified in the store: the next Start publishes it
    retries.push_back(r);
    dirty = true;
  }
  loop_cv.notify_one();
}

}  // namespace inferd::dispatch
