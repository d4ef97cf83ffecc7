// S3Store: options, addressing and signing, error mapping, puts, heads, deletes, listings and
// buckets. Gets (ranged, streamed) are in s3_store_get.cc.
#include "store/s3_store.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <pugixml.hpp>
#include <string_view>
#include <utility>

#include "http/sigv4.h"
#include "http/uri.h"
#include "store/s3_store_internal.h"

namespace inferd::store {
namespace {

constexpr int kMaxParts = 10000;
constexpr size_t kReadStep = 1 << 20;  // a put's buffer grows by this much per read
constexpr std::string_view kS3Xmlns = "http://s3.amazonaws.com/doc/2006-03-01/";

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// Attribute headers S3 stores with an object and returns on HEAD/GET.
bool IsAttributeHeader(std::string_view name) {
  std::string n = Lower(name);
  return n == "content-encoding" || n == "content-disposition" || n == "content-language" ||
         n == "cache-control" || n == "expires" || n.starts_with("x-amz-meta-") ||
         (n.starts_with("x-amz-checksum-") && n != "x-amz-checksum-type");
}

void AddAttributeHeaders(const ObjectAttributes& attributes, bool with_checksums,
                         http::Headers& headers) {
  if (!attributes.content_type.empty()) headers.Set("Content-Type", attributes.content_type);
  for (const auto& h : attributes.headers) {
    if (!with_checksums && Lower(h.name).starts_with("x-amz-checksum-")) continue;
    headers.Add(h.name, h.value);
  }
}

// S3 error codes → what the caller should do.
Errc ErrcForCode(std::string_view code, int status) {
  static constexpr std::string_view kDenied[] = {
      "AccessDenied",          "SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidToken",
      "ExpiredToken",          "AllAccessDisabled",     "AccountProblem",     "InvalidSecurity",
      "MissingSecurityHeader", "RequestTimeTooSkewed",  "InvalidObjectState", "Forbidden"};
  static constexpr std::string_view kInvalid[] = {
      "InvalidBucketName",       "KeyTooLongError",  "EntityTooLarge", "EntityTooSmall",
      "InvalidArgument",         "MetadataTooLarge", "InvalidPart",    "InvalidPartOrder",
      "InvalidDigest",           "BadDigest",        "InvalidRequest", "IncompleteBody",
      "MaxMessageLengthExceeded"};
  auto in = [&](const auto& list) {
    return std::find(std::begin(list), std::end(list), code) != std::end(list);
  };
  if (code == "NoSuchKey" || code == "NoSuchBucket" || code == "NoSuchUpload" ||
      code == "NoSuchVersion" || code == "NotFound") {
    return Errc::kNotFound;
  }
  if (in(kDenied)) return Errc::kAccessDenied;
  if (code == "InvalidRange") return Errc::kRangeNotSatisfiable;
  if (code == "PreconditionFailed") return Errc::kPreconditionFailed;
  if (code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists") {
    return Errc::kAlreadyExists;
  }
  if (code == "BucketNotEmpty") return Errc::kInvalidState;
  if (code == "SlowDown" || code == "Throttling" || code == "TooManyRequests") {
    return Errc::kThrottled;
  }
  if (in(kInvalid)) return Errc::kValidation;
  if (status >= 500 || code == "InternalError" || code == "ServiceUnavailable" ||
      code == "RequestTimeout") {
    return Errc::kUnavailable;
  }
  return Errc::kInternal;
}

// The code S3 would have sent for a bare status (HEAD answers have no body).
std::string CodeForStatus(int status) {
  static constexpr std::pair<int, std::string_view> kCodes[] = {
      {301, "PermanentRedirect"},  {307, "TemporaryRedirect"},
      {400, "BadRequest"},         {403, "AccessDenied"},
      {404, "NotFound"},           {409, "Conflict"},
      {412, "PreconditionFailed"}, {416, "InvalidRange"},
      {500, "InternalError"},      {503, "SlowDown"}};
  for (const auto& [s, code] : kCodes) {
    if (s == status) return std::string(code);
  }
  return "HTTP" + std::to_string(status);
}

// Reads from `source` until `buffer` holds `limit` bytes or the source ends (returns true then).
Result<bool> Fill(http::ByteSource& source, std::string& buffer, size_t limit) {
  while (buffer.size() < limit) {
    const size_t have = buffer.size();
    // Past the first step the source is large: allocate the whole part once (no doubling).
    if (have >= kReadStep && buffer.capacity() < limit) buffer.reserve(limit);
    buffer.resize(have + std::min(kReadStep, limit - have));
    Result<size_t> n = source.Read(buffer.data() + have, buffer.size() - have);
    if (!n.ok()) return std::move(n).error();
    buffer.resize(have + *n);
    if (*n == 0) return true;
  }
  return false;
}

// A bare status (HEAD answers have no body) dressed as the error document S3 would have sent.
http::ClientResponse ErrorDocument(int status, std::string_view code) {
  http::ClientResponse r;
  r.status = status;
  r.body = fmt::format("<Error><Code>{}</Code></Error>", code);
  return r;
}

double DateOrNow(const http::Headers& headers, const Clock& clock) {
  if (auto date = headers.Get("Date")) {
    if (auto t = s3_internal::ParseHttpDate(*date)) return static_cast<double>(*t);
  }
  return ToEpochSeconds(clock.Now());
}

}  // namespace

// ---- shared helpers ----

std::string S3Store::Call::What() const {
  return key.empty() ? fmt::format("{} \"{}\"", method, bucket)
                     : fmt::format("{} \"{}/{}\"", method, bucket, key);
}

namespace s3_internal {

std::string StripQuotes(std::string_view etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  return std::string(etag);
}

ObjectInfo InfoFromHeaders(const std::string& bucket, const std::string& key,
                           const http::Headers& headers, uint64_t size) {
  ObjectInfo info;
  info.bucket = bucket;
  info.key = key;
  info.size = size;
  if (auto etag = headers.Get("ETag")) info.etag = s3_internal::StripQuotes(*etag);
  if (auto lm = headers.Get("Last-Modified")) {
    if (auto t = ParseHttpDate(*lm)) info.last_modified = static_cast<double>(*t);
  }
  if (auto ct = headers.Get("Content-Type")) info.attributes.content_type = std::string(*ct);
  for (const auto& h : headers.all()) {
    if (IsAttributeHeader(h.name)) info.attributes.headers.push_back(h);
  }
  return info;
}

std::optional<int64_t> ParseHttpDate(std::string_view text) {
  static constexpr std::string_view kMonths = "JanFebMarAprMayJunJulAugSepOctNovDec";
  int d, y, h, mi, s;
  char mon[4] = {};
  std::string t(text);
  if (std::sscanf(t.c_str(), "%*3s, %d %3s %d %d:%d:%d", &d, mon, &y, &h, &mi, &s) != 6) {
    return std::nullopt;
  }
  const size_t m = kMonths.find(mon);
  if (m == std::string_view::npos || m % 3 != 0) return std::nullopt;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = static_cast<int>(m / 3);
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return static_cast<int64_t>(::timegm(&tm));
}

Error InvalidRange(uint64_t size) {
  return Error(Errc::kRangeNotSatisfiable,
               "The requested range is not satisfiable: the object is " + std::to_string(size) +
                   " bytes long.",
               "InvalidRange");
}

}  // namespace s3_internal

// ---- store ----

namespace {

http::ClientOptions MakeClientOptions(const S3StoreOptions& o) {
  http::ClientOptions c;
  c.connect_timeout = o.connect_timeout;
  c.timeout = o.timeout;
  c.verify_tls = o.verify_tls;
  c.max_response_body = 16 * 1024 * 1024;  // error documents, listings, the first MiB of a get
  return c;
}

}  // namespace

Result<std::unique_ptr<S3Store>> S3Store::Create(S3StoreOptions options) {
  INFERD_RETURN_IF_ERROR(options.Validate());
  return std::unique_ptr<S3Store>(new S3Store(std::move(options)));
}

S3Store::S3Store(S3StoreOptions options)
    : options_(std::move(options)),
      endpoint_(*http::ParseUrl(options_.endpoint)),
      client_(MakeClientOptions(options_)),
      signer_(options_.access_key_id, options_.secret_access_key, options_.region, "s3") {}

S3Store::~S3Store() = default;

http::ClientRequest S3Store::Prepare(std::string method, const std::string& bucket,
                                     const std::string& key, const Query& query,
                                     http::Headers headers, std::string body,
                                     std::string_view payload_hash) const {
  std::string host =
      endpoint_.host.find(':') != std::string::npos ? "[" + endpoint_.host + "]" : endpoint_.host;
  const uint16_t default_port = endpoint_.scheme == "https" ? 443 : 80;
  if (endpoint_.port != default_port) host += ":" + std::to_string(endpoint_.port);
  std::string path;
  if (options_.path_style) {
    path = "/" + http::AwsUriEncode(bucket, /*keep_slash=*/false);
    if (!key.empty()) path += "/" + http::AwsUriEncode(key, /*keep_slash=*/true);
  } else {
    host = bucket + "." + host;
    path = "/" + http::AwsUriEncode(key, /*keep_slash=*/true);
  }
  std::string query_string;
  for (const auto& [name, value] : query) {
    if (!query_string.empty()) query_string += '&';
    query_string += http::AwsUriEncode(name, false);
    if (!value.empty()) query_string += "=" + http::AwsUriEncode(value, false);
  }
  headers.Set("Host", host);
  if (!options_.session_token.empty()) {
    headers.Set("X-Amz-Security-Token", options_.session_token);
  }
  if (!options_.access_key_id.empty()) {
    http::Request r;
    r.method = method;
    r.path = path;
    r.query = query_string;
    r.headers = std::move(headers);
    const std::string hash =
        payload_hash.empty() ? http::sigv4::Sha256Hex(body) : std::string(payload_hash);
    const Clock& clock = options_.clock ? *options_.clock : SystemClock::Instance();
    signer_.Sign(r, clock.Now(), hash);
    headers = std::move(r.headers);
  }
  http::ClientRequest out;
  out.method = std::move(method);
  out.url =
      endpoint_.scheme + "://" + host + path + (query_string.empty() ? "" : "?") + query_string;
  out.headers = std::move(headers);
  out.body = std::move(body);
  return out;
}

Result<http::ClientResponse> S3Store::Send(Call& call,
                                           const std::function<Status(std::string_view)>& sink) {
  http::ClientRequest request = Prepare(call.method, call.bucket, call.key, call.query,
                                        call.headers, std::move(call.body), call.payload_hash);
  request.timeout = call.transfer ? options_.transfer_timeout : options_.timeout;
  bool sink_failed = false;  // then the error is the sink's own, returned unchanged
  std::function<Status(std::string_view)> counted;
  if (sink) {
    counted = [&](std::string_view data) {
      Status s = sink(data);
      sink_failed = !s.ok();
      return s;
    };
  }
  Result<http::ClientResponse> response = client_.Do(request, counted);
  call.body = std::move(request.body);  // the caller may reuse its buffer
  if (!response.ok() && (sink_failed || response.error().code != Errc::kUnavailable)) {
    return response;
  }
  if (!response.ok()) {
    return Error(Errc::kUnavailable,
                 fmt::format("{} failed: the S3 service at {} could not be reached: {}",
                             call.What(), options_.endpoint, response.error().message));
  }
  return response;
}

Error S3Store::ResponseError(const Call& call, const http::ClientResponse& response) const {
  std::string code, message;
  if (!response.body.empty()) {
    pugi::xml_document doc;
    if (doc.load_buffer(response.body.data(), response.body.size())) {
      pugi::xml_node error = doc.child("Error");
      code = error.child_value("Code");
      message = error.child_value("Message");
    }
  }
  if (code.empty()) code = CodeForStatus(response.status);
  const Errc errc = ErrcForCode(code, response.status);
  std::string text;
  if (code == "NoSuchBucket") {
    text = fmt::format("The bucket \"{}\" does not exist at {}.", call.bucket, options_.endpoint);
  } else if (code == "NoSuchKey") {
    text = fmt::format("The key \"{}\" does not exist in bucket \"{}\" at {}.", call.key,
                       call.bucket, options_.endpoint);
  } else {
    text =
        fmt::format("{} failed: the S3 service at {} answered {} {}{}{}", call.What(),
                    options_.endpoint, response.status, code, message.empty() ? "" : ": ", message);
    if (errc == Errc::kAccessDenied) {
      text += " (check the credentials and region configured for this store)";
    }
  }
  const bool keep_code = errc != Errc::kUnavailable && errc != Errc::kInternal;
  return Error(errc, std::move(text), keep_code ? code : "");
}

Error S3Store::NotFoundAfterHead(const std::string& bucket, const std::string& key) {
  Status bucket_status = HeadBucket(bucket);
  if (!bucket_status.ok() && bucket_status.error().aws_code == "NoSuchBucket") {
    return std::move(bucket_status).error();
  }
  Call call("HEAD", bucket, key);
  return ResponseError(call, ErrorDocument(404, "NoSuchKey"));
}

// ---- objects ----

Result<ObjectInfo> S3Store::Head(const std::string& bucket, const std::string& key) {
  Call call("HEAD", bucket, key);
  auto response = Send(call);
  if (!response.ok()) return std::move(response).error();
  if (response->status == 404) return NotFoundAfterHead(bucket, key);
  if (response->status != 200) return ResponseError(call, *response);
  uint64_t size = 0;
  if (auto length = response->headers.Get("Content-Length")) {
    size = std::strtoull(std::string(*length).c_str(), nullptr, 10);
  }
  return s3_internal::InfoFromHeaders(bucket, key, response->headers, size);
}

Status S3Store::Delete(const std::string& bucket, const std::string& key) {
  Call call("DELETE", bucket, key);
  auto response = Send(call);
  if (!response.ok()) return std::move(response).error();
  if (response->status / 100 == 2) return OkStatus();
  Error error = ResponseError(call, *response);
  if (error.aws_code == "NoSuchKey") return OkStatus();  // some services say so; S3 does not
  return error;
}

Result<ObjectInfo> S3Store::Put(const std::string& bucket, const std::string& key,
                                const ObjectAttributes& attributes, http::ByteSource& body,
                                const PutOptions& options) {
  // One byte past a part tells whether the source ends within it (then a single PUT).
  std::string buffer;
  Result<bool> ended = Fill(body, buffer, options_.part_size + 1);
  if (!ended.ok()) return std::move(ended).error();
  if (buffer.size() <= options_.part_size) {
    return PutSingle(bucket, key, attributes, buffer, options);
  }
  return PutMultipart(bucket, key, attributes, body, buffer, options);
}

Result<ObjectInfo> S3Store::PutSingle(const std::string& bucket, const std::string& key,
                                      const ObjectAttributes& attributes, std::string& data,
                                      const PutOptions& options) {
  if (options.before_commit) INFERD_RETURN_IF_ERROR(options.before_commit());
  Call call("PUT", bucket, key);
  call.transfer = true;
  AddAttributeHeaders(attributes, /*with_checksums=*/true, call.headers);
  const uint64_t size = data.size();
  call.body = std::move(data);
  auto response = Send(call);
  if (!response.ok()) return std::move(response).error();
  if (response->status != 200) return ResponseError(call, *response);
  ObjectInfo info;
  info.bucket = bucket;
  info.key = key;
  info.size = size;
  if (auto etag = response->headers.Get("ETag")) info.etag = s3_internal::StripQuotes(*etag);
  info.last_modified =
      DateOrNow(response->headers, options_.clock ? *options_.clock : SystemClock::Instance());
  info.attributes = attributes;
  return info;
}

Result<ObjectInfo> S3Store::PutMultipart(const std::string& bucket, const std::string& key,
                                         const ObjectAttributes& attributes, http::ByteSource& body,
                                         std::string& buffer, const PutOptions& options) {
  Call create("POST", bucket, key, {{"uploads", ""}});
  AddAttributeHeaders(attributes, /*with_checksums=*/false, create.headers);
  auto created = Send(create);
  if (!created.ok()) return std::move(created).error();
  if (created->status != 200) return ResponseError(create, *created);
  pugi::xml_document doc;
  doc.load_buffer(created->body.data(), created->body.size());
  const std::string upload_id = doc.document_element().child_value("UploadId");
  if (upload_id.empty()) {
    return Error(Errc::kInternal, fmt::format("{} failed: the S3 service at {} answered "
                                              "CreateMultipartUpload without an UploadId.",
                                              create.What(), options_.endpoint));
  }

  // Every failure from here on aborts the upload, so no parts linger (and cost) at the service.
  auto fail = [&](Error error) -> Error {
    AbortUpload(bucket, key, upload_id);
    return error;
  };
  std::vector<std::string> etags;  // as the service sent them (quoted)
  uint64_t total = 0;
  for (bool ended = false; !ended || !buffer.empty();) {
    if (etags.size() == kMaxParts) {
      return fail(Error(Errc::kValidation,
                        fmt::format("The object \"{}/{}\" is larger than {} parts of {} bytes.",
                                    bucket, key, kMaxParts, options_.part_size)));
    }
    // The part is the buffer's first part_size bytes; a byte read past it is carried over.
    std::string carry;
    if (buffer.size() > options_.part_size) {
      carry = buffer.substr(options_.part_size);
      buffer.resize(options_.part_size);
    }
    const int number = static_cast<int>(etags.size()) + 1;
    Call part("PUT", bucket, key,
              {{"partNumber", std::to_string(number)}, {"uploadId", upload_id}});
    part.transfer = true;
    total += buffer.size();
    part.body = std::move(buffer);
    auto sent = Send(part);
    if (!sent.ok()) return fail(std::move(sent).error());
    if (sent->status != 200) return fail(ResponseError(part, *sent));
    auto etag = sent->headers.Get("ETag");
    if (!etag) {
      return fail(Error(Errc::kInternal, fmt::format("{} failed: the S3 service at {} answered "
                                                     "UploadPart without an ETag.",
                                                     part.What(), options_.endpoint)));
    }
    etags.emplace_back(*etag);
    buffer = std::move(part.body);
    buffer.assign(carry);
    if (!ended) {
      Result<bool> r = Fill(body, buffer, options_.part_size + 1);
      if (!r.ok()) return fail(std::move(r).error());
      ended = *r;
    }
  }
  if (options.before_commit) {
    if (Status s = options.before_commit(); !s.ok()) return fail(std::move(s).error());
  }

  std::string xml = fmt::format("<CompleteMultipartUpload xmlns=\"{}\">", kS3Xmlns);
  for (size_t i = 0; i < etags.size(); ++i) {
    xml += fmt::format("<Part><PartNumber>{}</PartNumber><ETag>", i + 1);
    for (char c : etags[i]) {  // ETags are quoted: escape them as XML text
      xml += c == '"' ? "&quot;" : c == '&' ? "&amp;" : c == '<' ? "&lt;" : std::string(1, c);
    }
    xml += "</ETag></Part>";
  }
  xml += "</CompleteMultipartUpload>";
  Call complete("POST", bucket, key, {{"uploadId", upload_id}});
  complete.transfer = true;  // S3 may take minutes to assemble a large object
  complete.headers.Set("Content-Type", "application/xml");
  complete.body = std::move(xml);
  auto done = Send(complete);
  if (!done.ok()) return fail(std::move(done).error());
  // S3 may answer 200 and still fail: the error document then replaces the result.
  pugi::xml_document result;
  result.load_buffer(done->body.data(), done->body.size());
  if (done->status != 200 || result.child("Error")) {
    http::ClientResponse failed = *done;
    if (failed.status == 200) failed.status = 500;
    return fail(ResponseError(complete, failed));
  }
  ObjectInfo info;
  info.bucket = bucket;
  info.key = key;
  info.size = total;
  // The root is CompleteMultipartUploadResult (moto: ...Response): take its ETag either way.
  info.etag = s3_internal::StripQuotes(result.document_element().child_value("ETag"));
  info.last_modified =
      DateOrNow(done->headers, options_.clock ? *options_.clock : SystemClock::Instance());
  info.attributes.content_type = attributes.content_type;
  for (const auto& h : attributes.headers) {
    if (!Lower(h.name).starts_with("x-amz-checksum-")) info.attributes.headers.push_back(h);
  }
  return info;
}

void S3Store::AbortUpload(const std::string& bucket, const std::string& key,
                          const std::string& upload_id) {
  Call call("DELETE", bucket, key, {{"uploadId", upload_id}});
  auto response = Send(call);
  if (!response.ok()) {
    spdlog::warn("Could not abort multipart upload {} of \"{}/{}\": {}", upload_id, bucket, key,
                 response.error().message);
  } else if (response->status / 100 != 2 && response->status != 404) {
    spdlog::warn("Could not abort multipart upload {} of \"{}/{}\": {}", upload_id, bucket, key,
                 ResponseError(call, *response).message);
  }
}

// ---- buckets ----

Status S3Store::CreateBucket(const std::string& bucket) {
  Call call("PUT", bucket);
  if (options_.region != "us-east-1") {
    call.headers.Set("Content-Type", "application/xml");
    call.body = fmt::format(
        "<CreateBucketConfiguration xmlns=\"{}\"><LocationConstraint>{}</LocationConstraint>"
        "</CreateBucketConfiguration>",
        kS3Xmlns, options_.region);
  }
  auto response = Send(call);
  if (!response.ok()) return std::move(response).error();
  if (response->status == 200) return OkStatus();
  return ResponseError(call, *response);
}

Status S3Store::DeleteBucket(const std::string& bucket) {
  Call call("DELETE", bucket);
  auto response = Send(call);
  if (!response.ok()) return std::move(response).error();
  if (response->status / 100 == 2) return OkStatus();
  return ResponseError(call, *response);
}

Status S3Store::HeadBucket(const std::string& bucket) {
  Call call("HEAD", bucket);
  auto response = Send(call);
  if (!response.ok()) return std::move(response).error();
  if (response->status == 200) return OkStatus();
  if (response->status == 404) {
    return ResponseError(call, ErrorDocument(404, "NoSuchBucket"));
  }
  return ResponseError(call, *response);
}

}  // namespace inferd::store
