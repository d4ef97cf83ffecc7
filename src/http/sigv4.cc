#include "http/sigv4.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <cctype>
#include <cstdio>
#include <optional>
#include <utility>

#include "common/strings.h"
#include "http/uri.h"

namespace inferd::http::sigv4 {
namespace {

using SysTime = std::chrono::system_clock::time_point;

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";
constexpr std::string_view kTerminator = "aws4_request";
constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";
constexpr long long kMaxPresignedExpires = 7 * 24 * 3600;  // AWS's limit: one week

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

// Calls f(part) for each part of `s` split at `sep` (an empty `s` is one empty part) until f
// returns false.
template <typename F>
void ForEachPart(std::string_view s, char sep, F&& f) {
  for (;;) {
    const size_t pos = s.find(sep);
    if (!f(s.substr(0, pos)) || pos == std::string_view::npos) return;
    s.remove_prefix(pos + 1);
  }
}

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool IsHexSignature(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
         });
}

// Appends a header value as SigV4 canonicalizes it: trimmed, inner runs of whitespace collapsed
// to one space.
void AppendCanonicalHeaderValue(std::string& out, std::string_view v) {
  v = Trim(v);
  if (std::none_of(v.begin(), v.end(), IsSpace)) {
    out.append(v);  // the usual value: nothing to collapse
    return;
  }
  bool pending_space = false;
  for (char c : v) {
    if (IsSpace(c)) {
      pending_space = true;
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  }
}

void AppendLower(std::string& out, std::string_view s) {
  for (char c : s) out.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
}

// RFC 3986 dot-segment removal plus collapsing of empty segments, as botocore and the AWS test
// suite do it ("//example//" → "/example/", "/a/.." → "/").
std::string NormalizePath(std::string_view path) {
  if (path.empty()) return "/";
  std::vector<std::string_view> kept;
  ForEachPart(path, '/', [&kept](std::string_view seg) {
    if (seg == "..") {
      if (!kept.empty()) kept.pop_back();
    } else if (!seg.empty() && seg != ".") {
      kept.push_back(seg);
    }
    return true;
  });
  std::string out = path.front() == '/' ? "/" : "";
  for (size_t i = 0; i < kept.size(); ++i) {
    if (i > 0) out.push_back('/');
    out.append(kept[i]);
  }
  if (path.back() == '/' && !kept.empty()) out.push_back('/');
  return out;
}

// Whether NormalizePath would change `path`: an empty segment ("//") or a "." or ".." segment.
bool NeedsNormalizing(std::string_view path) {
  size_t start = 0;
  for (size_t i = 0; i <= path.size(); ++i) {
    if (i < path.size() && path[i] != '/') continue;
    const std::string_view seg = path.substr(start, i - start);
    if (seg == "." || seg == ".." || (seg.empty() && start > 0 && i < path.size())) return true;
    start = i + 1;
  }
  return false;
}

std::string CanonicalUri(std::string_view raw_path, bool double_encode) {
  if (raw_path.empty()) return "/";
  // Every service but S3: the client encoded the path once to send it and once more to sign it.
  if (double_encode) {
    if (!NeedsNormalizing(raw_path)) return AwsUriEncode(raw_path, /*keep_slash=*/true);
    return AwsUriEncode(NormalizePath(raw_path), /*keep_slash=*/true);
  }
  // S3 signs the path exactly as sent, encoded once; re-encode to canonicalize escapes.
  auto decoded = PercentDecode(raw_path);
  return AwsUriEncode(decoded ? *decoded : std::string(raw_path), /*keep_slash=*/true);
}

std::string CanonicalQuery(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> params;
  for (auto& [name, value] : ParseQuery(query)) {
    if (name == "X-Amz-Signature") continue;
    params.emplace_back(AwsUriEncode(name, false), AwsUriEncode(value, false));
  }
  std::sort(params.begin(), params.end());
  std::string out;
  for (const auto& [name, value] : params) {
    if (!out.empty()) out.push_back('&');
    out.append(name).append("=").append(value);
  }
  return out;
}

// ---- time ----

std::optional<SysTime> MakeTime(int y, unsigned mo, unsigned d, int h, int mi, int s) {
  using namespace std::chrono;
  year_month_day ymd{year{y}, month{mo}, day{d}};
  if (!ymd.ok() || h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 60) return std::nullopt;
  return sys_days(ymd) + hours(h) + minutes(mi) + seconds(s);
}

// "20150830T123600Z" (ISO 8601 basic format, UTC).
std::optional<SysTime> ParseAmzDate(std::string_view s) {
  if (s.size() != 16 || s[8] != 'T' || s[15] != 'Z' || !AllDigits(s.substr(0, 8)) ||
      !AllDigits(s.substr(9, 6))) {
    return std::nullopt;
  }
  auto num = [&](size_t pos, size_t len) {  // digits checked above
    int n = 0;
    for (char c : s.substr(pos, len)) n = n * 10 + (c - '0');
    return n;
  };
  return MakeTime(num(0, 4), num(4, 2), num(6, 2), num(9, 2), num(11, 2), num(13, 2));
}

// RFC 1123 date as in the HTTP Date header: "Fri, 24 May 2013 00:00:00 GMT".
std::optional<SysTime> ParseHttpDate(std::string_view s) {
  static constexpr std::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::string str(Trim(s));
  char wday[4] = {}, mon[4] = {}, zone[4] = {};
  int d = 0, y = 0, h = 0, mi = 0, sec = 0, consumed = 0;
  if (std::sscanf(str.c_str(), "%3[A-Za-z], %d %3[A-Za-z] %d %d:%d:%d %3s%n", wday, &d, mon, &y, &h,
                  &mi, &sec, zone, &consumed) != 8 ||
      static_cast<size_t>(consumed) != str.size() || std::string_view(zone) != "GMT") {
    return std::nullopt;
  }
  auto it = std::find(std::begin(kMonths), std::end(kMonths), std::string_view(mon));
  if (it == std::end(kMonths) || d < 1) return std::nullopt;
  return MakeTime(y, static_cast<unsigned>(it - std::begin(kMonths) + 1), static_cast<unsigned>(d),
                  h, mi, sec);
}

std::string FormatAmzDate(SysTime t) {
  using namespace std::chrono;
  auto secs = floor<seconds>(t);
  auto midnight = floor<days>(secs);
  year_month_day ymd{midnight};
  hh_mm_ss hms{secs - midnight};
  const int year = static_cast<int>(ymd.year());
  if (year < 0 || year > 9999) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04d%02u%02uT%02d%02d%02dZ", year,
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                  static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                  static_cast<int>(hms.seconds().count()));
    return buf;
  }
  std::string out = "00000000T000000Z";
  auto put = [&out](size_t pos, int value, int digits) {
    for (int i = digits - 1; i >= 0; --i, value /= 10)
      out[pos + i] = static_cast<char>('0' + value % 10);
  };
  put(0, year, 4);
  put(4, static_cast<int>(static_cast<unsigned>(ymd.month())), 2);
  put(6, static_cast<int>(static_cast<unsigned>(ymd.day())), 2);
  put(9, static_cast<int>(hms.hours().count()), 2);
  put(11, static_cast<int>(hms.minutes().count()), 2);
  put(13, static_cast<int>(hms.seconds().count()), 2);
  return out;
}

// ---- parsed authentication ----

struct Credential {
  std::string access_key_id, date, region, service;
};

// Everything Verify needs, from the Authorization header or from the presigned query.
struct Auth {
  Credential credential;
  std::vector<std::string> signed_headers;
  std::string signature;
  std::string amz_date;  // the timestamp in basic format, as it goes into the string to sign
  SysTime time;
  long long expires = 0;  // presigned only
  bool presigned = false;
};

Error Invalid(std::string message) { return Error(Errc::kValidation, std::move(message)); }

Result<Credential> ParseCredential(std::string_view value) {
  std::array<std::string_view, 5> parts;
  size_t n = 0;
  ForEachPart(value, '/', [&](std::string_view part) {
    if (n < parts.size()) parts[n] = part;
    return ++n <= parts.size();
  });
  if (n != parts.size() ||
      std::any_of(parts.begin(), parts.end(), [](auto p) { return p.empty(); })) {
    return Invalid(
        "Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; expecting "
        "\"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".");
  }
  if (parts[4] != kTerminator) {
    return Invalid("Credential should be scoped with a valid terminator: 'aws4_request', not '" +
                   std::string(parts[4]) + "'.");
  }
  if (parts[1].size() != 8 || !AllDigits(parts[1])) {
    return Invalid("Invalid credential date \"" + std::string(parts[1]) +
                   "\". This date is not the same as X-Amz-Date.");
  }
  return Credential{std::string(parts[0]), std::string(parts[1]), std::string(parts[2]),
                    std::string(parts[3])};
}

Result<std::vector<std::string>> ParseSignedHeaders(std::string_view value) {
  std::vector<std::string> names;
  names.reserve(static_cast<size_t>(std::count(value.begin(), value.end(), ';')) + 1);
  bool has_host = false;
  bool empty_name = false;
  ForEachPart(value, ';', [&](std::string_view name) {
    empty_name = name.empty();
    if (empty_name) return false;
    names.push_back(AsciiLower(name));
    has_host = has_host || names.back() == "host";
    return true;
  });
  if (empty_name) {
    return Invalid("SignedHeaders contains an empty header name: '" + std::string(value) + "'.");
  }
  if (!has_host) {
    return Invalid("Signature Version 4 requires the 'host' header to be signed; SignedHeaders='" +
                   std::string(value) + "'.");
  }
  return names;
}

// Fills and checks what header and query authentication have in common (time already set).
Status ParseCommon(std::string_view credential, std::string_view signed_headers,
                   std::string_view signature, Auth& auth) {
  auto cred = ParseCredential(credential);
  if (!cred) return std::move(cred).error();
  auth.credential = std::move(*cred);
  auto names = ParseSignedHeaders(signed_headers);
  if (!names) return std::move(names).error();
  auth.signed_headers = std::move(*names);
  auth.signature = std::string(signature);
  if (auth.amz_date.compare(0, 8, auth.credential.date) != 0) {
    std::string message =
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
        "HTTP: ";
    return Invalid(message + "'" + auth.credential.date + "' != '" + auth.amz_date.substr(0, 8) +
                   "', from '" + auth.amz_date + "'.");
  }
  if (!IsHexSignature(auth.signature)) {
    return Invalid("The signature must be 64 hexadecimal characters; got '" + auth.signature +
                   "'.");
  }
  return OkStatus();
}

Result<Auth> ParseHeaderAuth(const Request& request, std::string_view header) {
  std::string_view rest = Trim(header);
  if (rest.substr(0, kAlgorithm.size()) != kAlgorithm ||
      (rest.size() > kAlgorithm.size() && !IsSpace(rest[kAlgorithm.size()]))) {
    return Invalid(
        "The authorization mechanism you have provided is not supported. Please use "
        "AWS4-HMAC-SHA256.");
  }
  rest.remove_prefix(kAlgorithm.size());
  std::optional<std::string_view> credential, signed_headers, signature;
  std::string_view malformed;  // a part without '='
  ForEachPart(rest, ',', [&](std::string_view part) {
    part = Trim(part);
    if (part.empty()) return true;
    auto eq = part.find('=');
    if (eq == std::string_view::npos) {
      malformed = part;
      return false;
    }
    std::string_view key = part.substr(0, eq), value = part.substr(eq + 1);
    if (key == "Credential" && !credential) credential = value;
    if (key == "SignedHeaders" && !signed_headers) signed_headers = value;
    if (key == "Signature" && !signature) signature = value;
    return true;
  });
  if (!malformed.empty()) {
    return Invalid("'" + std::string(malformed) +
                   "' not a valid key=value pair (missing equal-sign) in Authorization header: '" +
                   std::string(header) + "'.");
  }
  auto date_header = request.headers.Get("x-amz-date");
  bool from_date_header = !date_header;
  if (!date_header) date_header = request.headers.Get("date");

  std::string missing;
  if (!credential) missing += "Authorization header requires 'Credential' parameter. ";
  if (!signature) missing += "Authorization header requires 'Signature' parameter. ";
  if (!signed_headers) missing += "Authorization header requires 'SignedHeaders' parameter. ";
  if (!date_header) {
    missing +=
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ";
  }
  if (!missing.empty()) return Invalid(missing + "Authorization=" + std::string(header));

  auto time = from_date_header ? ParseHttpDate(*date_header) : ParseAmzDate(*date_header);
  if (!time && from_date_header) time = ParseAmzDate(Trim(*date_header));
  if (!time) {
    return Invalid("Date must be in ISO-8601 'basic format'. Got '" + std::string(*date_header) +
                   "'. See http://en.wikipedia.org/wiki/ISO_8601");
  }
  Auth auth;
  auth.time = *time;
  auth.amz_date = FormatAmzDate(*time);
  INFERD_RETURN_IF_ERROR(ParseCommon(*credential, *signed_headers, *signature, auth));
  return auth;
}

Result<Auth> ParsePresigned(const std::vector<std::pair<std::string, std::string>>& params) {
  auto algorithm = FindParam(params, "X-Amz-Algorithm");
  auto credential = FindParam(params, "X-Amz-Credential");
  auto date = FindParam(params, "X-Amz-Date");
  auto expires = FindParam(params, "X-Amz-Expires");
  auto signed_headers = FindParam(params, "X-Amz-SignedHeaders");
  auto signature = FindParam(params, "X-Amz-Signature");
  if (!algorithm || !credential || !date || !expires || !signed_headers || !signature) {
    return Invalid(
        "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "
        "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.");
  }
  if (*algorithm != kAlgorithm) {
    return Invalid("X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"");
  }

  Auth auth;
  auth.presigned = true;
  if (!AllDigits(*expires) || expires->size() > 9) {
    return Invalid("X-Amz-Expires should be a number between 1 and 604800; got '" +
                   std::string(*expires) + "'.");
  }
  auth.expires = std::stoll(std::string(*expires));
  if (auth.expires < 1) return Invalid("X-Amz-Expires must be at least 1 second.");
  if (auth.expires > kMaxPresignedExpires) {
    return Invalid("X-Amz-Expires must be less than a week (in seconds) that is 604800");
  }
  auto time = ParseAmzDate(*date);
  if (!time) {
    return Invalid("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"");
  }
  auth.time = *time;
  auth.amz_date = std::string(*date);
  INFERD_RETURN_IF_ERROR(ParseCommon(*credential, *signed_headers, *signature, auth));
  return auth;
}

// Header authentication: the request time must be within max_skew of ours.
Status CheckSkew(const Auth& auth, SysTime now, std::chrono::seconds max_skew) {
  if (auth.time >= now - max_skew && auth.time <= now + max_skew) return OkStatus();
  if (auth.credential.service == "s3") {
    return Error(Errc::kClockSkew,
                 "The difference between the request time and the current time is too large.");
  }
  std::string minutes = std::to_string(max_skew.count() / 60) + " min.)";
  if (auth.time < now) {
    return Error(Errc::kClockSkew, "Signature expired: " + auth.amz_date + " is now earlier than " +
                                       FormatAmzDate(now - max_skew) + " (" + FormatAmzDate(now) +
                                       " - " + minutes);
  }
  return Error(Errc::kClockSkew, "Signature not yet current: " + auth.amz_date +
                                     " is still later than " + FormatAmzDate(now + max_skew) +
                                     " (" + FormatAmzDate(now) + " + " + minutes);
}

// Presigned URLs: valid from X-Amz-Date (with the skew allowance) to X-Amz-Date + X-Amz-Expires.
Status CheckPresignedTime(const Auth& auth, SysTime now, std::chrono::seconds max_skew) {
  if (now > auth.time + std::chrono::seconds(auth.expires)) {
    return Error(Errc::kAccessDenied, "Request has expired");
  }
  if (auth.time > now + max_skew) return Error(Errc::kAccessDenied, "Request is not yet valid");
  return OkStatus();
}

}  // namespace

// ---- primitives ----

namespace {

// SHA-256 through one EVP_MD fetched once and a digest context per thread: OpenSSL 3's one-shot
// EVP_Digest() and HMAC() look the algorithm up (and HMAC() a MAC implementation) on every call,
// which cost more than hashing a canonical request.
const EVP_MD* Sha256Md() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA2-256", nullptr);
  assert(md != nullptr);
  return md;
}

constexpr size_t kSha256Bytes = 32;
constexpr size_t kSha256Block = 64;
constexpr std::string_view kEmptySha256Hex =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

class Digest {
 public:
  Digest() : ctx_(EVP_MD_CTX_new()) { assert(ctx_ != nullptr); }
  ~Digest() { EVP_MD_CTX_free(ctx_); }
  Digest(const Digest&) = delete;
  Digest& operator=(const Digest&) = delete;

  void Init() {
    int rc = EVP_DigestInit_ex(ctx_, Sha256Md(), nullptr);
    assert(rc == 1);
    (void)rc;
  }
  void Update(const void* data, size_t size) {
    int rc = EVP_DigestUpdate(ctx_, data, size);
    assert(rc == 1);
    (void)rc;
  }
  void Final(unsigned char out[kSha256Bytes]) {
    unsigned int len = 0;
    int rc = EVP_DigestFinal_ex(ctx_, out, &len);
    assert(rc == 1 && len == kSha256Bytes);
    (void)rc;
  }

 private:
  EVP_MD_CTX* ctx_;
};

Digest& ThreadDigest() {
  thread_local Digest digest;
  return digest;
}

void Sha256(std::string_view data, unsigned char out[kSha256Bytes]) {
  Digest& d = ThreadDigest();
  d.Init();
  d.Update(data.data(), data.size());
  d.Final(out);
}

// HMAC-SHA256 (RFC 2104) on the digest above.
void HmacSha256Raw(std::string_view key, std::string_view data, unsigned char out[kSha256Bytes]) {
  unsigned char block[kSha256Block] = {};
  if (key.size() > kSha256Block) {
    Sha256(key, block);
  } else {
    std::copy(key.begin(), key.end(), block);
  }
  unsigned char pad[kSha256Block];
  for (size_t i = 0; i < kSha256Block; ++i) pad[i] = block[i] ^ 0x36;
  unsigned char inner[kSha256Bytes];
  Digest& d = ThreadDigest();
  d.Init();
  d.Update(pad, sizeof pad);
  d.Update(data.data(), data.size());
  d.Final(inner);
  for (size_t i = 0; i < kSha256Block; ++i) pad[i] = block[i] ^ 0x5c;
  d.Init();
  d.Update(pad, sizeof pad);
  d.Update(inner, sizeof inner);
  d.Final(out);
}

std::string_view AsChars(const unsigned char* bytes, size_t n) {
  return std::string_view(reinterpret_cast<const char*>(bytes), n);
}

}  // namespace

std::string Sha256Hex(std::string_view data) {
  if (data.empty()) return std::string(kEmptySha256Hex);
  unsigned char md[kSha256Bytes];
  Sha256(data, md);
  return HexEncode(AsChars(md, sizeof md));
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char md[kSha256Bytes];
  HmacSha256Raw(key, data, md);
  return std::string(AsChars(md, sizeof md));
}

std::string CanonicalRequest(const Request& request, const std::vector<std::string>& signed_headers,
                             std::string_view payload_hash, bool double_encode_path) {
  std::string out;
  out.reserve(512 + request.path.size() + request.query.size());
  out.append(request.method);
  out.append("\n").append(CanonicalUri(request.path, double_encode_path));
  out.append("\n");
  if (!request.query.empty()) out.append(CanonicalQuery(request.query));
  out.append("\n");
  std::string names;
  names.reserve(256);
  for (const std::string& signed_name : signed_headers) {
    if (!names.empty()) names.push_back(';');
    const size_t name_at = names.size();
    AppendLower(names, signed_name);
    const std::string_view name = std::string_view(names).substr(name_at);
    out.append(name).push_back(':');
    bool first = true;
    for (const Header& h : request.headers.all()) {
      if (!EqualsIgnoreCase(h.name, name)) continue;
      if (!first) out.push_back(',');
      AppendCanonicalHeaderValue(out, h.value);
      first = false;
    }
    out.push_back('\n');
  }
  out.append("\n").append(names).append("\n").append(payload_hash);
  return out;
}

std::string StringToSign(std::string_view amz_date, std::string_view scope,
                         std::string_view canonical_request) {
  std::string out;
  out.reserve(kAlgorithm.size() + amz_date.size() + scope.size() + 3 + 2 * kSha256Bytes);
  out.append(kAlgorithm);
  out.append("\n").append(amz_date).append("\n").append(scope).append("\n");
  unsigned char md[kSha256Bytes];
  Sha256(canonical_request, md);
  char hex[2 * kSha256Bytes];
  HexEncodeTo(AsChars(md, sizeof md), hex);
  out.append(hex, sizeof hex);
  return out;
}

std::string SigningKey(std::string_view secret, std::string_view date, std::string_view region,
                       std::string_view service) {
  std::string key = HmacSha256("AWS4" + std::string(secret), date);
  key = HmacSha256(key, region);
  key = HmacSha256(key, service);
  return HmacSha256(key, kTerminator);
}

std::string Signature(std::string_view secret, std::string_view date, std::string_view region,
                      std::string_view service, std::string_view string_to_sign) {
  return HexEncode(HmacSha256(SigningKey(secret, date, region, service), string_to_sign));
}

namespace {

// SignRequest, with the signing key of a date from `key_for(date)`.
template <typename KeyFor>
void SignWith(Request& request, std::string_view access_key_id, std::string_view region,
              std::string_view service, SysTime now, std::string_view payload_hash,
              KeyFor&& key_for) {
  assert(request.headers.Has("host") && "SignRequest needs the Host header the request will carry");
  request.headers.Remove("authorization");
  std::string amz_date;
  if (auto existing = request.headers.Get("x-amz-date")) {
    amz_date = std::string(*existing);
  } else {
    amz_date = FormatAmzDate(now);
    request.headers.Add("X-Amz-Date", amz_date);
  }
  const bool s3 = service == "s3";
  if (s3 && (!payload_hash.empty() || !request.headers.Has("x-amz-content-sha256"))) {
    // S3 requires the header on every request; the verifier reads the payload hash from it.
    request.headers.Set("x-amz-content-sha256",
                        payload_hash.empty() ? Sha256Hex(request.body) : std::string(payload_hash));
  }
  // Same rule as Verify: the header when present, else the body's hash.
  auto header_hash = request.headers.Get("x-amz-content-sha256");
  std::string payload = header_hash ? std::string(*header_hash) : Sha256Hex(request.body);

  std::vector<std::string> names;
  for (const Header& h : request.headers.all()) {
    std::string name = AsciiLower(h.name);
    if (name == "host" || name == "content-type" || name == "content-md5" || name == "date" ||
        name.starts_with("x-amz-")) {
      names.push_back(std::move(name));
    }
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());

  std::string date = amz_date.substr(0, 8);
  std::string scope = date + "/" + std::string(region) + "/" + std::string(service) + "/" +
                      std::string(kTerminator);
  std::string canonical = CanonicalRequest(request, names, payload, !s3);
  std::string signature =
      HexEncode(HmacSha256(key_for(date), StringToSign(amz_date, scope, canonical)));
  std::string joined;
  for (const auto& n : names) joined.append(joined.empty() ? "" : ";").append(n);
  request.headers.Add("Authorization",
                      std::string(kAlgorithm) + " Credential=" + std::string(access_key_id) + "/" +
                          scope + ", SignedHeaders=" + joined + ", Signature=" + signature);
}

}  // namespace

void SignRequest(Request& request, std::string_view access_key_id, std::string_view secret,
                 std::string_view region, std::string_view service,
                 std::chrono::system_clock::time_point now, std::string_view payload_hash) {
  SignWith(request, access_key_id, region, service, now, payload_hash,
           [&](std::string_view date) { return SigningKey(secret, date, region, service); });
}

RequestSigner::RequestSigner(std::string access_key_id, std::string secret, std::string region,
                             std::string service)
    : access_key_id_(std::move(access_key_id)),
      secret_(std::move(secret)),
      region_(std::move(region)),
      service_(std::move(service)) {}

void RequestSigner::Sign(Request& request, std::chrono::system_clock::time_point now,
                         std::string_view payload_hash) const {
  SignWith(request, access_key_id_, region_, service_, now, payload_hash,
           [this](std::string_view date) {
             std::lock_guard lock(mu_);
             if (date != date_) {
               key_ = SigningKey(secret_, date, region_, service_);
               date_ = std::string(date);
             }
             return key_;
           });
}

// ---- Verifier ----

Verifier::Verifier(VerifierOptions options, const Clock& clock)
    : options_(std::move(options)), clock_(clock) {}

std::string Verifier::CachedSigningKey(const std::string& access_key_id, const std::string& secret,
                                       const std::string& date, const std::string& region,
                                       const std::string& service) const {
  thread_local std::string id;  // reused: no allocation per request
  id.clear();
  id.append(access_key_id).append("/").append(date).append("/").append(region).append("/");
  id.append(service);
  {
    std::lock_guard lock(keys_mu_);
    if (auto it = keys_.find(id); it != keys_.end()) return it->second;
  }
  std::string key = SigningKey(secret, date, region, service);
  std::lock_guard lock(keys_mu_);
  if (keys_.size() >= kMaxCachedKeys) keys_.clear();
  keys_.emplace(id, key);
  return key;
}

Result<Identity> Verifier::Verify(const Request& request) const {
  auto header = request.headers.Get("authorization");
  auto params = ParseQuery(request.query);
  const bool query_auth = FindParam(params, "X-Amz-Signature") ||
                          FindParam(params, "X-Amz-Algorithm") ||
                          FindParam(params, "X-Amz-Credential");
  if (!header && !query_auth) return Error(Errc::kMissingAuth, "Missing Authentication Token");
  if (header && query_auth) {
    return Invalid(
        "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature "
        "query string parameter or the Authorization header should be specified");
  }
  auto parsed = header ? ParseHeaderAuth(request, *header) : ParsePresigned(params);
  if (!parsed) return std::move(parsed).error();
  const Auth& auth = *parsed;
  const Credential& cred = auth.credential;
  const bool s3 = cred.service == "s3";

  const std::string* secret = nullptr;
  if (!options_.credentials.empty()) {
    auto it = options_.credentials.find(cred.access_key_id);
    if (it == options_.credentials.end()) {
      return Error(Errc::kUnknownAccessKey,
                   s3 ? "The AWS Access Key Id you provided does not exist in our records."
                      : "The security token included in the request is invalid.");
    }
    secret = &it->second;
  }

  const SysTime now = clock_.Now();
  INFERD_RETURN_IF_ERROR(auth.presigned ? CheckPresignedTime(auth, now, options_.max_clock_skew)
                                        : CheckSkew(auth, now, options_.max_clock_skew));

  if (secret != nullptr) {
    std::string_view payload;
    std::string payload_hash;  // when computed here
    if (auto h = request.headers.Get("x-amz-content-sha256")) {
      payload = Trim(*h);
    } else if (auth.presigned) {
      payload = kUnsignedPayload;
    } else {
      payload_hash = Sha256Hex(request.body);
      payload = payload_hash;
    }
    const std::string canonical = CanonicalRequest(request, auth.signed_headers, payload, !s3);
    std::string scope;
    scope.reserve(cred.date.size() + cred.region.size() + cred.service.size() + kTerminator.size() +
                  3);
    scope.append(cred.date).append("/").append(cred.region).append("/").append(cred.service);
    scope.append("/").append(kTerminator);
    const std::string key =
        CachedSigningKey(cred.access_key_id, *secret, cred.date, cred.region, cred.service);
    unsigned char mac[kSha256Bytes];
    HmacSha256Raw(key, StringToSign(auth.amz_date, scope, canonical), mac);
    char expected[2 * kSha256Bytes];
    HexEncodeTo(AsChars(mac, sizeof mac), expected);
    // Exactly as computed: lower-case hex (an upper-cased copy is not the signature we made).
    const std::string& provided = auth.signature;
    if (provided.size() != sizeof expected ||
        CRYPTO_memcmp(provided.data(), expected, sizeof expected) != 0) {
      return Error(Errc::kBadSignature,
                   s3 ? "The request signature we calculated does not match the signature you "
                        "provided. Check your key and signing method."
                      : "The request signature we calculated does not match the signature you "
                        "provided. Check your AWS Secret Access Key and signing method. Consult "
                        "the service documentation for details.");
    }
  }
  return Identity{cred.access_key_id, cred.region, cred.service, auth.presigned};
}

}  // namespace inferd::http::sigv4
