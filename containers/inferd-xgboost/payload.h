// Request payload → feature matrix for inferd-xgboost: CSV, LIBSVM, JSON and JSON Lines, with the
// SageMaker XGBoost container's rules (spec §7.2; aws/sagemaker-xgboost-container encoder.py and
// algorithm_mode/serve_utils.py). Pure functions, no I/O.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "inferd-xgboost/content_types.h"

namespace inferd::xgboost_server {

// Rows of features, dense (NaN = missing) or CSR (absent = missing).
struct Matrix {
  size_t rows = 0;
  size_t cols = 0;  // dense: columns per row; sparse: 1 + the largest column index (0 if none)
  bool sparse = false;
  std::vector<float> dense;       // rows * cols, row-major
  std::vector<size_t> indptr;     // sparse: rows + 1 offsets into indices/values
  std::vector<unsigned> indices;  // sparse: column of each value, ascending within a row
  std::vector<float> values;
};

// How LIBSVM feature indices are read.
//   kAuto: 1-based when no index in the payload is 0, else 0-based — the newest container's rule
//          (encoder.libsvm_to_dmatrix: "Detect if indices are 1-based ... and shift to 0-based").
//   kZeroBased: as given (XGBoost's own LIBSVM reader; SageMaker XGBoost 0.90-1 to 1.7-1).
//   kOneBased: every index minus one (index 0 is an error).
enum class LibsvmIndexing { kAuto, kZeroBased, kOneBased };

// Errors: Errc::kSerialization with a message saying what is wrong and where.
Result<Matrix> ParsePayload(const InputType& type, std::string_view body,
                            LibsvmIndexing libsvm_indexing);

// CSV: the delimiter is sniffed from the first line; an empty field is a missing value (NaN);
// one row per line; blank lines are skipped; every row must have the same number of fields.
Result<Matrix> ParseCsv(std::string_view body, bool drop_first_column);

// The CSV delimiter of a line: the first of , \t ; | and space that occurs in its first 512
// characters; ',' when none does.
char SniffCsvDelimiter(std::string_view line);

// LIBSVM: "[label] index:value ..." per line; tokens without ':' (labels) are ignored; a line
// without features is a row whose features are all missing. Indices are made 0-based as chosen.
Result<Matrix> ParseLibsvm(std::string_view body, LibsvmIndexing indexing);

// JSON in SageMaker's common inference format (docs: cdf-inference):
//   {"instances": [I, ...]}  |  I  |  [I, ...]  |  [number, ...] (one row)
// where an instance I is [number|null, ...], {"features": F} or {"data": {"features": F}}, and
// F is [number|null, ...] or {"values": [...], "keys": [...]?, "shape": [n]?} (keys: sparse).
Result<Matrix> ParseJson(std::string_view body);

// JSON Lines: one JSON document per non-blank line, each read as ParseJson reads a body; the
// rows of all lines in order.
Result<Matrix> ParseJsonLines(std::string_view body);

// A number the way Python's float() reads it: surrounding whitespace, optional sign, decimal or
// exponent notation, inf/infinity/nan in any case. Out-of-range magnitudes become ±inf or 0.
Result<double> ParsePythonFloat(std::string_view text);

}  // namespace inferd::xgboost_server
