#include "inferd-xgboost/payload.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

namespace inferd::xgboost_server {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

MATCHER(IsNan, "") { return std::isnan(arg); }

Matrix Ok(Result<Matrix> r) {
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? std::move(r).value() : Matrix{};
}

std::string Failure(Result<Matrix> r) {
  EXPECT_FALSE(r.ok());
  if (r.ok()) return "";
  EXPECT_EQ(r.error().code, Errc::kSerialization);
  return r.error().message;
}

TEST(PythonFloatTest, ReadsWhatPythonFloatReads) {
  EXPECT_EQ(*ParsePythonFloat("1.5"), 1.5);
  EXPECT_EQ(*ParsePythonFloat("  -2e3 "), -2000);
  EXPECT_EQ(*ParsePythonFloat("+.5"), 0.5);
  EXPECT_EQ(*ParsePythonFloat("7."), 7);
  EXPECT_EQ(*ParsePythonFloat("42\r"), 42);
  EXPECT_TRUE(std::isnan(*ParsePythonFloat("NaN")));
  EXPECT_EQ(*ParsePythonFloat("-Infinity"), -INFINITY);
  EXPECT_EQ(*ParsePythonFloat("inf"), INFINITY);
  EXPECT_EQ(*ParsePythonFloat("1e999"), INFINITY);
  for (const char* bad : {"", "abc", "1,5", "0x10", "1e", "--1", "2019-1-1", "12:12:12"}) {
    EXPECT_FALSE(ParsePythonFloat(bad).ok()) << bad;
  }
}

TEST(CsvTest, SniffsTheDelimiterFromTheFirstLine) {
  EXPECT_EQ(SniffCsvDelimiter("1,2,3"), ',');
  EXPECT_EQ(SniffCsvDelimiter("1;2;3"), ';');
  EXPECT_EQ(SniffCsvDelimiter("1\t2\t3"), '\t');
  EXPECT_EQ(SniffCsvDelimiter("1|2|3"), '|');
  EXPECT_EQ(SniffCsvDelimiter("1 2 3"), ' ');
  EXPECT_EQ(SniffCsvDelimiter("1.5"), ',');
  EXPECT_EQ(SniffCsvDelimiter("1, 2, 3"), ',');
}

TEST(CsvTest, ReadsRowsWithMissingValues) {
  Matrix m = Ok(ParseCsv("1,2,3\n4,,6\n", false));
  EXPECT_FALSE(m.sparse);
  EXPECT_EQ(m.rows, 2u);
  EXPECT_EQ(m.cols, 3u);
  EXPECT_THAT(m.dense, ElementsAre(1, 2, 3, 4, IsNan(), 6));
}

TEST(CsvTest, OtherDelimitersCrLfAndBlankLines) {
  Matrix m = Ok(ParseCsv("\n1;2\r\n\r\n;4\r\n\n", false));
  EXPECT_EQ(m.rows, 2u);
  EXPECT_THAT(m.dense, ElementsAre(1, 2, IsNan(), 4));
  Matrix t = Ok(ParseCsv("1\t2\n3\t4", false));
  EXPECT_THAT(t.dense, ElementsAre(1, 2, 3, 4));
}

TEST(CsvTest, SingleColumn) {
  Matrix m = Ok(ParseCsv("0.5\n0.7", false));
  EXPECT_EQ(m.cols, 1u);
  EXPECT_THAT(m.dense, ElementsAre(0.5f, 0.7f));
}

TEST(CsvTest, LabelSizeOneDropsTheFirstColumn) {
  Matrix m = Ok(ParseCsv("1,0.5,0.6\n0,0.7,0.8", true));
  EXPECT_EQ(m.cols, 2u);
  EXPECT_THAT(m.dense, ElementsAre(0.5f, 0.6f, 0.7f, 0.8f));
}

TEST(CsvTest, ValuesAreRoundedToFloat32LikeNumpy) {
  Matrix m = Ok(ParseCsv("0.1,16777217", false));
  EXPECT_EQ(m.dense[0], static_cast<float>(0.1));
  EXPECT_EQ(m.dense[1], 16777216.0f);
}

TEST(CsvTest, ErrorsSayWhere) {
  EXPECT_THAT(Failure(ParseCsv("1,2,3\n1,2,c", false)),
              HasSubstr("line 2, field 3: could not convert string to float: 'c'"));
  EXPECT_THAT(Failure(ParseCsv("1,2,3\n1,2", false)),
              HasSubstr("row 2 has 2 features but row 1 has 3"));
  EXPECT_THAT(Failure(ParseCsv(" \n ", false)), HasSubstr("please ensure data is in csv format"));
}

TEST(LibsvmTest, OneBasedIndicesAreShiftedWhenNoIndexIsZero) {
  Matrix m = Ok(ParseLibsvm("1 1:0.5 3:2\n0 2:1.5", LibsvmIndexing::kAuto));
  EXPECT_TRUE(m.sparse);
  EXPECT_EQ(m.rows, 2u);
  EXPECT_EQ(m.cols, 3u);
  EXPECT_THAT(m.indptr, ElementsAre(0, 2, 3));
  EXPECT_THAT(m.indices, ElementsAre(0, 2, 1));
  EXPECT_THAT(m.values, ElementsAre(0.5f, 2.0f, 1.5f));
}

TEST(LibsvmTest, IndicesAreKeptWhenIndexZeroAppears) {
  Matrix m = Ok(ParseLibsvm("0:1 5:2", LibsvmIndexing::kAuto));
  EXPECT_EQ(m.cols, 6u);
  EXPECT_THAT(m.indices, ElementsAre(0, 5));
}

TEST(LibsvmTest, ExplicitIndexing) {
  EXPECT_THAT(Ok(ParseLibsvm("1:1 5:2", LibsvmIndexing::kZeroBased)).indices, ElementsAre(1, 5));
  EXPECT_THAT(Ok(ParseLibsvm("1:1 5:2", LibsvmIndexing::kOneBased)).indices, ElementsAre(0, 4));
  EXPECT_THAT(Failure(ParseLibsvm("0:1", LibsvmIndexing::kOneBased)), HasSubstr("index 0"));
}

TEST(LibsvmTest, LabelsAreIgnoredAndLabelOnlyLinesAreEmptyRows) {
  Matrix m = Ok(ParseLibsvm("1\n0 1:2 1:3\n", LibsvmIndexing::kAuto));
  EXPECT_EQ(m.rows, 2u);
  EXPECT_THAT(m.indptr, ElementsAre(0, 0, 1));
  EXPECT_THAT(m.values, ElementsAre(3.0f));  // a repeated index keeps its last value
}

TEST(LibsvmTest, EntriesAreSortedWithinARow) {
  Matrix m = Ok(ParseLibsvm("3:3 1:1\t2:2", LibsvmIndexing::kZeroBased));
  EXPECT_THAT(m.indices, ElementsAre(1, 2, 3));
}

TEST(LibsvmTest, Errors) {
  EXPECT_THAT(Failure(ParseLibsvm("1 a:2", LibsvmIndexing::kAuto)),
              HasSubstr("does not start with a feature index"));
  EXPECT_THAT(Failure(ParseLibsvm("1 -1:2", LibsvmIndexing::kAuto)),
              HasSubstr("does not start with a feature index"));
  EXPECT_THAT(Failure(ParseLibsvm("1 1:x\n", LibsvmIndexing::kAuto)),
              HasSubstr("line 1: could not convert string to float: 'x'"));
}

TEST(JsonTest, InstancesWithFeatures) {
  Matrix m = Ok(ParseJson(
      R"({"instances": [{"features": [1.5, 2, null]}, {"data": {"features": [3, 4, 5]}}]})"));
  EXPECT_FALSE(m.sparse);
  EXPECT_EQ(m.rows, 2u);
  EXPECT_EQ(m.cols, 3u);
  EXPECT_THAT(m.dense, ElementsAre(1.5f, 2, IsNan(), 3, 4, 5));
}

TEST(JsonTest, SingleInstanceAndBareArrays) {
  EXPECT_THAT(Ok(ParseJson(R"({"features": [1, 2]})")).dense, ElementsAre(1, 2));
  EXPECT_THAT(Ok(ParseJson(R"([1, 2])")).dense, ElementsAre(1, 2));
  Matrix rows = Ok(ParseJson(R"([[1, 2], [3, 4]])"));
  EXPECT_EQ(rows.rows, 2u);
  EXPECT_THAT(rows.dense, ElementsAre(1, 2, 3, 4));
  EXPECT_THAT(Ok(ParseJson(R"({"instances": [[1, 2]]})")).dense, ElementsAre(1, 2));
  EXPECT_THAT(Ok(ParseJson(R"({"features": {"values": [1, 2]}})")).dense, ElementsAre(1, 2));
  EXPECT_EQ(Ok(ParseJson(R"({"instances": []})")).rows, 0u);
}

TEST(JsonTest, SparseInstancesUseKeys) {
  Matrix m = Ok(ParseJson(
      R"({"instances": [{"data": {"features": {"keys": [3, 0], "values": [7, 1], "shape": [5]}}},)"
      R"( {"features": [null, 2]}]})"));
  EXPECT_TRUE(m.sparse);
  EXPECT_EQ(m.rows, 2u);
  EXPECT_EQ(m.cols, 5u);
  EXPECT_THAT(m.indptr, ElementsAre(0, 2, 3));
  EXPECT_THAT(m.indices, ElementsAre(0, 3, 1));
  EXPECT_THAT(m.values, ElementsAre(1, 7, 2));
}

TEST(JsonTest, ErrorsSayWhere) {
  EXPECT_THAT(Failure(ParseJson("{")), HasSubstr("not valid JSON"));
  EXPECT_THAT(Failure(ParseJson(R"({"instances": [{"features": [1, "a"]}]})")),
              HasSubstr("instances[0].features[1] is not a number"));
  EXPECT_THAT(Failure(ParseJson(R"({"instances": [{"x": 1}]})")),
              HasSubstr("instances[0] has no \"features\""));
  EXPECT_THAT(Failure(ParseJson(R"({"instances": [[1, 2], [1]]})")),
              HasSubstr("row 2 has 1 features but row 1 has 2"));
  EXPECT_THAT(Failure(ParseJson(R"({"features": {"keys": [1], "values": [1, 2]}})")),
              HasSubstr("features.keys must be an array as long as features.values"));
  EXPECT_THAT(Failure(ParseJson(R"({"instances": 3})")), HasSubstr("must be an array"));
  EXPECT_THAT(Failure(ParseJson(R"("text")")), HasSubstr("expected an object or an array"));
}

TEST(JsonLinesTest, OneInstancePerLine) {
  Matrix m = Ok(ParseJsonLines("{\"features\": [1, 2]}\n\n[3, 4]\r\n{\"features\": [5, 6]}\n"));
  EXPECT_EQ(m.rows, 3u);
  EXPECT_THAT(m.dense, ElementsAre(1, 2, 3, 4, 5, 6));
}

TEST(JsonLinesTest, ErrorsNameTheLine) {
  EXPECT_THAT(Failure(ParseJsonLines("[1, 2]\n{oops}\n")), HasSubstr("line 2: not valid JSON"));
  EXPECT_THAT(Failure(ParseJsonLines("[1, 2]\n{\"x\": 1}\n")),
              HasSubstr("line 2: the document has no \"features\""));
  EXPECT_THAT(Failure(ParseJsonLines("\n \n")), HasSubstr("no lines"));
}

TEST(PayloadTest, DispatchesOnTheInputType) {
  InputType csv{InputFormat::kCsv, true, "csv"};
  EXPECT_THAT(Ok(ParsePayload(csv, "9,1,2", LibsvmIndexing::kAuto)).dense, ElementsAre(1, 2));
  InputType libsvm{InputFormat::kLibsvm, false, "libsvm"};
  EXPECT_TRUE(Ok(ParsePayload(libsvm, "1:1", LibsvmIndexing::kAuto)).sparse);
}

}  // namespace
}  // namespace inferd::xgboost_server
