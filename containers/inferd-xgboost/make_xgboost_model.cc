// make-xgboost-model: trains a small XGBoost model on generated data through libxgboost (the same
// fixtures as xgboost_serving_test), saves it, and prints rows with libxgboost's own predictions
// for them, so end-to-end tests can check a served model without Python's xgboost.
//
//   make-xgboost-model --out DIR [--objective reg:squarederror|binary:logistic|multi:softprob]
//                      [--format binary|json|ubj] [--rows 200] [--cols 4] [--predict 8]
//                      [--seed 7]
//
// Writes DIR/xgboost-model (in the chosen format; inferd-xgboost and the SageMaker container
// read that name in any of them) and prints one JSON object on stdout:
//   {"model": "DIR/xgboost-model", "objective": …, "cols": 4, "values_per_row": 1,
//    "csv": "0.1,,0.3,0.4\n…" (missing values as empty fields),
//    "predictions": [0.123456789, …] (row-major; values_per_row per row)}
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <stdexcept>
#include <string>

#include "inferd-xgboost/test_models.h"

namespace {

using namespace inferd::xgboost_server::testing;

int Usage(const std::string& why) {
  std::cerr << "make-xgboost-model: " << why
            << "\nusage: make-xgboost-model --out DIR [--objective reg:squarederror|"
               "binary:logistic|multi:softprob] [--format binary|json|ubj] [--rows N] [--cols N] "
               "[--predict N] [--seed N]\n";
  return 2;
}

std::string Number(float v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.9g", static_cast<double>(v));
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> args = {{"--objective", "reg:squarederror"},
                                             {"--format", "ubj"},
                                             {"--rows", "200"},
                                             {"--cols", "4"},
                                             {"--predict", "8"},
                                             {"--seed", "7"}};
  for (int i = 1; i < argc; i += 2) {
    std::string key = argv[i];
    if (key != "--out" && !args.count(key)) return Usage("unknown option " + key);
    if (i + 1 >= argc) return Usage(key + " needs a value");
    args[key] = argv[i + 1];
  }
  if (!args.count("--out")) return Usage("--out is required");
  try {
    const std::string& objective = args["--objective"];
    int classes = objective == "binary:logistic" ? 2 : objective == "multi:softprob" ? 3 : 0;
    SavedFormat format = args["--format"] == "json"  ? SavedFormat::kJson
                         : args["--format"] == "ubj" ? SavedFormat::kUbj
                                                     : SavedFormat::kBinary;
    if (args["--format"] != "json" && args["--format"] != "ubj" && args["--format"] != "binary") {
      return Usage("--format must be binary, json or ubj");
    }
    size_t rows = std::stoul(args["--rows"]), cols = std::stoul(args["--cols"]);
    size_t predict = std::stoul(args["--predict"]);
    if (rows == 0 || cols == 0 || predict == 0 || predict > rows) {
      return Usage("--rows, --cols and --predict must be positive, --predict at most --rows");
    }
    Dataset d = MakeDataset(rows, cols, classes, static_cast<unsigned>(std::stoul(args["--seed"])));
    std::string model = TrainModel(objective, d, format, classes > 2 ? classes : 0);
    std::filesystem::path dir(args["--out"]);
    std::filesystem::create_directories(dir);
    std::filesystem::path file = dir / "xgboost-model";
    std::ofstream(file, std::ios::binary) << model;
    std::vector<float> x = Rows(d, 0, predict);
    size_t per_row = 1;
    std::vector<float> expected = ReferencePredict(model, x, predict, cols, &per_row);
    std::string csv;
    for (size_t r = 0; r < predict; ++r) {
      for (size_t c = 0; c < cols; ++c) {
        float v = x[r * cols + c];
        csv += (c ? "," : "") + (std::isnan(v) ? std::string() : Number(v));
      }
      csv += "\\n";
    }
    std::string preds;
    for (float p : expected) preds += (preds.empty() ? "" : ", ") + Number(p);
    std::cout << "{\"model\": \"" << file.string() << "\", \"objective\": \"" << objective
              << "\", \"cols\": " << cols << ", \"values_per_row\": " << per_row << ", \"csv\": \""
              << csv << "\", \"predictions\": [" << preds << "]}\n";
  } catch (const std::exception& e) {
    std::cerr << "make-xgboost-model: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
