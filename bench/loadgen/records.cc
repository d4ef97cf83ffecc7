#include "records.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <ctime>

namespace inferd::bench {

RecordTable::~RecordTable() {
  for (auto& chunk : chunks_) delete[] chunk.load();
}

Record* RecordTable::Add(uint64_t seq) {
  const uint64_t index = seq / kChunk;
  if (index >= kMaxChunks) return nullptr;
  Record* chunk = chunks_[index].load(std::memory_order_relaxed);
  if (chunk == nullptr) {
    chunk = new Record[kChunk];
    chunks_[index].store(chunk, std::memory_order_release);
  }
  size_.store(seq + 1, std::memory_order_release);
  return &chunk[seq % kChunk];
}

Record* RecordTable::Find(uint64_t seq) const {
  if (seq >= size()) return nullptr;
  Record* chunk = chunks_[seq / kChunk].load(std::memory_order_acquire);
  return chunk == nullptr ? nullptr : &chunk[seq % kChunk];
}

std::string MakeInferenceId(std::string_view prefix, int thread, uint64_t seq) {
  std::string id;
  id.reserve(prefix.size() + 24);
  id.append(prefix);
  id += '-';
  id += std::to_string(thread);
  id += '-';
  id += std::to_string(seq);
  return id;
}

namespace {

template <typename T>
bool ParseNumber(std::string_view s, T* out) {
  if (s.empty()) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

}  // namespace

std::optional<IdParts> ParseInferenceId(std::string_view id, std::string_view prefix) {
  if (!id.starts_with(prefix) || id.size() <= prefix.size() || id[prefix.size()] != '-') {
    return std::nullopt;
  }
  id.remove_prefix(prefix.size() + 1);
  const auto dash = id.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  IdParts parts;
  if (!ParseNumber(id.substr(0, dash), &parts.thread) ||
      !ParseNumber(id.substr(dash + 1), &parts.seq)) {
    return std::nullopt;
  }
  return parts;
}

std::optional<int64_t> ParseEventTimeMs(std::string_view t) {
  // 2026-11-20T19:30:00.123Z
  if (t.size() < 20 || t[4] != '-' || t[7] != '-' || t[10] != 'T' || t[13] != ':' || t[16] != ':') {
    return std::nullopt;
  }
  std::tm tm{};
  if (!ParseNumber(t.substr(0, 4), &tm.tm_year) || !ParseNumber(t.substr(5, 2), &tm.tm_mon) ||
      !ParseNumber(t.substr(8, 2), &tm.tm_mday) || !ParseNumber(t.substr(11, 2), &tm.tm_hour) ||
      !ParseNumber(t.substr(14, 2), &tm.tm_min) || !ParseNumber(t.substr(17, 2), &tm.tm_sec)) {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  int64_t ms = 0;
  std::string_view rest = t.substr(19);
  if (rest.starts_with('.')) {
    rest.remove_prefix(1);
    int digits = 0;
    while (!rest.empty() && rest.front() >= '0' && rest.front() <= '9') {
      if (digits < 3) ms = ms * 10 + (rest.front() - '0');
      ++digits;
      rest.remove_prefix(1);
    }
    for (; digits < 3; ++digits) ms *= 10;
  }
  if (rest != "Z") return std::nullopt;
  return static_cast<int64_t>(timegm(&tm)) * 1000 + ms;
}

Summary Summarize(std::vector<int64_t> v) {
  Summary s;
  s.count = v.size();
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  auto at = [&v](double q) {
    // Nearest rank: the smallest value with at least q of the samples at or below it.
    size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
    rank = std::clamp<size_t>(rank, 1, v.size());
    return static_cast<double>(v[rank - 1]) / 1e6;
  };
  double sum = 0;
  for (int64_t x : v) sum += static_cast<double>(x);
  s.mean_ms = sum / static_cast<double>(v.size()) / 1e6;
  s.p50_ms = at(0.50);
  s.p90_ms = at(0.90);
  s.p99_ms = at(0.99);
  s.p999_ms = at(0.999);
  s.max_ms = static_cast<double>(v.back()) / 1e6;
  return s;
}

}  // namespace inferd::bench
