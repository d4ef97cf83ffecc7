// Predictions → response body for inferd-xgboost, byte for byte as the SageMaker XGBoost
// container writes them (Python's str()/json.dumps of the float32 predictions widened to double).
// Pure functions, no I/O.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "inferd-xgboost/content_types.h"

namespace inferd::xgboost_server {

// XGBoost's output: one value per row, or (multi:softprob and other multi-output objectives)
// `cols` values per row.
struct Predictions {
  size_t rows = 0;
  size_t cols = 1;
  bool per_row_vector = false;  // true when XGBoost returned a 2-d result
  std::vector<float> values;    // rows * cols, row-major
};

// Python's repr() of a float: shortest round-trip digits, fixed notation for 1e-4 <= |x| < 1e16
// (always with a '.', "1.0"), otherwise exponent notation ("1e-05", "1.5e+16"); nan, inf, -inf.
std::string PythonFloatRepr(double value);

// text/csv. One line, values joined by ',' — a softprob row renders as a Python list,
// "[0.1, 0.2, 0.7],[0.3, 0.3, 0.4]" (algorithm_mode/handler_service.py: ",".join(map(str,
// prediction.tolist()))). With `batch` (SAGEMAKER_BATCH set, Batch Transform): one value per
// line and a trailing newline.
std::string EncodeCsv(const Predictions& p, bool batch);

// application/json: {"predictions": [{"score": 0.43}, {"score": [0.1, 0.9]}]} with json.dumps'
// default separators (SageMaker's common inference response format); NaN/Infinity as
// json.dumps writes them.
std::string EncodeJson(const Predictions& p);

// application/jsonlines: {"score": 0.43}\n per row (encoder.json_to_jsonlines).
std::string EncodeJsonLines(const Predictions& p);

std::string Encode(const OutputType& type, const Predictions& p, bool batch);

}  // namespace inferd::xgboost_server
