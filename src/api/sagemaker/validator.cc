#include "api/sagemaker/validator.h"

#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <boost/regex.hpp>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace inferd::api::sagemaker {
namespace {

namespace json = boost::json;

enum class Kind { kStructure, kList, kMap, kString, kBlob, kBool, kInt, kLong, kFloat, kTime };

struct KindInfo {
  std::string_view type;  // as in the model
  Kind kind;
  std::string_view expected;  // for type-mismatch messages
};

constexpr std::array<KindInfo, 12> kKinds = {{
    {"structure", Kind::kStructure, "an object"},
    {"list", Kind::kList, "a list"},
    {"map", Kind::kMap, "an object (map)"},
    {"string", Kind::kString, "a string"},
    {"blob", Kind::kBlob, "a base64 string"},
    {"boolean", Kind::kBool, "a boolean"},
    {"integer", Kind::kInt, "a 32-bit integer"},
    {"long", Kind::kLong, "a 64-bit integer"},
    {"float", Kind::kFloat, "a number"},
    {"double", Kind::kFloat, "a number"},
    {"bigdecimal", Kind::kFloat, "a number"},
    {"timestamp", Kind::kTime, "a timestamp in epoch seconds"},
}};

struct Member {
  std::string name;       // as in the model and the request body ("ModelName")
  std::string path_name;  // as in messages ("modelName")
  int shape = -1;
  bool required = false;
};

// A numeric bound, kept with its text so messages print it as the model wrote it.
struct Bound {
  double value = 0;
  std::string text;
};

struct Shape {
  std::string name;
  Kind kind = Kind::kString;
  std::string_view expected;      // KindInfo::expected
  std::vector<Member> members;    // structure, in model order
  int element = -1;               // list member
  int key = -1, value = -1;       // map key and value
  std::optional<Bound> min, max;  // length (string, list, map) or value (numbers)
  std::string pattern_text;       // the model's (Java) pattern, printed in messages
  std::optional<boost::regex> pattern;
  std::vector<std::string> enum_values;
  std::string enum_text;  // "[a, b, c]"
};

std::string Join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (const std::string& p : parts) {
    if (!out.empty()) out += sep;
    out += p;
  }
  return out;
}

std::string NumberText(double d) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), d);
  return ec == std::errc() ? std::string(buf, end) : std::to_string(d);
}

// How a value appears in a message: strings bare, numbers as written, containers as JSON.
std::string Render(const json::value& v) {
  if (v.is_string()) return std::string(v.get_string());
  if (v.is_int64()) return std::to_string(v.get_int64());
  if (v.is_uint64()) return std::to_string(v.get_uint64());
  if (v.is_double()) return NumberText(v.get_double());
  return json::serialize(v);
}

std::string_view JsonKindName(const json::value& v) {
  if (v.is_string()) return "a string";
  if (v.is_bool()) return "a boolean";
  if (v.is_array()) return "a list";
  if (v.is_object()) return "an object";
  return v.is_null() ? "null" : "a number";
}

std::optional<double> AsNumber(const json::value& v) {
  if (v.is_int64()) return static_cast<double>(v.get_int64());
  if (v.is_uint64()) return static_cast<double>(v.get_uint64());
  if (v.is_double()) return v.get_double();
  return std::nullopt;
}

bool IsIntegral(const json::value& v, double lo, double hi) {
  std::optional<double> d = AsNumber(v);
  return d && std::isfinite(*d) && std::trunc(*d) == *d && *d >= lo && *d <= hi;
}

bool TypeMatches(Kind kind, const json::value& v) {
  switch (kind) {
    case Kind::kStructure:
    case Kind::kMap:
      return v.is_object();
    case Kind::kList:
      return v.is_array();
    case Kind::kString:
    case Kind::kBlob:
      return v.is_string();
    case Kind::kBool:
      return v.is_bool();
    case Kind::kInt:
      return IsIntegral(v, std::numeric_limits<int32_t>::min(),
                        std::numeric_limits<int32_t>::max());
    case Kind::kLong:
      return IsIntegral(v, -0x1p63, 0x1p63 - 1024);
    case Kind::kFloat:
    case Kind::kTime:
      return AsNumber(v).has_value();
  }
  return false;
}

bool IsScalar(Kind kind) {
  return kind != Kind::kStructure && kind != Kind::kList && kind != Kind::kMap;
}

// Java (Coral) patterns to Boost perl syntax. Boost lacks Java's \p{...} classes for narrow
// strings; their ASCII members plus every non-ASCII byte stand in, so any UTF-8 encoded non-ASCII
// character is accepted where a letter, digit, separator or printable character is.
std::string TranslatePattern(std::string_view java) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 4> kClasses = {{
      {"\\p{L}", "a-zA-Z\\x80-\\xff"},
      {"\\p{N}", "0-9\\x80-\\xff"},
      {"\\p{Z}", " \\x80-\\xff"},
      {"\\p{Print}", "\\x20-\\x7e\\x80-\\xff"},
  }};
  std::string out;
  int class_depth = 0;
  for (std::size_t i = 0; i < java.size();) {
    if (java[i] == '\\') {
      bool replaced = false;
      for (const auto& [from, to] : kClasses) {
        if (java.substr(i).starts_with(from)) {
          out += class_depth > 0 ? std::string(to) : "[" + std::string(to) + "]";
          i += from.size();
          replaced = true;
          break;
        }
      }
      if (!replaced) {  // any other escape is copied as is, with the character it escapes
        out += java.substr(i, 2);
        i += 2;
      }
      continue;
    }
    if (java[i] == '[') ++class_depth;
    if (java[i] == ']' && class_depth > 0) --class_depth;
    out += java[i++];
  }
  return out;
}

void LengthFailures(const Shape& s, double length, std::vector<std::string>& out) {
  if (s.min && length < s.min->value) {
    out.push_back("Member must have length greater than or equal to " + s.min->text);
  }
  if (s.max && length > s.max->value) {
    out.push_back("Member must have length less than or equal to " + s.max->text);
  }
}

// Constraint failures of a scalar whose JSON type has been checked.
std::vector<std::string> ScalarFailures(const Shape& s, const json::value& v) {
  std::vector<std::string> out;
  if (s.kind == Kind::kString) {
    std::string_view str = v.get_string();
    LengthFailures(s, static_cast<double>(CodePoints(str)), out);
    if (s.pattern) {
      bool matched = false;
      try {
        matched = boost::regex_match(str.begin(), str.end(), *s.pattern);
      } catch (const std::exception&) {  // Boost gives up on pathological backtracking
        matched = false;
      }
      if (!matched) {
        out.push_back("Member must satisfy regular expression pattern: " + s.pattern_text);
      }
    }
    if (!s.enum_values.empty() &&
        std::find(s.enum_values.begin(), s.enum_values.end(), str) == s.enum_values.end()) {
      out.push_back("Member must satisfy enum value set: " + s.enum_text);
    }
  } else if (std::optional<double> d = AsNumber(v); d && s.kind != Kind::kTime) {
    if (s.min && *d < s.min->value) {
      out.push_back("Member must have value greater than or equal to " + s.min->text);
    }
    if (s.max && *d > s.max->value) {
      out.push_back("Member must have value less than or equal to " + s.max->text);
    }
  }
  return out;
}

void AddUnique(std::vector<std::string>& into, const std::vector<std::string>& items) {
  for (const std::string& item : items) {
    if (std::find(into.begin(), into.end(), item) == into.end()) into.push_back(item);
  }
}

}  // namespace

struct Validator::Schema {
  std::vector<Shape> shapes;
  std::map<std::string, int, std::less<>> operations;   // operation name -> input shape
  std::set<std::string, std::less<>> known_operations;  // every SageMaker operation
  std::size_t pattern_count = 0;
};

namespace {

// One validation pass: collects violations until a JSON type mismatch stops it.
class Walker {
 public:
  explicit Walker(const std::vector<Shape>& shapes) : shapes_(shapes) {}

  // Returns false once a type mismatch has been recorded in type_error().
  bool Walk(const json::value& v, const Shape& s, const std::string& path) {
    if (!CheckType(s, v, path)) return false;
    switch (s.kind) {
      case Kind::kStructure:
        for (const Member& m : s.members) {
          std::string child = path.empty() ? m.path_name : path + "." + m.path_name;
          const json::value* mv = v.get_object().if_contains(m.name);
          if (mv == nullptr || mv->is_null()) {
            if (m.required) Violate(nullptr, child, "Member must not be null");
          } else if (!Walk(*mv, shapes_[m.shape], child)) {
            return false;
          }
        }
        return true;
      case Kind::kList: {
        const json::array& arr = v.get_array();
        Violate(&v, path, LengthList(s, arr.size()));
        for (std::size_t i = 0; i < arr.size(); ++i) {
          std::string child = path + "." + std::to_string(i + 1) + ".member";
          if (arr[i].is_null()) {
            Violate(nullptr, child, "Member must not be null");
          } else if (!Walk(arr[i], shapes_[s.element], child)) {
            return false;
          }
        }
        return true;
      }
      case Kind::kMap:
        return WalkMap(v, s, path);
      default:
        Violate(&v, path, ScalarFailures(s, v));
        return true;
    }
  }

  const std::vector<std::string>& violations() const { return violations_; }
  const std::optional<Error>& type_error() const { return type_error_; }

 private:
  bool WalkMap(const json::value& v, const Shape& s, const std::string& path) {
    const json::object& obj = v.get_object();
    const Shape& key_shape = shapes_[s.key];
    const Shape& value_shape = shapes_[s.value];
    Violate(&v, path, LengthList(s, obj.size()));
    std::vector<std::string> key_failures, value_failures;
    for (const auto& entry : obj) {
      json::value key(entry.key());
      AddUnique(key_failures, ScalarFailures(key_shape, key));
      std::string child = path + "." + std::string(entry.key());
      if (entry.value().is_null()) {
        AddUnique(value_failures, {"Member must not be null"});
      } else if (!IsScalar(value_shape.kind)) {
        if (!Walk(entry.value(), value_shape, child)) return false;
      } else if (!CheckType(value_shape, entry.value(), child)) {
        return false;
      } else {
        AddUnique(value_failures, ScalarFailures(value_shape, entry.value()));
      }
    }
    // Coral reports a map's entries as one violation per side, listing what failed.
    if (!key_failures.empty()) {
      Violate(&v, path, "Map keys must satisfy constraint: [" + Join(key_failures, ", ") + "]");
    }
    if (!value_failures.empty()) {
      Violate(&v, path, "Map value must satisfy constraint: [" + Join(value_failures, ", ") + "]");
    }
    return true;
  }

  static std::vector<std::string> LengthList(const Shape& s, std::size_t size) {
    std::vector<std::string> out;
    LengthFailures(s, static_cast<double>(size), out);
    return out;
  }

  bool CheckType(const Shape& s, const json::value& v, const std::string& path) {
    if (TypeMatches(s.kind, v)) return true;
    std::string where = path.empty() ? "the request body" : "'" + path + "'";
    type_error_ = Error(Errc::kSerialization,
                        "Unexpected value at " + where + ": expected " + std::string(s.expected) +
                            ", got " + std::string(JsonKindName(v)) + ".",
                        "SerializationException");
    return false;
  }

  void Violate(const json::value* v, const std::string& path, std::string_view constraint) {
    violations_.push_back("Value " + (v == nullptr ? std::string("null") : "'" + Render(*v) + "'") +
                          " at '" + path +
                          "' failed to satisfy constraint: " + std::string(constraint));
  }
  void Violate(const json::value* v, const std::string& path,
               const std::vector<std::string>& constraints) {
    for (const std::string& c : constraints) Violate(v, path, c);
  }

  const std::vector<Shape>& shapes_;
  std::vector<std::string> violations_;
  std::optional<Error> type_error_;
};

std::optional<Bound> ParseBound(const json::object& obj, std::string_view field) {
  const json::value* v = obj.if_contains(field);
  if (v == nullptr) return std::nullopt;
  std::optional<double> d = AsNumber(*v);
  if (!d) return std::nullopt;
  return Bound{*d, Render(*v)};
}

// Fills `shape` from its JSON description; appends problems to `errors`.
void ParseShape(const std::string& name, const json::value& desc,
                const std::map<std::string, int, std::less<>>& index, Shape& shape,
                std::vector<std::string>& errors) {
  shape.name = name;
  auto fail = [&](const std::string& what) { errors.push_back("shape " + name + ": " + what); };
  if (!desc.is_object()) return fail("not an object");
  const json::object& obj = desc.get_object();
  auto ref = [&](std::string_view field) {
    const json::value* v = obj.if_contains(field);
    if (v == nullptr || !v->is_string()) {
      fail("missing " + std::string(field));
      return -1;
    }
    auto it = index.find(std::string_view(v->get_string()));
    if (it == index.end()) fail("unknown shape " + std::string(v->get_string()));
    return it == index.end() ? -1 : it->second;
  };

  const json::value* type = obj.if_contains("type");
  auto kind = std::find_if(kKinds.begin(), kKinds.end(), [&](const auto& k) {
    return type != nullptr && type->is_string() && type->get_string() == k.type;
  });
  if (kind == kKinds.end()) return fail("missing or unknown type");
  shape.kind = kind->kind;
  shape.expected = kind->expected;
  shape.min = ParseBound(obj, "min");
  shape.max = ParseBound(obj, "max");

  if (shape.kind == Kind::kStructure) {
    const json::value* members = obj.if_contains("members");
    if (members != nullptr && members->is_object()) {
      for (const auto& [member, target] : members->get_object()) {
        Member m;
        m.name = std::string(member);
        m.path_name = m.name;
        if (!m.path_name.empty()) m.path_name[0] = static_cast<char>(std::tolower(m.path_name[0]));
        auto it =
            target.is_string() ? index.find(std::string_view(target.get_string())) : index.end();
        if (it == index.end()) fail("member " + m.name + " names an unknown shape");
        m.shape = it == index.end() ? -1 : it->second;
        shape.members.push_back(std::move(m));
      }
    }
    if (const json::value* required = obj.if_contains("required");
        required && required->is_array()) {
      for (const json::value& r : required->get_array()) {
        auto it = std::find_if(shape.members.begin(), shape.members.end(), [&](const Member& m) {
          return r.is_string() && r.get_string() == m.name;
        });
        if (it == shape.members.end()) {
          fail("required member " + Render(r) + " is not a member");
        } else {
          it->required = true;
        }
      }
    }
  } else if (shape.kind == Kind::kList) {
    shape.element = ref("member");
  } else if (shape.kind == Kind::kMap) {
    shape.key = ref("key");
    shape.value = ref("value");
  }

  if (const json::value* p = obj.if_contains("pattern"); p && p->is_string()) {
    shape.pattern_text = std::string(p->get_string());
    try {
      shape.pattern.emplace(TranslatePattern(shape.pattern_text),
                            boost::regex::perl | boost::regex::no_mod_s | boost::regex::no_mod_m);
    } catch (const std::exception& e) {
      fail("pattern " + shape.pattern_text + " does not compile: " + e.what());
    }
  }
  if (const json::value* e = obj.if_contains("enum"); e && e->is_array()) {
    for (const json::value& v : e->get_array()) {
      if (v.is_string()) shape.enum_values.emplace_back(v.get_string());
    }
    shape.enum_text = "[" + Join(shape.enum_values, ", ") + "]";
  }
}

}  // namespace

Result<Validator> Validator::Load(std::string_view shapes_json) {
  boost::system::error_code ec;
  json::value doc = json::parse(shapes_json, ec);
  if (ec) return Error(Errc::kInternal, "SageMaker shapes: invalid JSON: " + ec.message());
  const json::value* shapes = doc.is_object() ? doc.get_object().if_contains("shapes") : nullptr;
  const json::value* ops = doc.is_object() ? doc.get_object().if_contains("operations") : nullptr;
  if (shapes == nullptr || !shapes->is_object() || ops == nullptr || !ops->is_object()) {
    return Error(Errc::kInternal, "SageMaker shapes: expected {\"operations\":{}, \"shapes\":{}}");
  }

  auto schema = std::make_shared<Schema>();
  std::map<std::string, int, std::less<>> index;
  for (const auto& entry : shapes->get_object()) {
    index.emplace(std::string(entry.key()), static_cast<int>(index.size()));
  }
  schema->shapes.resize(index.size());
  std::vector<std::string> errors;
  for (const auto& entry : shapes->get_object()) {
    Shape& shape = schema->shapes[index.at(std::string(entry.key()))];
    ParseShape(std::string(entry.key()), entry.value(), index, shape, errors);
    schema->pattern_count += shape.pattern.has_value();
  }
  for (const Shape& shape : schema->shapes) {
    if (shape.kind == Kind::kMap && shape.key >= 0 &&
        schema->shapes[shape.key].kind != Kind::kString) {
      errors.push_back("shape " + shape.name + ": map keys must be strings");
    }
  }
  for (const auto& [op, input] : ops->get_object()) {
    auto it = input.is_string() ? index.find(std::string_view(input.get_string())) : index.end();
    if (it == index.end() || schema->shapes[it->second].kind != Kind::kStructure) {
      errors.push_back("operation " + std::string(op) + ": input is not a known structure");
    } else {
      schema->operations.emplace(std::string(op), it->second);
    }
  }
  if (const json::value* known = doc.get_object().if_contains("known_operations");
      known && known->is_array()) {
    for (const auto& name : known->get_array()) {
      if (name.is_string()) schema->known_operations.emplace(name.get_string());
    }
  }
  if (!errors.empty()) {
    return Error(Errc::kInternal, "SageMaker shapes: " + Join(errors, "; "));
  }
  return Validator(std::move(schema));
}

Status Validator::Validate(std::string_view operation, const json::value& input) const {
  auto op = schema_->operations.find(operation);
  if (op == schema_->operations.end()) {
    return Error(Errc::kUnknownOperation,
                 "Operation " + std::string(operation) + " is not supported by this service.");
  }
  static const json::value kEmpty = json::object();
  Walker walker(schema_->shapes);
  walker.Walk(input.is_null() ? kEmpty : input, schema_->shapes[op->second], "");
  if (walker.type_error()) return *walker.type_error();
  if (walker.violations().empty()) return OkStatus();
  return ValidationErrors(walker.violations());
}

bool Validator::IsKnownOperation(std::string_view operation) const {
  return schema_->operations.count(operation) > 0 || schema_->known_operations.count(operation) > 0;
}

std::size_t Validator::OperationCount() const { return schema_->operations.size(); }
std::size_t Validator::ShapeCount() const { return schema_->shapes.size(); }
std::size_t Validator::PatternCount() const { return schema_->pattern_count; }

Error ValidationErrors(const std::vector<std::string>& violations, Errc code) {
  std::string head = violations.size() == 1
                         ? "1 validation error detected: "
                         : std::to_string(violations.size()) + " validation errors detected: ";
  return Error(code, head + Join(violations, "; "));
}

std::size_t CodePoints(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

const Result<Validator>& EmbeddedValidator() {
  static const Result<Validator> validator = Validator::Load(EmbeddedShapesJson());
  return validator;
}

Status ValidateInput(std::string_view operation, const json::value& input) {
  const Result<Validator>& validator = EmbeddedValidator();
  if (!validator.ok()) return validator.error();
  return validator->Validate(operation, input);
}

}  // namespace inferd::api::sagemaker
