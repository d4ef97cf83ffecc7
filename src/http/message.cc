#include "http/message.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <ctime>

namespace inferd::http {

namespace {

// ASCII case folding (what std::tolower does in the C locale, without a call per character).
constexpr char FoldCase(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

}  // namespace

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] != b[i] && FoldCase(a[i]) != FoldCase(b[i])) return false;
  }
  return true;
}

std::string FormatHttpDate(std::chrono::system_clock::time_point t) {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::time_t time = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&time, &tm);
  char buf[64];
  int n = std::snprintf(buf, sizeof buf, "%s, %02d %s %d %02d:%02d:%02d GMT", kDays[tm.tm_wday],
                        tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                        tm.tm_sec);
  return std::string(buf, n > 0 ? static_cast<size_t>(n) : 0);
}

std::vector<Header>& Headers::Mutable() {
  if (items_ == nullptr) {
    items_ = std::make_shared<std::vector<Header>>();
  } else if (items_.use_count() > 1) {
    items_ = std::make_shared<std::vector<Header>>(*items_);
  } else {
    // The last other copy may just have been released on another thread: see its reads before
    // writing over them.
    std::atomic_thread_fence(std::memory_order_acquire);
  }
  return *items_;
}

void Headers::Add(std::string name, std::string value) {
  Mutable().push_back({std::move(name), std::move(value)});
}

void Headers::Set(std::string_view name, std::string value) {
  Remove(name);
  Mutable().push_back({std::string(name), std::move(value)});
}

void Headers::Remove(std::string_view name) {
  if (items_ == nullptr) return;
  auto matches = [&](const Header& h) { return EqualsIgnoreCase(h.name, name); };
  if (std::none_of(items_->begin(), items_->end(), matches)) return;
  std::erase_if(Mutable(), matches);
}

void Headers::Reserve(size_t n) { Mutable().reserve(n); }

const std::vector<Header>& Headers::all() const {
  static const std::vector<Header> kNone;
  return items_ == nullptr ? kNone : *items_;
}

std::optional<std::string_view> Headers::Get(std::string_view name) const {
  if (items_ == nullptr) return std::nullopt;
  for (const auto& h : *items_) {
    if (EqualsIgnoreCase(h.name, name)) return std::string_view(h.value);
  }
  return std::nullopt;
}

}  // namespace inferd::http
