#include "inferd-xgboost/payload.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <utility>

namespace inferd::xgboost_server {
namespace {

namespace json = boost::json;

constexpr float kMissing = std::numeric_limits<float>::quiet_NaN();

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// Quotes a snippet of user input for an error message, cut at 40 characters.
std::string Quote(std::string_view s) {
  std::string out = "'";
  out.append(s.substr(0, 40));
  if (s.size() > 40) out += "...";
  return out + "'";
}

Error CsvError(const std::string& what) {
  return Error(
      Errc::kSerialization,
      "Loading csv data failed with Exception, please ensure data is in csv format: " + what);
}

Error LibsvmError(const std::string& what) {
  return Error(Errc::kSerialization,
               "Loading libsvm data failed with Exception, please ensure data is in libsvm "
               "format: " +
                   what);
}

Error JsonError(const std::string& what) {
  return Error(Errc::kSerialization,
               "Loading json data failed, please ensure data is in SageMaker's JSON inference "
               "format ({\"instances\": [{\"features\": [...]}, ...]}): " +
                   what);
}

// A row before it is placed into a Matrix: dense values, or sparse (column, value) pairs.
struct Row {
  bool sparse = false;
  std::vector<float> dense;
  std::vector<std::pair<unsigned, float>> entries;  // sorted by column, unique
  size_t width = 0;                                 // sparse: declared or implied columns
};

// Lays rows out as one Matrix: dense when every row is dense (all the same width), else CSR.
Result<Matrix> BuildMatrix(std::vector<Row> rows) {
  Matrix m;
  m.rows = rows.size();
  bool any_sparse = std::any_of(rows.begin(), rows.end(), [](const Row& r) { return r.sparse; });
  if (!any_sparse) {
    m.cols = rows.empty() ? 0 : rows[0].dense.size();
    m.dense.reserve(m.rows * m.cols);
    for (size_t i = 0; i < rows.size(); ++i) {
      if (rows[i].dense.size() != m.cols) {
        return Error(Errc::kSerialization, "row " + std::to_string(i + 1) + " has " +
                                               std::to_string(rows[i].dense.size()) +
                                               " features but row 1 has " + std::to_string(m.cols) +
                                               "; every row needs the same number.");
      }
      m.dense.insert(m.dense.end(), rows[i].dense.begin(), rows[i].dense.end());
    }
    return m;
  }
  m.sparse = true;
  m.indptr.reserve(m.rows + 1);
  m.indptr.push_back(0);
  for (Row& r : rows) {
    if (r.sparse) {
      for (auto [col, value] : r.entries) {
        m.indices.push_back(col);
        m.values.push_back(value);
      }
      m.cols = std::max(m.cols, r.width);
    } else {
      for (size_t col = 0; col < r.dense.size(); ++col) {
        if (std::isnan(r.dense[col])) continue;
        m.indices.push_back(static_cast<unsigned>(col));
        m.values.push_back(r.dense[col]);
      }
      m.cols = std::max(m.cols, r.dense.size());
    }
    m.indptr.push_back(m.indices.size());
  }
  return m;
}

// ---- JSON ----

// JSON helpers report bare problems ("instances[1].features[2] is not a number."); ParseJson and
// ParseJsonLines add the context.
Error Bad(std::string what) { return Error(Errc::kSerialization, std::move(what)); }

// "a.b" / "b" for a member of the value at path `where`; "a[1]" / "[1]" for an element.
std::string Member(const std::string& where, std::string_view key) {
  return where.empty() ? std::string(key) : where + "." + std::string(key);
}
std::string Element(const std::string& where, size_t i) {
  return where + "[" + std::to_string(i) + "]";
}
std::string Named(const std::string& where) { return where.empty() ? "the document" : where; }

Result<float> JsonNumber(const json::value& v, const std::string& where) {
  if (v.is_null()) return kMissing;
  if (v.is_double()) return static_cast<float>(v.get_double());
  if (v.is_int64()) return static_cast<float>(static_cast<double>(v.get_int64()));
  if (v.is_uint64()) return static_cast<float>(static_cast<double>(v.get_uint64()));
  return Bad(where + " is not a number.");
}

Result<std::vector<float>> JsonNumbers(const json::value& v, const std::string& where) {
  if (!v.is_array()) return Bad(Named(where) + " is not an array of numbers.");
  std::vector<float> out;
  out.reserve(v.get_array().size());
  for (size_t i = 0; i < v.get_array().size(); ++i) {
    auto x = JsonNumber(v.get_array()[i], Element(where, i));
    if (!x.ok()) return x.error();
    out.push_back(*x);
  }
  return out;
}

// F: [numbers] or {"values": [...], "keys": [...]?, "shape": [n]?}.
Result<Row> JsonFeatures(const json::value& v, const std::string& where) {
  Row row;
  if (v.is_array()) {
    auto values = JsonNumbers(v, where);
    if (!values.ok()) return values.error();
    row.dense = std::move(*values);
    return row;
  }
  if (!v.is_object()) {
    return Bad(Named(where) + " must be an array of numbers or an object.");
  }
  const json::object& o = v.get_object();
  const json::value* values_v = o.if_contains("values");
  if (values_v == nullptr) return Bad(Named(where) + " has no \"values\".");
  auto values = JsonNumbers(*values_v, Member(where, "values"));
  if (!values.ok()) return values.error();
  const json::value* keys_v = o.if_contains("keys");
  if (keys_v == nullptr || (keys_v->is_array() && keys_v->get_array().empty() && values->empty())) {
    row.dense = std::move(*values);
    return row;
  }
  if (!keys_v->is_array() || keys_v->get_array().size() != values->size()) {
    return Bad(Member(where, "keys") + " must be an array as long as " + Member(where, "values") +
               ".");
  }
  row.sparse = true;
  std::map<unsigned, float> entries;
  for (size_t i = 0; i < values->size(); ++i) {
    const json::value& k = keys_v->get_array()[i];
    int64_t key = -1;
    if (k.is_int64()) key = k.get_int64();
    if (k.is_uint64() && k.get_uint64() <= std::numeric_limits<unsigned>::max()) {
      key = static_cast<int64_t>(k.get_uint64());
    }
    if (key < 0 || key > std::numeric_limits<unsigned>::max() - 1) {
      return Bad(Element(Member(where, "keys"), i) + " is not a feature index.");
    }
    if (!std::isnan((*values)[i])) entries[static_cast<unsigned>(key)] = (*values)[i];
    row.width = std::max(row.width, static_cast<size_t>(key) + 1);
  }
  row.entries.assign(entries.begin(), entries.end());
  if (const json::value* shape = o.if_contains("shape")) {
    if (!shape->is_array() || shape->get_array().size() != 1 ||
        !shape->get_array()[0].is_number()) {
      return Bad(Member(where, "shape") + " must be [number of features].");
    }
    auto n = shape->get_array()[0].to_number<double>();
    if (n < static_cast<double>(row.width)) {
      return Bad(Member(where, "keys") + " go beyond " + Member(where, "shape") + ".");
    }
    row.width = static_cast<size_t>(n);
  }
  return row;
}

// I: [numbers], {"features": F} or {"data": {"features": F}}.
Result<Row> JsonInstance(const json::value& v, const std::string& where) {
  if (v.is_array()) return JsonFeatures(v, where);
  if (!v.is_object()) return Bad(Named(where) + " must be an array or an object.");
  const json::object& o = v.get_object();
  if (const json::value* f = o.if_contains("features")) {
    return JsonFeatures(*f, Member(where, "features"));
  }
  if (const json::value* d = o.if_contains("data")) {
    if (d->is_object()) {
      if (const json::value* f = d->get_object().if_contains("features")) {
        return JsonFeatures(*f, Member(where, "data.features"));
      }
    }
  }
  return Bad(Named(where) + " has no \"features\" (or \"data\": {\"features\": ...}).");
}

// Appends the rows of one JSON document; `line` prefixes messages ("line 3: ") in JSON Lines.
Status AppendJsonDocument(const json::value& doc, const std::string& line, std::vector<Row>* rows) {
  auto add = [&](const json::value& instance, const std::string& where) -> Status {
    auto row = JsonInstance(instance, where);
    if (!row.ok()) return Bad(line + row.error().message);
    rows->push_back(std::move(*row));
    return OkStatus();
  };
  if (doc.is_object()) {
    if (const json::value* instances = doc.get_object().if_contains("instances")) {
      if (!instances->is_array()) return Bad(line + "\"instances\" must be an array.");
      for (size_t i = 0; i < instances->get_array().size(); ++i) {
        INFERD_RETURN_IF_ERROR(add(instances->get_array()[i], Element("instances", i)));
      }
      return OkStatus();
    }
    return add(doc, "");
  }
  if (doc.is_array()) {
    const json::array& a = doc.get_array();
    bool flat = std::all_of(a.begin(), a.end(),
                            [](const json::value& x) { return x.is_number() || x.is_null(); });
    if (flat && !a.empty()) return add(doc, "");
    for (size_t i = 0; i < a.size(); ++i) INFERD_RETURN_IF_ERROR(add(a[i], Element("", i)));
    return OkStatus();
  }
  return Bad(line + "expected an object or an array.");
}

Result<json::value> ParseJsonText(std::string_view text, const std::string& where) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) return Bad(where + "valid JSON (" + ec.message() + ").");
  return v;
}

}  // namespace

Result<double> ParsePythonFloat(std::string_view text) {
  std::string_view s = Trim(text);
  std::string_view body = s;
  bool negative = false;
  if (!body.empty() && (body.front() == '+' || body.front() == '-')) {
    negative = body.front() == '-';
    body.remove_prefix(1);
  }
  auto bad = [&] {
    return Error(Errc::kSerialization, "could not convert string to float: " + Quote(text));
  };
  if (body.empty()) return bad();
  if (IEquals(body, "nan")) return std::numeric_limits<double>::quiet_NaN();
  if (IEquals(body, "inf") || IEquals(body, "infinity")) {
    return negative ? -std::numeric_limits<double>::infinity()
                    : std::numeric_limits<double>::infinity();
  }
  if (!std::isdigit(static_cast<unsigned char>(body.front())) && body.front() != '.') return bad();
  double value = 0;
  auto [end, ec] = std::from_chars(body.data(), body.data() + body.size(), value);
  if (end != body.data() + body.size()) return bad();
  if (ec == std::errc::result_out_of_range) {
    std::string copy(body);
    value = std::strtod(copy.c_str(), nullptr);  // ±HUGE_VAL or a denormal/0, as Python gives
  } else if (ec != std::errc()) {
    return bad();
  }
  return negative ? -value : value;
}

char SniffCsvDelimiter(std::string_view line) {
  line = line.substr(0, 512);
  for (char c : {',', '\t', ';', '|', ' '}) {
    if (line.find(c) != std::string_view::npos) return c;
  }
  return ',';
}

Result<Matrix> ParseCsv(std::string_view body, bool drop_first_column) {
  std::vector<Row> rows;
  std::string_view rest = Trim(body);
  char delimiter = SniffCsvDelimiter(rest.substr(0, rest.find('\n')));
  size_t line_no = 0;
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (Trim(line).empty()) continue;
    Row row;
    size_t field_no = 0;
    for (size_t start = 0;;) {
      size_t end = line.find(delimiter, start);
      std::string_view field = line.substr(start, end - start);
      ++field_no;
      if (!(drop_first_column && field_no == 1)) {
        if (field.empty()) {
          row.dense.push_back(kMissing);
        } else {
          auto v = ParsePythonFloat(field);
          if (!v.ok()) {
            return CsvError("line " + std::to_string(line_no) + ", field " +
                            std::to_string(field_no) + ": " + v.error().message);
          }
          row.dense.push_back(static_cast<float>(*v));
        }
      }
      if (end == std::string_view::npos) break;
      start = end + 1;
    }
    rows.push_back(std::move(row));
  }
  if (rows.empty()) return CsvError("the payload has no rows.");
  auto m = BuildMatrix(std::move(rows));
  if (!m.ok()) return CsvError(m.error().message);
  return m;
}

Result<Matrix> ParseLibsvm(std::string_view body, LibsvmIndexing indexing) {
  struct RawRow {
    std::map<int64_t, float> entries;  // a repeated index keeps its last value
  };
  std::vector<RawRow> raw;
  std::string_view rest = Trim(body);
  int64_t min_index = std::numeric_limits<int64_t>::max();
  size_t line_no = 0;
  while (!rest.empty() || line_no == 0) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    ++line_no;
    RawRow row;
    size_t pos = 0;
    while (pos < line.size()) {
      while (pos < line.size() && std::isspace(static_cast<unsigned char>(line[pos]))) ++pos;
      size_t end = pos;
      while (end < line.size() && !std::isspace(static_cast<unsigned char>(line[end]))) ++end;
      std::string_view token = line.substr(pos, end - pos);
      pos = end;
      auto colon = token.find(':');
      if (token.empty() || colon == std::string_view::npos) continue;  // a label
      std::string_view idx = token.substr(0, colon);
      int64_t index = -1;
      auto [p, ec] = std::from_chars(idx.data(), idx.data() + idx.size(), index);
      if (ec != std::errc() || p != idx.data() + idx.size() || index < 0 ||
          index > std::numeric_limits<unsigned>::max() - 1) {
        return LibsvmError("line " + std::to_string(line_no) + ": " + Quote(token) +
                           " does not start with a feature index.");
      }
      auto value = ParsePythonFloat(token.substr(colon + 1));
      if (!value.ok()) {
        return LibsvmError("line " + std::to_string(line_no) + ": " + value.error().message);
      }
      row.entries[index] = static_cast<float>(*value);
      min_index = std::min(min_index, index);
    }
    raw.push_back(std::move(row));
    if (rest.empty()) break;
  }
  int64_t offset = 0;
  if (indexing == LibsvmIndexing::kOneBased) {
    if (min_index == 0) return LibsvmError("feature index 0 in 1-based LIBSVM data.");
    offset = 1;
  } else if (indexing == LibsvmIndexing::kAuto) {
    offset = min_index >= 1 && min_index != std::numeric_limits<int64_t>::max() ? 1 : 0;
  }
  std::vector<Row> rows;
  rows.reserve(raw.size());
  for (RawRow& r : raw) {
    Row row;
    row.sparse = true;
    for (auto [index, value] : r.entries) {
      auto col = static_cast<unsigned>(index - offset);
      row.entries.emplace_back(col, value);
      row.width = std::max<size_t>(row.width, col + 1);
    }
    rows.push_back(std::move(row));
  }
  return BuildMatrix(std::move(rows));
}

Result<Matrix> ParseJson(std::string_view body) {
  auto doc = ParseJsonText(body, "the payload is not ");
  if (!doc.ok()) return JsonError(doc.error().message);
  std::vector<Row> rows;
  if (auto st = AppendJsonDocument(*doc, "", &rows); !st.ok()) return JsonError(st.error().message);
  auto m = BuildMatrix(std::move(rows));
  if (!m.ok()) return JsonError(m.error().message);
  return m;
}

Result<Matrix> ParseJsonLines(std::string_view body) {
  std::vector<Row> rows;
  std::string_view rest = body;
  size_t line_no = 0;
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    ++line_no;
    if (Trim(line).empty()) continue;
    std::string where = "line " + std::to_string(line_no) + ": ";
    auto doc = ParseJsonText(line, where + "not ");
    if (!doc.ok()) return JsonError(doc.error().message);
    if (auto st = AppendJsonDocument(*doc, where, &rows); !st.ok()) {
      return JsonError(st.error().message);
    }
  }
  if (rows.empty()) return JsonError("the payload has no lines.");
  auto m = BuildMatrix(std::move(rows));
  if (!m.ok()) return JsonError(m.error().message);
  return m;
}

Result<Matrix> ParsePayload(const InputType& type, std::string_view body,
                            LibsvmIndexing libsvm_indexing) {
  switch (type.format) {
    case InputFormat::kCsv:
      return ParseCsv(body, type.drop_first_column);
    case InputFormat::kLibsvm:
      return ParseLibsvm(body, libsvm_indexing);
    case InputFormat::kJson:
      return ParseJson(body);
    case InputFormat::kJsonLines:
      return ParseJsonLines(body);
  }
  return Error(Errc::kInternal, "unknown input format");
}

}  // namespace inferd::xgboost_server
