// S3's XML bodies: a small writer for responses (strings + XmlEscape, S3's namespace on the root)
// and pugixml parsers for the request documents (CompleteMultipartUpload, Delete,
// CreateBucketConfiguration). Parse errors are kSerialization "MalformedXML" (400).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "store/filesystem_store.h"

namespace inferd::api::s3 {

inline constexpr std::string_view kS3Namespace = "http://s3.amazonaws.com/doc/2006-03-01/";

class XmlWriter {
 public:
  // Starts the document: declaration and <root xmlns="…S3…">.
  explicit XmlWriter(std::string_view root);
  XmlWriter& Open(std::string_view name);
  XmlWriter& Close(std::string_view name);
  // <name>escaped text</name>
  XmlWriter& Leaf(std::string_view name, std::string_view text);
  XmlWriter& Leaf(std::string_view name, uint64_t value);
  XmlWriter& Leaf(std::string_view name, bool value);
  XmlWriter& Leaf(std::string_view name, const char* text) {
    return Leaf(name, std::string_view(text));
  }
  // Closes the root and returns the document.
  std::string Finish();

 private:
  std::string root_;
  std::string out_;
};

// <Delete><Object><Key>…</Key>…</Object>…<Quiet>true</Quiet></Delete>; at most 1000 objects.
struct DeleteObjectsInput {
  std::vector<std::string> keys;
  bool quiet = false;
};
Result<DeleteObjectsInput> ParseDeleteObjects(std::string_view body);

// <CompleteMultipartUpload><Part><PartNumber>n</PartNumber><ETag>"…"</ETag></Part>…
Result<std::vector<store::CompletedPart>> ParseCompleteMultipartUpload(std::string_view body);

// <CreateBucketConfiguration><LocationConstraint>r</LocationConstraint>…; "" for an empty body
// or no constraint.
Result<std::string> ParseCreateBucketConfiguration(std::string_view body);

}  // namespace inferd::api::s3
