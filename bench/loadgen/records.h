// What the load generator remembers of each request, shared by the thread that sent it and the
// notification sink's thread that sees it complete.
//
// One RecordTable per sender thread; request `seq` of thread `t` carries the InferenceId
// "<prefix>-<t>-<seq>", so the sink finds the record from the notification alone (no map, no
// lock). A record's life:
//
//   Add(seq): intended_ns set ──► sent ──► answered_ns + status (202 accepted, else an error)
//                                   └────► completed_ns + event_ms (notification; may come first)
//
// Only the owning sender thread calls Add (seqs in order, from 0); any thread may Find. Fields are
// atomics: the sink may complete a record before its sender has read the 202.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace inferd::bench {

inline int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
inline int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Record {
  std::atomic<int64_t> intended_ns{0};   // steady clock: when the request was due
  std::atomic<int64_t> answered_ns{0};   // when its response was read (0: not yet / never)
  std::atomic<int32_t> status{0};        // HTTP status; -1: transport error
  std::atomic<int64_t> completed_ns{0};  // first notification's arrival (steady clock)
  std::atomic<int64_t> event_ms{0};      // its eventTime (wall clock, ms)
  std::atomic<uint32_t> notifications{0};
  std::atomic<bool> failed{false};  // invocationStatus "Failed"
  // Set once the request stops counting as outstanding (answered with an error, or completed).
  std::atomic<bool> released{false};
};

class RecordTable {
 public:
  static constexpr uint64_t kChunk = 1 << 14;
  static constexpr uint64_t kMaxChunks = 1 << 12;  // 67 million requests per sender thread

  RecordTable() = default;
  ~RecordTable();
  RecordTable(const RecordTable&) = delete;
  RecordTable& operator=(const RecordTable&) = delete;

  // Owner thread only; seq == size(). nullptr when the table is full.
  Record* Add(uint64_t seq);
  // Any thread; nullptr when seq was never added.
  Record* Find(uint64_t seq) const;
  uint64_t size() const { return size_.load(std::memory_order_acquire); }

 private:
  std::array<std::atomic<Record*>, kMaxChunks> chunks_{};
  std::atomic<uint64_t> size_{0};
};

// "<prefix>-<thread>-<seq>".
std::string MakeInferenceId(std::string_view prefix, int thread, uint64_t seq);
struct IdParts {
  int thread = 0;
  uint64_t seq = 0;
};
// nullopt unless `id` is MakeInferenceId(prefix, t, s) for some t, s.
std::optional<IdParts> ParseInferenceId(std::string_view id, std::string_view prefix);

// An ISO-8601 UTC time with milliseconds ("2026-11-20T19:30:00.123Z") → epoch ms.
std::optional<int64_t> ParseEventTimeMs(std::string_view text);

// Distribution of a set of durations (nanoseconds in, milliseconds out).
struct Summary {
  uint64_t count = 0;
  double mean_ms = 0, p50_ms = 0, p90_ms = 0, p99_ms = 0, p999_ms = 0, max_ms = 0;
};
Summary Summarize(std::vector<int64_t> values_ns);

}  // namespace inferd::bench
