#include "api/runtime/request_parse.h"

#include <boost/regex.hpp>
#include <charconv>
#include <optional>
#include <vector>

#include "api/router.h"
#include "api/sagemaker/validator.h"
#include "http/uri.h"

namespace inferd::api::runtime {
namespace {

// The model's patterns, as printed in messages, and their Boost (perl) translations: Java's
// \p{Print} is printable ASCII plus any non-ASCII byte (as in api/sagemaker/validator.cc).
// The patterns every InvokeEndpointAsync checks also have a hand-written matcher (`fast`, the
// same answer as the expression: request_parse_test compares them), which costs a fraction of
// running the expression; `fast` returns nullopt when it cannot decide.
struct Pattern {
  std::string_view text;
  boost::regex re;
  std::optional<bool> (*fast)(std::string_view) = nullptr;
};

bool IsAlnum(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// [a-zA-Z0-9](-*[a-zA-Z0-9])*: letters, digits and inner hyphens.
std::optional<bool> FastEndpointName(std::string_view s) {
  if (s.empty() || !IsAlnum(s.front()) || !IsAlnum(s.back())) return false;
  for (unsigned char c : s) {
    if (!IsAlnum(c) && c != '-') return false;
  }
  return true;
}

// [\x21-\x7e\x80-\xff][\x20-\x7e\x80-\xff]*
std::optional<bool> FastInferenceId(std::string_view s) {
  if (s.empty() || s.front() == ' ') return false;
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return false;
  }
  return true;
}

// (https|s3)://([^/]+)/?(.*) on printable text: a scheme, then a first character that is not
// '/'. Control characters are left to the expression.
std::optional<bool> FastInputLocation(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return std::nullopt;
  }
  std::string_view rest;
  if (s.starts_with("https://")) {
    rest = s.substr(8);
  } else if (s.starts_with("s3://")) {
    rest = s.substr(5);
  } else {
    return false;
  }
  return !rest.empty() && rest.front() != '/';
}

const Pattern& EndpointNamePattern() {
  static const Pattern p{"^[a-zA-Z0-9](-*[a-zA-Z0-9])*",
                         boost::regex("[a-zA-Z0-9](-*[a-zA-Z0-9])*"), &FastEndpointName};
  return p;
}
const Pattern& InferenceIdPattern() {
  static const Pattern p{"\\A\\S[\\p{Print}]*\\z",
                         boost::regex("\\A[\\x21-\\x7e\\x80-\\xff][\\x20-\\x7e\\x80-\\xff]*\\z"),
                         &FastInferenceId};
  return p;
}
const Pattern& InputLocationPattern() {
  static const Pattern p{"^(https|s3)://([^/]+)/?(.*)$", boost::regex("(https|s3)://([^/]+)/?(.*)"),
                         &FastInputLocation};
  return p;
}
const Pattern& OutputPathExtensionPattern() {
  static const Pattern p{"^(?!s3:|https:)[a-zA-Z0-9!_.*'()/-]+$",
                         boost::regex("(?!s3:|https:)[a-zA-Z0-9!_.*'()/-]+")};
  return p;
}
const Pattern& FilenamePattern() {
  static const Pattern p{"^(?!.*\\..*\\.)[a-zA-Z0-9][a-zA-Z0-9-_\\.]*$",
                         boost::regex("(?!.*\\..*\\.)[a-zA-Z0-9][a-zA-Z0-9\\-_.]*")};
  return p;
}
constexpr std::string_view kAsciiPattern = "\\p{ASCII}*";

bool IsAscii(std::string_view s) {
  for (unsigned char c : s) {
    if (c >= 0x80) return false;
  }
  return true;
}

bool MatchesRegex(const Pattern& p, std::string_view s) {
  try {
    return boost::regex_match(s.begin(), s.end(), p.re);
  } catch (const std::exception&) {  // Boost gives up on pathological backtracking
    return false;
  }
}

bool Matches(const Pattern& p, std::string_view s) {
  if (p.fast != nullptr) {
    if (std::optional<bool> decided = p.fast(s)) return *decided;
  }
  return MatchesRegex(p, s);
}

// Collects constraint violations in AWS's wording.
class Violations {
 public:
  // `value` nullopt: the member is absent ("Value null"). `sensitive`: the value is not shown.
  void Add(std::string_view member, const std::optional<std::string_view>& value, bool sensitive,
           std::string_view constraint) {
    std::string head = "Value ";
    if (!value) {
      head += "null ";
    } else if (!sensitive) {
      head += "'" + std::string(*value) + "' ";
    }
    items_.push_back(head + "at '" + std::string(member) +
                     "' failed to satisfy constraint: " + std::string(constraint));
  }

  // A string member: length bounds (0 = none), then the pattern (or ASCII-only when `ascii`).
  void CheckString(std::string_view member, std::string_view value, std::size_t min,
                   std::size_t max, const Pattern* pattern, bool ascii = false,
                   bool sensitive = false) {
    std::size_t length = sagemaker::CodePoints(value);
    if (min > 0 && length < min) {
      Add(member, value, sensitive,
          "Member must have length greater than or equal to " + std::to_string(min));
    }
    if (length > max) {
      Add(member, value, sensitive,
          "Member must have length less than or equal to " + std::to_string(max));
    }
    if (pattern != nullptr && !Matches(*pattern, value)) {
      Add(member, value, sensitive,
          "Member must satisfy regular expression pattern: " + std::string(pattern->text));
    }
    if (ascii && !IsAscii(value)) {
      Add(member, value, sensitive,
          "Member must satisfy regular expression pattern: " + std::string(kAsciiPattern));
    }
  }

  // An integer member sent as a header; nullopt when it is not one.
  std::optional<int32_t> CheckInt(std::string_view member, std::string_view text, int32_t min,
                                  int32_t max) {
    int64_t n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() || n < INT32_MIN ||
        n > INT32_MAX) {
      Add(member, text, false, "Member must be an integer");
      return std::nullopt;
    }
    if (n < min) {
      Add(member, text, false,
          "Member must have value greater than or equal to " + std::to_string(min));
    }
    if (n > max) {
      Add(member, text, false,
          "Member must have value less than or equal to " + std::to_string(max));
    }
    return static_cast<int32_t>(n);
  }

  bool empty() const { return items_.empty(); }

  Error ToError(Errc code = Errc::kValidation) const {
    return sagemaker::ValidationErrors(items_, code);
  }

 private:
  std::vector<std::string> items_;
};

void CheckEndpointName(Violations& v, const std::string& name) {
  v.CheckString("endpointName", name, 0, 63, &EndpointNamePattern());
}

void CheckAsciiHeader(Violations& v, std::string_view member, std::optional<std::string_view> h,
                      bool sensitive = false) {
  if (h) v.CheckString(member, *h, 0, 1024, nullptr, /*ascii=*/true, sensitive);
}

void CheckInferenceId(Violations& v, std::optional<std::string_view> h) {
  if (h) v.CheckString("inferenceId", *h, 1, 64, &InferenceIdPattern());
}

}  // namespace

std::optional<bool> MatchesPatternForTest(std::string_view member, std::string_view value,
                                          bool regex) {
  const Pattern* p = member == "endpointName"    ? &EndpointNamePattern()
                     : member == "inferenceId"   ? &InferenceIdPattern()
                     : member == "inputLocation" ? &InputLocationPattern()
                                                 : nullptr;
  if (p == nullptr) return std::nullopt;
  if (regex) return MatchesRegex(*p, value);
  return p->fast(value);
}

Result<RuntimePath> ParseRuntimePath(std::string_view path) {
  auto target = MatchRuntimePath(path);
  auto name = target ? http::PercentDecode(target->encoded_endpoint) : std::nullopt;
  if (!name) return Error(Errc::kValidation, "No runtime operation at " + std::string(path) + ".");
  return RuntimePath{std::move(*name), target->async};
}

Result<dispatch::AcceptRequest> ParseInvokeEndpointAsync(http::Request request,
                                                         const std::string& region) {
  auto path = ParseRuntimePath(request.path);
  if (!path.ok()) return std::move(path).error();
  Violations v;
  dispatch::AcceptRequest out;
  out.region = region;
  out.endpoint = path->endpoint;
  CheckEndpointName(v, out.endpoint);

  auto content_type = request.headers.Get("X-Amzn-SageMaker-Content-Type");
  auto accept = request.headers.Get("X-Amzn-SageMaker-Accept");
  auto custom = request.headers.Get("X-Amzn-SageMaker-Custom-Attributes");
  auto inference_id = request.headers.Get("X-Amzn-SageMaker-Inference-Id");
  auto input = request.headers.Get("X-Amzn-SageMaker-InputLocation");
  auto extension = request.headers.Get("X-Amzn-SageMaker-S3OutputPathExtension");
  auto filename = request.headers.Get("X-Amzn-SageMaker-Filename");
  auto ttl = request.headers.Get("X-Amzn-SageMaker-RequestTTLSeconds");
  auto timeout = request.headers.Get("X-Amzn-SageMaker-InvocationTimeoutSeconds");

  CheckAsciiHeader(v, "contentType", content_type);
  CheckAsciiHeader(v, "accept", accept);
  CheckAsciiHeader(v, "customAttributes", custom, /*sensitive=*/true);
  CheckInferenceId(v, inference_id);
  if (input) v.CheckString("inputLocation", *input, 1, 1024, &InputLocationPattern());
  if (extension) {
    v.CheckString("s3OutputPathExtension", *extension, 1, 512, &OutputPathExtensionPattern());
  }
  if (filename) v.CheckString("filename", *filename, 1, 32, &FilenamePattern());
  if (ttl) {
    if (auto n = v.CheckInt("requestTTLSeconds", *ttl, 60, 21600)) out.ttl_seconds = *n;
  }
  if (timeout) {
    if (auto n = v.CheckInt("invocationTimeoutSeconds", *timeout, 1, 3600)) {
      out.invocation_timeout_seconds = *n;
    }
  }
  if (request.body.size() > kMaxAsyncBodyBytes) {
    v.Add("body", request.body, /*sensitive=*/true,
          "Member must have length less than or equal to " + std::to_string(kMaxAsyncBodyBytes));
  }
  if (!v.empty()) return v.ToError();

  if (input && !request.body.empty()) {
    return Error(Errc::kValidation,
                 "InputLocation and Body are mutually exclusive: give the input either as an S3 "
                 "location (X-Amzn-SageMaker-InputLocation) or inline in the request body, not "
                 "both.");
  }
  if (!input && request.body.empty()) {
    return Error(Errc::kValidation,
                 "An input is required: give either InputLocation (the S3 object holding the "
                 "payload, header X-Amzn-SageMaker-InputLocation) or the payload itself as the "
                 "request body (Body, at most 128000 bytes).");
  }
  out.input_location = std::string(input.value_or(""));
  if (!input) out.inline_body = std::move(request.body);
  out.content_type = std::string(content_type.value_or(""));
  out.accept = std::string(accept.value_or(""));
  out.custom_attributes = std::string(custom.value_or(""));
  out.inference_id = std::string(inference_id.value_or(""));
  out.output_path_extension = std::string(extension.value_or(""));
  out.filename = std::string(filename.value_or(""));
  return out;
}

Result<dispatch::SyncRequest> ParseInvokeEndpoint(http::Request request,
                                                  const std::string& region) {
  auto path = ParseRuntimePath(request.path);
  if (!path.ok()) return std::move(path).error();
  if (request.body.size() > kMaxSyncBodyBytes) {
    Violations big;
    big.Add("body", request.body, /*sensitive=*/true,
            "Member must have length less than or equal to " + std::to_string(kMaxSyncBodyBytes));
    return big.ToError(Errc::kPayloadTooLarge);
  }
  Violations v;
  dispatch::SyncRequest out;
  out.region = region;
  out.endpoint = path->endpoint;
  CheckEndpointName(v, out.endpoint);
  auto content_type = request.headers.Get("Content-Type");
  auto accept = request.headers.Get("Accept");
  auto custom = request.headers.Get("X-Amzn-SageMaker-Custom-Attributes");
  auto variant = request.headers.Get("X-Amzn-SageMaker-Target-Variant");
  auto inference_id = request.headers.Get("X-Amzn-SageMaker-Inference-Id");
  CheckAsciiHeader(v, "contentType", content_type);
  CheckAsciiHeader(v, "accept", accept);
  CheckAsciiHeader(v, "customAttributes", custom, /*sensitive=*/true);
  if (variant) v.CheckString("targetVariant", *variant, 0, 63, &EndpointNamePattern());
  CheckInferenceId(v, inference_id);
  if (!v.empty()) return v.ToError();

  struct Unsupported {
    std::string_view header;
    std::string_view feature;
  };
  static constexpr Unsupported kUnsupported[] = {
      {"X-Amzn-SageMaker-Target-Model", "multi-model endpoints (TargetModel)"},
      {"X-Amzn-SageMaker-Target-Container-Hostname",
       "direct invocation of one container of a multi-container endpoint "
       "(TargetContainerHostname)"},
      {"X-Amzn-SageMaker-Inference-Component", "inference components (InferenceComponentName)"},
      {"X-Amzn-SageMaker-Session-Id", "stateful sessions (SessionId)"},
  };
  for (const auto& u : kUnsupported) {
    if (request.headers.Has(u.header)) {
      return Error(Errc::kValidation, "inferd does not support " + std::string(u.feature) +
                                          ": leave out the " + std::string(u.header) + " header.");
    }
  }
  out.body = std::move(request.body);
  out.content_type = std::string(content_type.value_or(""));
  out.accept = std::string(accept.value_or(""));
  out.custom_attributes = std::string(custom.value_or(""));
  out.target_variant = std::string(variant.value_or(""));
  out.inference_id = std::string(inference_id.value_or(""));
  return out;
}

}  // namespace inferd::api::runtime
