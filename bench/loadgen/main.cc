// inferd-loadgen: the load generator of bench/ (see bench/README.md). Runs the senders and the
// notification sink, then prints one JSON line of results on stdout; progress and problems go to
// stderr.
#include <sys/resource.h>

#include <boost/json.hpp>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <random>
#include <thread>

#include "options.h"
#include "records.h"
#include "sender.h"
#include "sink.h"

namespace {

using namespace inferd::bench;
namespace json = boost::json;

double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

std::string RandomHex(size_t n) {
  std::random_device rd;
  std::mt19937_64 gen(rd());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) s += kHex[gen() % 16];
  return s;
}

json::object ToJson(const Summary& s) {
  auto round = [](double v) { return std::round(v * 1000.0) / 1000.0; };
  return {{"count", s.count},       {"mean", round(s.mean_ms)}, {"p50", round(s.p50_ms)},
          {"p90", round(s.p90_ms)}, {"p99", round(s.p99_ms)},   {"p999", round(s.p999_ms)},
          {"max", round(s.max_ms)}};
}

double PerSecond(uint64_t n, int64_t from_ns, int64_t to_ns) {
  if (n == 0 || to_ns <= from_ns) return 0;
  return std::round(static_cast<double>(n) / (static_cast<double>(to_ns - from_ns) / 1e9) * 10) /
         10;
}

void AddSinkFields(json::object& out, const SinkStats& s) {
  out["completed"] = s.completed;
  out["failed"] = s.failed;
  out["duplicates"] = s.duplicates;
  out["foreign"] = s.foreign;
  out["test_notifications"] = s.test_notifications;
  out["confirmations"] = s.confirmations;
  out["confirm_failures"] = s.confirm_failures;
  out["malformed"] = s.malformed;
  out["first_completion_wall_ms"] = s.first_wall_ms;
  out["last_completion_wall_ms"] = s.last_wall_ms;
  json::array per_second;
  for (uint32_t n : s.per_second) per_second.push_back(n);
  out["notified_per_second"] = std::move(per_second);
}

// Waits until done() or the timeout; prints progress every second with --verbose.
template <typename Done, typename Progress>
bool WaitFor(double seconds, bool verbose, Done done, Progress progress) {
  const int64_t deadline = NowNs() + static_cast<int64_t>(seconds * 1e9);
  int64_t next_print = NowNs() + 1'000'000'000;
  while (!done()) {
    if (NowNs() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (verbose && NowNs() >= next_print) {
      std::cerr << "inferd-loadgen: " << progress() << "\n";
      next_print += 1'000'000'000;
    }
  }
  return true;
}

int SinkOnly(const LoadOptions& o, Sink& sink) {
  const int64_t started = NowNs();
  const bool all = WaitFor(
      o.timeout_seconds, o.verbose, [&] { return sink.completed() >= o.expect; },
      [&] { return std::to_string(sink.completed()) + "/" + std::to_string(o.expect); });
  const SinkStats s = sink.stats();
  json::object out{{"mode", "sink-only"}, {"id_prefix", o.id_prefix}, {"expect", o.expect}};
  AddSinkFields(out, s);
  out["timed_out"] = !all;
  out["wall_s"] = static_cast<double>(NowNs() - started) / 1e9;
  out["completed_per_s"] = s.completed > 1 ? PerSecond(s.completed - 1, s.first_ns, s.last_ns) : 0;
  std::cout << json::serialize(out) << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int exit_code = 0;
  auto parsed = ParseArgs(argc, argv, &exit_code);
  if (!parsed) return exit_code;
  LoadOptions o = std::move(*parsed);
  if (o.id_prefix.empty()) o.id_prefix = RandomHex(8);

  RunState state;
  std::vector<std::unique_ptr<RecordTable>> tables;
  std::vector<RecordTable*> table_ptrs;
  if (o.mode != Mode::kSinkOnly) {
    for (int t = 0; t < o.threads; ++t) {
      tables.push_back(std::make_unique<RecordTable>());
      table_ptrs.push_back(tables.back().get());
    }
  }
  std::unique_ptr<Sink> sink;
  if (!o.sink_listen.empty()) {
    sink = std::make_unique<Sink>(o, table_ptrs, state);
    if (auto st = sink->Start(); !st.ok()) {
      std::cerr << "inferd-loadgen: " << st.error().message << "\n";
      return 1;
    }
    std::cerr << "inferd-loadgen: sink listening on http://127.0.0.1:" << sink->port() << "/"
              << std::endl;
  }
  if (o.wait_confirmations > 0) {
    const bool confirmed = WaitFor(
        o.wait_confirmations_seconds, o.verbose,
        [&] { return sink->confirmations() >= static_cast<uint64_t>(o.wait_confirmations); },
        [&] { return "confirmations " + std::to_string(sink->confirmations()); });
    if (!confirmed) {
      std::cerr << "inferd-loadgen: only " << sink->confirmations() << " of "
                << o.wait_confirmations << " subscription confirmations within "
                << o.wait_confirmations_seconds << " s; subscribe the sink's URL to the topics\n";
      return 1;
    }
  }
  if (o.mode == Mode::kSinkOnly) return SinkOnly(o, *sink);

  std::shared_ptr<const std::string> body;
  if (o.mode == Mode::kDirect) {
    std::string payload(o.payload_bytes, '\0');
    std::mt19937_64 gen(42);
    for (char& c : payload) c = static_cast<char>('a' + gen() % 26);
    body = std::make_shared<const std::string>(std::move(payload));
  }

  const double cpu_before = CpuSeconds();
  const int64_t wall_offset_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count() -
                                 NowNs();
  state.start_ns = NowNs();
  std::vector<std::unique_ptr<Sender>> senders;
  for (int t = 0; t < o.threads; ++t) {
    senders.push_back(std::make_unique<Sender>(o, t, *tables[t], state, body));
  }
  std::vector<std::thread> threads;
  std::atomic<int> running{o.threads};
  for (auto& s : senders) {
    threads.emplace_back([&s, &running] {
      s->Run();
      running.fetch_sub(1);
    });
  }
  auto progress = [&] {
    uint64_t sent = 0;
    for (auto& t : tables) sent += t->size();
    return "due " + std::to_string(sent) + ", outstanding " +
           std::to_string(state.outstanding.load()) +
           (sink ? ", completed " + std::to_string(sink->completed()) : "");
  };
  WaitFor(
      1e9, o.verbose, [&] { return running.load() == 0; }, progress);
  for (auto& t : threads) t.join();
  const int64_t send_end_ns = NowNs();
  bool drained = true;
  if (sink && o.mode == Mode::kInvoke && o.wait_completions_seconds > 0) {
    drained = WaitFor(
        o.wait_completions_seconds, o.verbose, [&] { return state.outstanding.load() <= 0; },
        progress);
  }
  const double cpu = CpuSeconds() - cpu_before;

  // Per-request figures; requests due during the warm-up are counted but not measured.
  const int64_t measure_from = state.start_ns + static_cast<int64_t>(o.warmup_seconds * 1e9);
  const int64_t window_end = o.duration_seconds > 0
                                 ? state.start_ns + static_cast<int64_t>(o.duration_seconds * 1e9)
                                 : send_end_ns;
  std::vector<int64_t> accept_ns, result_ns, event_ns, notify_lag_ns;
  // Results written in the window, by the notifications' eventTime (when inferd finished them).
  const int64_t window_from_ms = (measure_from + wall_offset_ns) / 1'000'000;
  const int64_t window_to_ms = (window_end + wall_offset_ns) / 1'000'000;
  uint64_t due = 0, ok = 0, completed_in_window = 0, finished_in_window = 0;
  int64_t last_answer = state.start_ns, last_completion = state.start_ns;
  for (auto& table : tables) {
    const uint64_t n = table->size();
    due += n;
    for (uint64_t seq = 0; seq < n; ++seq) {
      const Record& r = *table->Find(seq);
      const int64_t intended = r.intended_ns.load();
      const int64_t answered = r.answered_ns.load();
      const int64_t completed = r.completed_ns.load();
      const bool accepted = r.status.load() == (o.mode == Mode::kDirect ? 200 : 202);
      if (accepted) {
        ++ok;
        last_answer = std::max(last_answer, answered);
      }
      if (completed > 0) {
        last_completion = std::max(last_completion, completed);
        if (completed >= measure_from && completed < window_end) ++completed_in_window;
      }
      const int64_t event_ms = r.event_ms.load();
      if (event_ms >= window_from_ms && event_ms < window_to_ms) ++finished_in_window;
      if (intended < measure_from) continue;
      if (accepted) accept_ns.push_back(answered - intended);
      if (completed > 0) {
        result_ns.push_back(completed - intended);
        if (event_ms > 0) {
          notify_lag_ns.push_back(
              std::max<int64_t>(0, completed + wall_offset_ns - event_ms * 1'000'000));
          event_ns.push_back(
              std::max<int64_t>(0, event_ms * 1'000'000 - (intended + wall_offset_ns)));
        }
      }
    }
  }

  SenderStats total;
  for (auto& s : senders) {
    const SenderStats& st = s->stats();
    total.sent += st.sent;
    total.ok += st.ok;
    total.transport_errors += st.transport_errors;
    for (auto& [status, n] : st.status_errors) total.status_errors[status] += n;
    if (total.first_error.empty()) total.first_error = st.first_error;
    total.connects += st.connects;
    total.bytes_out += st.bytes_out;
    total.bytes_in += st.bytes_in;
  }
  json::object status_errors;
  uint64_t errors = total.transport_errors;
  for (auto& [status, n] : total.status_errors) {
    status_errors[std::to_string(status)] = n;
    errors += n;
  }
  json::object out{
      {"mode", o.mode == Mode::kDirect ? "direct" : "invoke"},
      {"loop", o.rate > 0 ? "open" : "closed"},
      {"rate", o.rate},
      {"connections", o.connections},
      {"threads", o.threads},
      {"max_outstanding", o.max_outstanding},
      {"id_prefix", o.id_prefix},
      {"due", due},
      {"sent", total.sent},
      {"accepted", ok},
      {"errors", errors},
      {"transport_errors", total.transport_errors},
      {"status_errors", status_errors},
      {"first_error", total.first_error},
      {"connects", total.connects},
      {"send_s", static_cast<double>(send_end_ns - state.start_ns) / 1e9},
      {"accepted_per_s", PerSecond(ok, state.start_ns, last_answer)},
      {"accept_latency_ms", ToJson(Summarize(std::move(accept_ns)))},
      {"loadgen_cpu_s", std::round(cpu * 100) / 100},
  };
  if (sink) {
    const SinkStats s = sink->stats();
    AddSinkFields(out, s);
    out["drained"] = drained;
    out["missing"] = ok > s.completed ? ok - s.completed : 0;
    out["completed_per_s"] = PerSecond(s.completed, state.start_ns, last_completion);
    out["completed_per_s_window"] =
        PerSecond(completed_in_window, measure_from, std::min(window_end, last_completion));
    out["results_per_s_window"] =
        window_to_ms > window_from_ms
            ? std::round(static_cast<double>(finished_in_window) * 1000.0 /
                         static_cast<double>(window_to_ms - window_from_ms) * 10) /
                  10
            : 0.0;
    out["result_latency_ms"] = ToJson(Summarize(std::move(result_ns)));
    out["event_latency_ms"] = ToJson(Summarize(std::move(event_ns)));
    out["notify_lag_ms"] = ToJson(Summarize(std::move(notify_lag_ns)));
  }
  std::cout << json::serialize(out) << std::endl;
  if (!total.first_error.empty()) {
    std::cerr << "inferd-loadgen: first error: " << total.first_error << "\n";
  }
  return 0;
}
