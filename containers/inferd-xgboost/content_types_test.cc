#include "inferd-xgboost/content_types.h"

#include <gtest/gtest.h>

namespace inferd::xgboost_server {
namespace {

InputType Resolve(std::optional<std::string_view> header) {
  auto r = ResolveContentType(header);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  EXPECT_TRUE(r.ok() && r->has_value());
  return r.ok() && r->has_value() ? **r : InputType{};
}

TEST(ContentTypeTest, ParsesTypeAndParametersCaseInsensitively) {
  MediaType m = ParseMediaType(" Text/CSV ; Label_Size=1; charset=\"UTF-8\"");
  EXPECT_EQ(m.type, "text/csv");
  EXPECT_EQ(m.Param("label_size"), "1");
  EXPECT_EQ(m.Param("charset"), "UTF-8");
  EXPECT_FALSE(m.Param("missing"));
}

TEST(ContentTypeTest, ResolvesTheSupportedInputTypes) {
  EXPECT_EQ(Resolve("text/csv").format, InputFormat::kCsv);
  EXPECT_EQ(Resolve("TEXT/CSV; charset=utf-8").format, InputFormat::kCsv);
  EXPECT_EQ(Resolve("text/libsvm").format, InputFormat::kLibsvm);
  EXPECT_EQ(Resolve("text/x-libsvm").format, InputFormat::kLibsvm);
  EXPECT_EQ(Resolve("application/json").format, InputFormat::kJson);
  EXPECT_EQ(Resolve("application/jsonlines").format, InputFormat::kJsonLines);
}

TEST(ContentTypeTest, MissingContentTypeMeansLibsvm) {
  EXPECT_EQ(Resolve(std::nullopt).format, InputFormat::kLibsvm);
  EXPECT_EQ(Resolve("  ").format, InputFormat::kLibsvm);
}

TEST(ContentTypeTest, LabelSizeOneDropsTheFirstColumn) {
  EXPECT_FALSE(Resolve("text/csv").drop_first_column);
  EXPECT_TRUE(Resolve("text/csv; label_size=1").drop_first_column);
  EXPECT_TRUE(Resolve("text/csv;LABEL_SIZE=1").drop_first_column);
}

TEST(ContentTypeTest, OtherLabelSizesAreRejected) {
  auto r = ResolveContentType("text/csv; label_size=2");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kValidation);
  EXPECT_NE(r.error().message.find("label_size must be equal to 1"), std::string::npos);
}

TEST(ContentTypeTest, UnsupportedTypesResolveToNothing) {
  for (const char* t : {"application/octet-stream", "image/png", "application/x-recordio-protobuf",
                        "application/x-parquet"}) {
    auto r = ResolveContentType(t);
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE(r->has_value()) << t;
  }
  EXPECT_EQ(UnsupportedContentTypeMessage("image/png").rfind("Content-type image/png not", 0), 0u);
}

TEST(AcceptTest, DefaultsApplyToMissingAndWildcardAccept) {
  OutputType def = *OutputTypeFor("application/json");
  EXPECT_EQ(NegotiateAccept(std::nullopt, def)->format, OutputFormat::kJson);
  EXPECT_EQ(NegotiateAccept("*/*", def)->format, OutputFormat::kJson);
  EXPECT_EQ(NegotiateAccept("", def)->format, OutputFormat::kJson);
}

TEST(AcceptTest, PicksTheFirstSupportedEntry) {
  OutputType def = *OutputTypeFor("text/csv");
  EXPECT_EQ(NegotiateAccept("application/jsonlines", def)->content_type, "application/jsonlines");
  EXPECT_EQ(NegotiateAccept("Application/JSON; verbose=True", def)->content_type,
            "application/json");
  EXPECT_EQ(NegotiateAccept("text/html, application/json;q=0.9", def)->content_type,
            "application/json");
  EXPECT_EQ(NegotiateAccept("text/html, */*", def)->content_type, "text/csv");
}

TEST(AcceptTest, UnsupportedAcceptIsRefused) {
  OutputType def = *OutputTypeFor("text/csv");
  EXPECT_FALSE(NegotiateAccept("text/libsvm", def));
  EXPECT_FALSE(NegotiateAccept("application/x-recordio-protobuf", def));
  EXPECT_EQ(UnsupportedAcceptMessage("text/html"),
            "Accept type text/html is not supported. Please use supported accept types: "
            "['application/json', 'application/jsonlines', 'text/csv'].");
}

}  // namespace
}  // namespace inferd::xgboost_server
