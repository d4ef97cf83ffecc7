#include "api/s3/xml.h"

#include <gtest/gtest.h>

namespace inferd::api::s3 {
namespace {

TEST(XmlWriter, ShapeAndEscaping) {
  XmlWriter xml("ListBucketResult");
  xml.Leaf("Name", "b").Open("Contents").Leaf("Key", "a<&>\"'").Leaf("Size", uint64_t{5});
  xml.Close("Contents").Leaf("IsTruncated", false);
  EXPECT_EQ(xml.Finish(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>b</Name>"
            "<Contents><Key>a&lt;&amp;&gt;&quot;&apos;</Key><Size>5</Size></Contents>"
            "<IsTruncated>false</IsTruncated></ListBucketResult>");
}

TEST(ParseDeleteObjects, AsBotocoreSendsIt) {
  auto in = ParseDeleteObjects(
      "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Object><Key>a</Key></Object>"
      "<Object><Key>dir/b &amp; c</Key><VersionId>null</VersionId></Object>"
      "<Object><Key> </Key></Object><Quiet>true</Quiet></Delete>");
  ASSERT_TRUE(in.ok()) << in.error().message;
  ASSERT_EQ(in->keys.size(), 3u);
  EXPECT_EQ(in->keys[0], "a");
  EXPECT_EQ(in->keys[1], "dir/b & c");
  EXPECT_EQ(in->keys[2], " ");  // whitespace-only keys survive
  EXPECT_TRUE(in->quiet);
}

TEST(ParseDeleteObjects, Errors) {
  for (const char* body :
       {"", "<Delete>", "<Other/>", "<Delete></Delete>", "<Delete><Object/></Delete>",
        "<Delete><Object><Key></Key></Object></Delete>",
        "<Delete><Object><Key>a</Key></Object><Quiet>maybe</Quiet></Delete>"}) {
    auto in = ParseDeleteObjects(body);
    ASSERT_FALSE(in.ok()) << body;
    EXPECT_EQ(in.error().code, Errc::kSerialization);
    EXPECT_EQ(in.error().aws_code, "MalformedXML");
  }
  std::string many = "<Delete>";
  for (int i = 0; i < 1001; ++i) many += "<Object><Key>k" + std::to_string(i) + "</Key></Object>";
  EXPECT_FALSE(ParseDeleteObjects(many + "</Delete>").ok());
}

TEST(ParseCompleteMultipartUpload, Parts) {
  auto parts = ParseCompleteMultipartUpload(
      "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
      "<Part><ETag>\"aa\"</ETag><PartNumber>1</PartNumber><ChecksumCRC32>x</ChecksumCRC32></Part>"
      "<Part><PartNumber> 2 </PartNumber><ETag>bb</ETag></Part></CompleteMultipartUpload>");
  ASSERT_TRUE(parts.ok()) << parts.error().message;
  ASSERT_EQ(parts->size(), 2u);
  EXPECT_EQ((*parts)[0].part_number, 1);
  EXPECT_EQ((*parts)[0].etag, "\"aa\"");
  EXPECT_EQ((*parts)[1].part_number, 2);
  EXPECT_EQ((*parts)[1].etag, "bb");
}

TEST(ParseCompleteMultipartUpload, Errors) {
  for (const char* body :
       {"not xml", "<CompleteMultipartUpload/>",
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part>"
        "</CompleteMultipartUpload>",
        "<CompleteMultipartUpload><Part><PartNumber>x</PartNumber><ETag>a</ETag></Part>"
        "</CompleteMultipartUpload>",
        "<Complete><Part><PartNumber>1</PartNumber><ETag>a</ETag></Part></Complete>"}) {
    auto parts = ParseCompleteMultipartUpload(body);
    ASSERT_FALSE(parts.ok()) << body;
    EXPECT_EQ(parts.error().aws_code, "MalformedXML");
  }
}

TEST(ParseCreateBucketConfiguration, Forms) {
  EXPECT_EQ(*ParseCreateBucketConfiguration(""), "");
  EXPECT_EQ(*ParseCreateBucketConfiguration(
                "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                "<LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>"),
            "eu-west-1");
  EXPECT_FALSE(ParseCreateBucketConfiguration("<Nope/>").ok());
}

}  // namespace
}  // namespace inferd::api::s3
