#include "api/s3/http_util.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "http/uri.h"

namespace inferd::api::s3 {
namespace {

constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::optional<uint64_t> ParseDigits(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

Error InvalidUri(std::string_view path) {
  return Error(Errc::kValidation,
               "Couldn't parse the specified URI: \"" + std::string(path.substr(0, 256)) + "\".",
               "InvalidURI");
}

std::optional<int64_t> EpochOf(int y, int mon, int d, int h, int mi, int s) {
  using namespace std::chrono;
  year_month_day ymd{year{y}, month{static_cast<unsigned>(mon)}, day{static_cast<unsigned>(d)}};
  if (!ymd.ok() || h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 60) return std::nullopt;
  return sys_days(ymd).time_since_epoch().count() * 86400LL + h * 3600 + mi * 60 + s;
}

int MonthIndex(const char* name) {
  for (int i = 0; i < 12; ++i) {
    if (std::string_view(name) == kMonths[i]) return i + 1;
  }
  return 0;
}

std::string Unquote(std::string_view etag) {
  etag = Trim(etag);
  if (etag.substr(0, 2) == "W/") etag.remove_prefix(2);
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  return std::string(etag);
}

}  // namespace

Result<S3Path> ParsePath(std::string_view raw_path) {
  S3Path out;
  std::string_view p = raw_path;
  if (!p.empty() && p.front() == '/') p.remove_prefix(1);
  size_t slash = p.find('/');
  auto bucket = http::PercentDecode(p.substr(0, slash));
  if (!bucket) return InvalidUri(raw_path);
  out.bucket = std::move(*bucket);
  if (slash != std::string_view::npos) {
    auto key = http::PercentDecode(p.substr(slash + 1));
    if (!key) return InvalidUri(raw_path);
    out.key = std::move(*key);
  }
  return out;
}

Result<S3Path> ParseCopySource(std::string_view header) {
  std::string_view v = Trim(header);
  // A literal '?' starts the query (versionId); one in the key arrives encoded as %3F.
  v = v.substr(0, v.find('?'));
  auto decoded = http::PercentDecode(v);
  auto invalid = [&] {
    return Error(Errc::kValidation,
                 "Invalid copy source: \"" + std::string(header.substr(0, 256)) +
                     "\". Use x-amz-copy-source: /bucket/key (URL-encoded).",
                 "InvalidArgument");
  };
  if (!decoded) return invalid();
  std::string_view s = *decoded;
  if (!s.empty() && s.front() == '/') s.remove_prefix(1);
  size_t slash = s.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == s.size()) return invalid();
  return S3Path{std::string(s.substr(0, slash)), std::string(s.substr(slash + 1))};
}

std::optional<store::RangeSpec> ParseRange(std::string_view header) {
  std::string_view v = Trim(header);
  constexpr std::string_view kUnit = "bytes=";
  if (v.size() < kUnit.size()) return std::nullopt;
  for (size_t i = 0; i < kUnit.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(v[i])) != kUnit[i]) return std::nullopt;
  }
  v = Trim(v.substr(kUnit.size()));
  if (v.find(',') != std::string_view::npos) return std::nullopt;  // S3: no multi-range
  size_t dash = v.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  std::string_view a = Trim(v.substr(0, dash)), b = Trim(v.substr(dash + 1));
  store::RangeSpec spec;
  if (a.empty()) {
    auto n = ParseDigits(b);
    if (!n) return std::nullopt;
    spec.last = *n;  // suffix length
    return spec;
  }
  auto first = ParseDigits(a);
  if (!first) return std::nullopt;
  spec.first = *first;
  if (!b.empty()) {
    auto last = ParseDigits(b);
    if (!last || *last < *first) return std::nullopt;
    spec.last = *last;
  }
  return spec;
}

std::string FormatHttpDate(double epoch_seconds) {
  std::time_t t = static_cast<std::time_t>(std::floor(epoch_seconds));
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[tm.tm_wday],
                tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  return buf;
}

std::string FormatIsoDate(double epoch_seconds) {
  double whole = std::floor(epoch_seconds);
  int millis = static_cast<int>((epoch_seconds - whole) * 1000.0);
  std::time_t t = static_cast<std::time_t>(whole);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                std::clamp(millis, 0, 999));
  return buf;
}

std::optional<int64_t> ParseHttpDate(std::string_view text) {
  std::string s(Trim(text));
  char wday[16] = {}, mon[4] = {}, zone[4] = {};
  int d = 0, y = 0, h = 0, mi = 0, sec = 0, consumed = 0;
  // RFC 1123: "Sun, 06 Nov 1994 08:49:37 GMT"
  if (std::sscanf(s.c_str(), "%3[A-Za-z], %d %3[A-Za-z] %d %d:%d:%d %3s%n", wday, &d, mon, &y, &h,
                  &mi, &sec, zone, &consumed) == 8 &&
      static_cast<size_t>(consumed) == s.size() && std::string_view(zone) == "GMT") {
    return EpochOf(y, MonthIndex(mon), d, h, mi, sec);
  }
  // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"
  if (std::sscanf(s.c_str(), "%15[A-Za-z], %d-%3[A-Za-z]-%d %d:%d:%d %3s%n", wday, &d, mon, &y, &h,
                  &mi, &sec, zone, &consumed) == 8 &&
      static_cast<size_t>(consumed) == s.size() && std::string_view(zone) == "GMT") {
    if (y < 100) y += y < 70 ? 2000 : 1900;
    return EpochOf(y, MonthIndex(mon), d, h, mi, sec);
  }
  // asctime: "Sun Nov  6 08:49:37 1994"
  if (std::sscanf(s.c_str(), "%3[A-Za-z] %3[A-Za-z] %d %d:%d:%d %d%n", wday, mon, &d, &h, &mi, &sec,
                  &y, &consumed) == 7 &&
      static_cast<size_t>(consumed) == s.size()) {
    return EpochOf(y, MonthIndex(mon), d, h, mi, sec);
  }
  return std::nullopt;
}

std::string QuotedEtag(std::string_view etag) { return "\"" + std::string(etag) + "\""; }

bool EtagListMatches(std::string_view list, std::string_view etag) {
  std::string want = Unquote(etag);
  while (true) {
    size_t comma = list.find(',');
    std::string_view item = Trim(list.substr(0, comma));
    if (item == "*" || (!item.empty() && Unquote(item) == want)) return true;
    if (comma == std::string_view::npos) return false;
    list.remove_prefix(comma + 1);
  }
}

Conditions Conditions::FromHeaders(const http::Headers& headers, bool copy_source) {
  const std::string prefix = copy_source ? "x-amz-copy-source-" : "";
  Conditions c;
  if (auto v = headers.Get(prefix + "if-match")) c.if_match = std::string(*v);
  if (auto v = headers.Get(prefix + "if-none-match")) c.if_none_match = std::string(*v);
  if (auto v = headers.Get(prefix + "if-modified-since")) c.if_modified_since = ParseHttpDate(*v);
  if (auto v = headers.Get(prefix + "if-unmodified-since")) {
    c.if_unmodified_since = ParseHttpDate(*v);
  }
  return c;
}

ConditionOutcome Evaluate(const Conditions& c, const store::ObjectInfo& info) {
  const auto modified = static_cast<int64_t>(std::floor(info.last_modified));
  if (c.if_match) {
    if (!EtagListMatches(*c.if_match, info.etag)) return ConditionOutcome::kPreconditionFailed;
  } else if (c.if_unmodified_since && modified > *c.if_unmodified_since) {
    return ConditionOutcome::kPreconditionFailed;
  }
  if (c.if_none_match) {
    if (EtagListMatches(*c.if_none_match, info.etag)) return ConditionOutcome::kNotModified;
  } else if (c.if_modified_since && modified <= *c.if_modified_since) {
    return ConditionOutcome::kNotModified;
  }
  return ConditionOutcome::kProceed;
}

}  // namespace inferd::api::s3
