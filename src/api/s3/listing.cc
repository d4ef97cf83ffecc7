// ListObjectsV2 and ListObjects (v1): the store lists one page; this file maps S3's parameters
// (prefix, delimiter, max-keys, continuation-token / start-after / marker, encoding-type,
// fetch-owner) onto it and renders ListBucketResult.
#include "api/s3/checksums.h"
#include "api/s3/s3_internal.h"
#include "api/s3/xml.h"
#include "common/base64.h"

namespace inferd::api::s3::internal {
namespace {

struct ListRequest {
  store::ListOptions options;
  bool url_encoding = false;
  bool with_owner = false;
};

// Parameters common to both versions. `start_after` is filled by the caller.
Result<ListRequest> ParseCommon(const Call& call) {
  ListRequest req;
  if (auto enc = call.Param("encoding-type")) {
    if (*enc != "url") {
      return Error(Errc::kValidation, "Invalid Encoding Method specified in Request",
                   "InvalidArgument");
    }
    req.url_encoding = true;
  }
  auto max = IntParam(call, "max-keys", 1000, 0, store::FilesystemStore::kMaxListKeys);
  if (!max.ok()) return std::move(max).error();
  req.options.max_keys = static_cast<int>(*max);
  req.options.prefix = std::string(call.Param("prefix").value_or(""));
  req.options.delimiter = std::string(call.Param("delimiter").value_or(""));
  return req;
}

// Key-like values are URL-encoded in the answer when the client asked for encoding-type=url.
std::string Encoded(const ListRequest& req, std::string_view value) {
  return req.url_encoding ? UrlEncodeKey(value) : std::string(value);
}

void WriteEntries(const Context& ctx, const ListRequest& req, const store::ListResult& result,
                  XmlWriter& xml) {
  for (const store::ObjectInfo& o : result.objects) {
    xml.Open("Contents")
        .Leaf("Key", Encoded(req, o.key))
        .Leaf("LastModified", FormatIsoDate(o.last_modified))
        .Leaf("ETag", QuotedEtag(o.etag));
    for (const http::Header& h : o.attributes.headers) {
      if (auto algorithm = ChecksumFromHeader(h.name)) {
        xml.Leaf("ChecksumAlgorithm", ChecksumName(*algorithm));
        xml.Leaf("ChecksumType", "FULL_OBJECT");
      }
    }
    xml.Leaf("Size", o.size);
    if (req.with_owner) {
      xml.Open("Owner")
          .Leaf("ID", ctx.options.owner_id)
          .Leaf("DisplayName", ctx.options.owner_display_name)
          .Close("Owner");
    }
    xml.Leaf("StorageClass", "STANDARD").Close("Contents");
  }
  for (const std::string& p : result.common_prefixes) {
    xml.Open("CommonPrefixes").Leaf("Prefix", Encoded(req, p)).Close("CommonPrefixes");
  }
}

// Elements both versions start with.
void WriteHeader(const Call& call, const ListRequest& req, XmlWriter& xml) {
  xml.Leaf("Name", call.bucket()).Leaf("Prefix", Encoded(req, req.options.prefix));
  if (!req.options.delimiter.empty()) {
    xml.Leaf("Delimiter", Encoded(req, req.options.delimiter));
  }
  xml.Leaf("MaxKeys", static_cast<uint64_t>(req.options.max_keys));
  if (req.url_encoding) xml.Leaf("EncodingType", "url");
}

}  // namespace

void ListObjectsV2(const Context& ctx, Call& call) {
  auto req = ParseCommon(call);
  if (!req.ok()) return call.Fail(req.error());
  req->with_owner = call.Param("fetch-owner") == "true";
  std::string start_after(call.Param("start-after").value_or(""));
  auto token = call.Param("continuation-token");
  if (token) {
    auto decoded = Base64Decode(*token);
    if (!decoded || decoded->empty()) {
      return call.Fail(Error(Errc::kValidation, "The continuation token provided is incorrect",
                             "InvalidArgument"));
    }
    req->options.start_after = std::move(*decoded);
  } else {
    req->options.start_after = start_after;
  }
  auto result = ctx.store.List(call.bucket(), req->options);
  if (!result.ok()) return call.Fail(result.error());

  XmlWriter xml("ListBucketResult");
  WriteHeader(call, *req, xml);
  xml.Leaf("KeyCount",
           static_cast<uint64_t>(result->objects.size() + result->common_prefixes.size()));
  xml.Leaf("IsTruncated", result->truncated);
  if (token) xml.Leaf("ContinuationToken", *token);
  if (result->truncated) {
    xml.Leaf("NextContinuationToken", Base64Encode(result->next_start_after));
  }
  if (!start_after.empty()) xml.Leaf("StartAfter", Encoded(*req, start_after));
  WriteEntries(ctx, *req, *result, xml);
  call.Reply(XmlResponse(xml.Finish()));
}

void ListObjectsV1(const Context& ctx, Call& call) {
  auto req = ParseCommon(call);
  if (!req.ok()) return call.Fail(req.error());
  req->with_owner = true;
  std::string marker(call.Param("marker").value_or(""));
  req->options.start_after = marker;
  auto result = ctx.store.List(call.bucket(), req->options);
  if (!result.ok()) return call.Fail(result.error());

  XmlWriter xml("ListBucketResult");
  WriteHeader(call, *req, xml);
  xml.Leaf("Marker", Encoded(*req, marker));
  xml.Leaf("IsTruncated", result->truncated);
  if (result->truncated) xml.Leaf("NextMarker", Encoded(*req, result->next_start_after));
  WriteEntries(ctx, *req, *result, xml);
  call.Reply(XmlResponse(xml.Finish()));
}

}  // namespace inferd::api::s3::internal
