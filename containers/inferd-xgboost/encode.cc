#include "inferd-xgboost/encode.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <string_view>

namespace inferd::xgboost_server {
namespace {

// Python writes a row of a 2-d result as str(list): "[a, b, c]".
void AppendList(const Predictions& p, size_t row, std::string* out, std::string (*item)(double)) {
  out->push_back('[');
  for (size_t c = 0; c < p.cols; ++c) {
    if (c > 0) out->append(", ");
    out->append(item(p.values[row * p.cols + c]));
  }
  out->push_back(']');
}

void AppendRow(const Predictions& p, size_t row, std::string* out, std::string (*item)(double)) {
  if (p.per_row_vector) {
    AppendList(p, row, out, item);
  } else {
    out->append(item(p.values[row]));
  }
}

// json.dumps writes non-finite floats as NaN, Infinity and -Infinity.
std::string JsonFloat(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  return PythonFloatRepr(v);
}

}  // namespace

std::string PythonFloatRepr(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char buf[64];
  // Shortest round-trip digits in the form d.ddde±XX.
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(end - buf));
  std::string out;
  if (sci.front() == '-') {
    out.push_back('-');
    sci.remove_prefix(1);
  }
  size_t e = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e)) {
    if (c != '.') digits.push_back(c);
  }
  int exponent = std::atoi(std::string(sci.substr(e + 1)).c_str());
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  if (value == 0) digits = "0";
  // Python's float_repr_style "short" (format code 'r'): value = 0.DIGITS × 10^decpt.
  int decpt = value == 0 ? 1 : exponent + 1;
  const int n = static_cast<int>(digits.size());
  if (decpt <= -4 || decpt > 16) {
    out.push_back(digits[0]);
    if (n > 1) {
      out.push_back('.');
      out.append(digits, 1);
    }
    int x = decpt - 1;
    out.push_back('e');
    out.push_back(x < 0 ? '-' : '+');
    std::string xs = std::to_string(std::abs(x));
    if (xs.size() < 2) out.push_back('0');
    out.append(xs);
  } else if (decpt <= 0) {
    out.append("0.");
    out.append(static_cast<size_t>(-decpt), '0');
    out.append(digits);
  } else if (decpt < n) {
    out.append(digits, 0, static_cast<size_t>(decpt));
    out.push_back('.');
    out.append(digits, static_cast<size_t>(decpt));
  } else {
    out.append(digits);
    out.append(static_cast<size_t>(decpt - n), '0');
    out.append(".0");
  }
  return out;
}

std::string EncodeCsv(const Predictions& p, bool batch) {
  std::string out;
  for (size_t r = 0; r < p.rows; ++r) {
    if (r > 0 && !batch) out.push_back(',');
    AppendRow(p, r, &out, PythonFloatRepr);
    if (batch) out.push_back('\n');
  }
  return out;
}

std::string EncodeJson(const Predictions& p) {
  std::string out = "{\"predictions\": [";
  for (size_t r = 0; r < p.rows; ++r) {
    if (r > 0) out.append(", ");
    out.append("{\"score\": ");
    AppendRow(p, r, &out, JsonFloat);
    out.push_back('}');
  }
  out.append("]}");
  return out;
}

std::string EncodeJsonLines(const Predictions& p) {
  std::string out;
  for (size_t r = 0; r < p.rows; ++r) {
    out.append("{\"score\": ");
    AppendRow(p, r, &out, JsonFloat);
    out.append("}\n");
  }
  return out;
}

std::string Encode(const OutputType& type, const Predictions& p, bool batch) {
  switch (type.format) {
    case OutputFormat::kCsv:
      return EncodeCsv(p, batch);
    case OutputFormat::kJson:
      return EncodeJson(p);
    case OutputFormat::kJsonLines:
      return EncodeJsonLines(p);
  }
  return {};
}

}  // namespace inferd::xgboost_server
