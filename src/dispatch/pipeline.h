// Pipeline: one attempt of one invocation against one instance, and the result objects.
//
//   input: the InputLocation object opened in the store (streamed, never held whole) or the
//          inline body
//   → POST http://<instance>/invocations (Content-Type, Accept, X-Amzn-SageMaker-Custom-
//     Attributes, X-Amzn-SageMaker-Inference-Id, Content-Length), limited as a whole to
//     InvocationTimeoutSeconds
//   → once the answer's head arrives: 2xx → the output object, else → the failure object (when
//     the endpoint has S3FailurePath), with the container's Content-Type. Answers with a
//     Content-Length up to `memory_response_bytes` are held and stored after the call; larger
//     or chunked (accepted) ones stream into the store through a BodyPipe while they arrive.
//
// Exactly once: an invocation taken from the queue has its object puts wait
// (PutOptions::before_commit) for the StartGate — its durable MarkStarted — so a result object
// never exists for an invocation the store still holds Queued (a restart could otherwise expire
// or cancel it beside its output). An invocation handed to a worker at acceptance is not in the
// store until its Insert commits (it is recorded Started by that Insert): its result may commit
// at once, while that Insert syncs (ResultCommit::kAtOnce), because nothing can end it another
// way; only its notification and its end wait for the Insert. Should the Insert fail, the
// caller removes the result (RemoveResult); should inferd die before the Insert is durable, the
// result stays, for an invocation its caller never saw accepted (docs/sagemaker-compat.md).
// Puts are atomic: an aborted call leaves nothing visible.
// Result objects carry x-amz-meta-inferd-output-id (recovery checks it is theirs) and failure
// objects x-amz-meta-failure-reason.
//
// Thread-safety: Attempt() may run on many threads at once; it blocks (network, store).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "common/result.h"
#include "dispatch/dispatcher.h"
#include "http/client.h"
#include "queue/invocation_store.h"
#include "store/object_store.h"

namespace inferd::dispatch {

inline constexpr const char* kOutputIdHeader = "x-amz-meta-inferd-output-id";
inline constexpr const char* kFailureReasonHeader = "x-amz-meta-failure-reason";
inline constexpr const char* kReasonContentType = "text/plain; charset=utf-8";

// POST http://<instance>/invocations carrying what the caller supplied (each header only when
// not empty): Content-Type, Accept, X-Amzn-SageMaker-Custom-Attributes,
// X-Amzn-SageMaker-Inference-Id. For InvokeEndpoint and InvokeEndpointAsync alike.
http::ClientRequest ModelRequest(const InstanceRef& instance, const std::string& content_type,
                                 const std::string& accept, const std::string& custom_attributes,
                                 const std::string& inference_id);

// The value of the object's metadata header `name` (as stored: x-amz-meta-…), if it has one.
std::optional<std::string> HeaderOf(const store::ObjectInfo& info, std::string_view name);

// Set once, when the invocation's start is durable (MarkStarted's callback, or the Insert's of
// an invocation handed to a worker at acceptance, with the seq it got); Wait() blocks until then.
class StartGate {
 public:
  void Set(Status status, int64_t seq = 0);
  Status Wait();
  // The seq Set gave (0 if none); read after Wait() returned.
  int64_t seq() const { return seq_; }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Status> status_;
  int64_t seq_ = 0;
};

// When an attempt's result objects may commit (see the file comment).
enum class ResultCommit {
  kAfterStart,  // once the StartGate is set: an invocation taken from the queue
  kAtOnce,      // as soon as stored: an invocation handed over at acceptance
};

struct AttemptOutcome {
  enum Kind {
    kCompleted,        // 2xx; the output object is written
    kModelError,       // non-2xx answer; failure object written if failure_object_written
    kInputUnreadable,  // the input object could not be opened or read
    kTimeout,          // InvocationTimeoutSeconds elapsed before a complete answer
    kOversize,         // the answer is larger than max_response_bytes
    kUploadFailed,     // a 2xx answer could not be stored
    kConnection,       // refused / reset / closed before a complete answer: retry elsewhere
    kAbandoned,        // cancelled (Stop): nothing written, the invocation stays Started
    kNotStarted,       // MarkStarted failed: nothing written
  };
  Kind kind = kConnection;
  int status = 0;            // the container's status, when it answered
  std::string content_type;  // the container's Content-Type
  std::string reason;        // the failure reason (all but kCompleted/kConnection/kAbandoned)
  std::string detail;        // what went wrong below (for logs and retry reasons)
  std::optional<std::string> body;  // the answer when ≤ kMaxEmbeddedResponse bytes
  bool failure_object_written = false;
  bool upload_failed = false;  // an object put failed (ResponseUploadFailures)
  std::string committed;       // the location of the result object this attempt stored, if any
  int64_t model_latency_us = 0;
};

// Called once a 2xx answer is complete and held in memory, just before its output object is
// stored (the caller may prepare what follows while the store commits): the container's
// Content-Type and the answer when it is at most kMaxEmbeddedResponse bytes (else nullptr). Not
// called for an answer streamed into the store.
using OnAnswer = std::function<void(const std::string& content_type, const std::string* body)>;

class Pipeline {
 public:
  Pipeline(const DispatchOptions& options, store::ObjectStore& objects, http::Client& client,
           const std::atomic<bool>& cancel);

  // One attempt (see the file comment). `gate` is the attempt's durable start (MarkStarted, or
  // the Insert of an invocation handed over at acceptance); the outcome is known only once it
  // is set (kNotStarted if it failed). `commit` says whether result objects wait for it.
  AttemptOutcome Attempt(const queue::Invocation& invocation, const InstanceRef& instance,
                         StartGate& gate, ResultCommit commit, const OnAnswer& on_answer = {});

  // Writes the failure object of `invocation` holding `reason` (text/plain), after `gate`
  // (nullptr: no wait). OK without a failure location.
  Status WriteFailureObject(const queue::Invocation& invocation, const std::string& reason,
                            StartGate* gate);

  // Puts `body` at `location` (s3://bucket/key) with the invocation's metadata; waits for
  // `gate` before the object becomes visible.
  Status PutResult(const std::string& location, const std::string& output_id,
                   const std::string& content_type, const std::string& failure_reason,
                   http::ByteSource& body, StartGate* gate);

  // The object at `location` when it exists and was written for `output_id`. kNotFound when it
  // does not exist (or is someone else's); other errors as the store gives them.
  Result<store::ObjectInfo> HeadOwned(const std::string& location, const std::string& output_id);

  // Deletes the object at `location` if it was written for `output_id` (OK when there is none).
  Status RemoveResult(const std::string& location, const std::string& output_id);

 private:
  const DispatchOptions& options_;
  store::ObjectStore& objects_;
  http::Client& client_;
  const std::atomic<bool>& cancel_;
};

}  // namespace inferd::dispatch
