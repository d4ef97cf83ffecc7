// DeliveryWorker: sends the outbox's deliveries to HTTP/S subscribers and retries them by the
// delivery policy until they succeed or the policy gives up.
//
// Threads (its own, started by Start()):
//   - one scheduler: picks due deliveries from the store and queues them for the workers. A
//     picked delivery is "in flight" (tracked in memory only) until its outcome is committed: it
//     is never picked twice at once. At most `max_inflight_per_subscription` attempts of one
//     subscription are queued or running, so a slow or dead subscriber ties up at most that many
//     workers and never delays the others. With every worker busy a wake-up reads nothing.
//   - `threads` workers: each builds and signs one delivery's POST, sends it through `send` (per
//     attempt timeout), and decides the outcome: 2xx → delivered, row removed; 4xx → the endpoint
//     refused the message, given up (as SNS does); anything else (5xx, other statuses, connection
//     errors, timeouts) → the next attempt is scheduled after the policy's delay, measured from
//     the end of the failed attempt, or the delivery is given up when the retries are used up.
//     Give-ups are logged. The worker hands the outcome over and takes the next delivery: it does
//     not wait for the commit.
//   - one outcome writer: commits every outcome handed over since its last commit in one write
//     (NotifyStore::RecordOutcomes), then takes those deliveries out of flight. So the workers'
//     rate does not follow the disk's commit latency, and a commit covers many outcomes. It also
//     purges old subscriptions every `purge_interval`; the scheduler only reads.
// Outcomes are committed before the delivery leaves the in-flight set, so a later scheduling round
// reads the updated row. A crash loses only in-flight bookkeeping and outcomes not yet committed:
// those rows are due again after a restart (at-least-once).
//
// Offered deliveries (the fast path). The store stays the source of truth, but a publisher that
// has just committed deliveries hands them over in memory (Offer): the message, its subscription
// and topic attributes as the publish read them, valid while NotifyStore::config_version() is
// unchanged. A worker sends an offered delivery without reading it back; a stale one (topics or
// subscriptions changed since) is read from the store as before. Per subscription:
//   store mode ──(a scheduling round finds each of its due rows in flight or offered, and no
//                 retry outcome of it waiting to be committed)──▶ memory mode [until T: its
//                 earliest row not held in memory, if any]
//   memory mode ──(a retry outcome; an attempt that ended without an outcome; a failed commit of
//                  outcomes; T reached)──▶ store mode
//   every subscription ──(Wake(): rows written without an offer; a stale offer; more offers than
//                         the bound; the scheduler's once-a-second safety round)──▶ store mode
// In memory mode every due row of the subscription is in flight or offered, so the thread that
// frees a place (an Offer, the end of an attempt) queues its next offered deliveries itself,
// lowest id first, under the same limits: no scheduler wake-up and no store read. In store mode
// the scheduler picks from the store as described above, taking the offered copy of a row it
// picks when there is one. When a store round left due rows waiting for a worker, freed workers
// go to the scheduler first. Offers are bounded (count and bytes); beyond that they are dropped
// and the store serves. Nothing is offered before Start() or after Stop().
//
// Stop(deadline) stops scheduling, lets in-flight attempts finish until the deadline, commits
// the outcomes of those that ended, then abandons the rest: their threads are detached, finish
// their HTTP exchange on their own and exit without touching the store (the rows stay due and
// are retried after a restart). So a subscriber that never answers cannot hold up shutdown.
//
// Time comes from the injected Clock. RunOnce() runs one scheduling round and its attempts on the
// calling thread and commits their outcomes before it returns, so tests drive the schedule with a
// FakeClock and no threads.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "http/client.h"
#include "notify/signer.h"
#include "notify/store.h"

namespace inferd::notify {

// Sends one HTTP request (blocking). The production one wraps http::Client (http_send.h).
using SendFn = std::function<Result<http::ClientResponse>(const http::ClientRequest&)>;

struct DeliveryOptions {
  int threads = 4;
  int max_inflight_per_subscription = 1;
  std::chrono::milliseconds attempt_timeout{15000};
  // How often deleted and expired subscriptions are purged from the store.
  std::chrono::seconds purge_interval{3600};
  Status Validate() const;
};

class DeliveryWorker {
 public:
  // `store`, `signer` and `clock` must outlive the worker (or, after Stop(), its abandoned
  // threads, which no longer touch them). `public_url` returns the base of the links in
  // envelopes; it is called on worker threads.
  DeliveryWorker(NotifyStore& store, const Signer& signer, const Clock& clock,
                 DeliveryOptions options, SendFn send, std::function<std::string()> public_url);
  ~DeliveryWorker();  // Stop(now) when still running.
  DeliveryWorker(const DeliveryWorker&) = delete;
  DeliveryWorker& operator=(const DeliveryWorker&) = delete;

  void Start();
  void Stop(std::chrono::steady_clock::time_point deadline);
  // New deliveries were committed: schedule now rather than at the next poll.
  void Wake();
  // Deliveries just committed (by Publish/PublishOnce), each with its message, subscription and
  // topic attributes; `config_version` is NotifyStore::config_version() read before any of that
  // was read. Replaces Wake() for them. Ignored unless started. `delivery_first`: when the
  // offer wakes a worker thread that was waiting for a task, the caller yields its core
  // (sched_yield) before going on, so that on a machine with few cores the delivery is not
  // queued behind the rest of the caller's work (for a publisher at rest: under load the yield
  // would hand the core to whatever else is queued on it, measured to cost throughput).
  void Offer(std::vector<std::shared_ptr<const Delivery>> deliveries, uint64_t config_version,
             bool delivery_first = false);
  // Offered deliveries sent without reading them back from the store (for tests and metrics).
  uint64_t sent_from_memory() const;

  // One scheduling round and its attempts, on the calling thread (not with Start()). Returns
  // the number of attempts made.
  int RunOnce();

 private:
  struct State;
  static void WorkerMain(std::shared_ptr<State> state, size_t index);
  static void OutcomeWriterMain(State* state);
  void SchedulerMain();

  std::shared_ptr<State> state_;
  std::thread scheduler_;
  std::thread outcome_writer_;
  std::vector<std::thread> workers_;
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace inferd::notify
