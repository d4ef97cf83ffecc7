// Expected strings were produced by CPython 3 (str/repr/json.dumps of float32 values widened to
// double, as the SageMaker XGBoost container writes numpy predictions).
#include "inferd-xgboost/encode.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace inferd::xgboost_server {
namespace {

Predictions Scores(std::vector<float> v) {
  Predictions p;
  p.rows = v.size();
  p.values = std::move(v);
  return p;
}

Predictions Softprob() {
  Predictions p;
  p.rows = 2;
  p.cols = 3;
  p.per_row_vector = true;
  p.values = {0.1f, 0.2f, 0.7f, 0.3f, 0.3f, 0.4f};
  return p;
}

TEST(PythonFloatReprTest, MatchesCPython) {
  EXPECT_EQ(PythonFloatRepr(0.8824367523193359), "0.8824367523193359");
  EXPECT_EQ(PythonFloatRepr(static_cast<float>(1e-7)), "1.0000000116860974e-07");
  EXPECT_EQ(PythonFloatRepr(123456.5), "123456.5");
  EXPECT_EQ(PythonFloatRepr(3.0), "3.0");
  EXPECT_EQ(PythonFloatRepr(static_cast<float>(-2.5e20)), "-2.5000000501021934e+20");
  EXPECT_EQ(PythonFloatRepr(static_cast<float>(0.1)), "0.10000000149011612");
  EXPECT_EQ(PythonFloatRepr(0.0), "0.0");
  EXPECT_EQ(PythonFloatRepr(-0.0), "-0.0");
  EXPECT_EQ(PythonFloatRepr(1e16), "1e+16");
  EXPECT_EQ(PythonFloatRepr(1234567890123456.0), "1234567890123456.0");
  EXPECT_EQ(PythonFloatRepr(5e-324), "5e-324");
  EXPECT_EQ(PythonFloatRepr(1.7976931348623157e308), "1.7976931348623157e+308");
  EXPECT_EQ(PythonFloatRepr(0.0001), "0.0001");
  EXPECT_EQ(PythonFloatRepr(0.00001234), "1.234e-05");
  EXPECT_EQ(PythonFloatRepr(100.0), "100.0");
  EXPECT_EQ(PythonFloatRepr(std::nan("")), "nan");
  EXPECT_EQ(PythonFloatRepr(-std::numeric_limits<double>::infinity()), "-inf");
}

TEST(EncodeTest, CsvJoinsScoresOnOneLine) {
  EXPECT_EQ(EncodeCsv(Scores({0.8824367523193359f, 3.0f, static_cast<float>(1.0 / 3)}), false),
            "0.8824367523193359,3.0,0.3333333432674408");
}

TEST(EncodeTest, CsvBatchWritesOneScorePerLine) {
  EXPECT_EQ(EncodeCsv(Scores({0.5f, 3.0f}), true), "0.5\n3.0\n");
}

TEST(EncodeTest, CsvSoftprobRowsArePythonLists) {
  EXPECT_EQ(EncodeCsv(Softprob(), false),
            "[0.10000000149011612, 0.20000000298023224, 0.699999988079071],"
            "[0.30000001192092896, 0.30000001192092896, 0.4000000059604645]");
  EXPECT_EQ(EncodeCsv(Softprob(), true),
            "[0.10000000149011612, 0.20000000298023224, 0.699999988079071]\n"
            "[0.30000001192092896, 0.30000001192092896, 0.4000000059604645]\n");
}

TEST(EncodeTest, JsonUsesSageMakersScoreFormat) {
  EXPECT_EQ(EncodeJson(Scores({0.8824367523193359f, 123456.5f})),
            R"({"predictions": [{"score": 0.8824367523193359}, {"score": 123456.5}]})");
  EXPECT_EQ(EncodeJson(Scores({})), R"({"predictions": []})");
  EXPECT_EQ(EncodeJson(Scores({std::nanf("")})), R"({"predictions": [{"score": NaN}]})");
}

TEST(EncodeTest, JsonSoftprobScoresAreLists) {
  EXPECT_EQ(EncodeJson(Softprob()),
            R"({"predictions": [{"score": [0.10000000149011612, 0.20000000298023224, )"
            R"(0.699999988079071]}, {"score": [0.30000001192092896, 0.30000001192092896, )"
            R"(0.4000000059604645]}]})");
}

TEST(EncodeTest, JsonLinesWritesOneObjectPerLine) {
  EXPECT_EQ(EncodeJsonLines(Scores({0.5f, 3.0f})), "{\"score\": 0.5}\n{\"score\": 3.0}\n");
  EXPECT_EQ(EncodeJsonLines(Softprob()),
            "{\"score\": [0.10000000149011612, 0.20000000298023224, 0.699999988079071]}\n"
            "{\"score\": [0.30000001192092896, 0.30000001192092896, 0.4000000059604645]}\n");
}

TEST(EncodeTest, EncodeDispatchesOnTheOutputType) {
  Predictions p = Scores({0.5f});
  EXPECT_EQ(Encode(*OutputTypeFor("text/csv"), p, false), "0.5");
  EXPECT_EQ(Encode(*OutputTypeFor("application/json"), p, false),
            R"({"predictions": [{"score": 0.5}]})");
  EXPECT_EQ(Encode(*OutputTypeFor("application/jsonlines"), p, false), "{\"score\": 0.5}\n");
}

}  // namespace
}  // namespace inferd::xgboost_server
