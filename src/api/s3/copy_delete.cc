// CopyObject (server-side copy, streamed from the source's reader into a new put) and
// DeleteObjects (the batch delete).
#include "api/protocol.h"
#include "api/s3/checksums.h"
#include "api/s3/s3_internal.h"
#include "api/s3/xml.h"

namespace inferd::api::s3::internal {

void CopyObject(const Context& ctx, Call& call) {
  const http::Headers& h = call.request().headers;
  auto source = ParseCopySource(h.Get("x-amz-copy-source").value_or(""));
  if (!source.ok()) return call.Fail(source.error());
  std::string directive(h.Get("x-amz-metadata-directive").value_or("COPY"));
  if (directive != "COPY" && directive != "REPLACE") {
    return call.Fail(Error(Errc::kValidation,
                           "Unknown metadata directive \"" + directive + "\": use COPY or REPLACE.",
                           "InvalidArgument"));
  }
  if (source->bucket == call.bucket() && source->key == call.key() && directive == "COPY") {
    return call.Fail(Error(Errc::kValidation,
                           "This copy request is illegal because it is trying to copy an object "
                           "to itself without changing the object's metadata, storage class, "
                           "website redirect location or encryption attributes.",
                           "InvalidRequest"));
  }
  store::ObjectAttributes replaced;
  if (directive == "REPLACE") {
    auto attrs = AttributesFromHeaders(h);
    if (!attrs.ok()) return call.Fail(attrs.error());
    replaced = std::move(*attrs);
  }
  // The destination bucket first: S3 names a missing destination before reading the source.
  if (auto dest = ctx.store.HeadBucket(call.bucket()); !dest.ok()) return call.Fail(dest.error());
  auto reader = OpenCopySource(ctx, call, std::nullopt);
  if (!reader.ok()) return call.Fail(reader.error());
  const store::ObjectInfo& src = (*reader)->info();
  if (src.size > ctx.options.max_object_bytes) {
    return call.Fail(Error(Errc::kValidation,
                           "The specified copy source is larger than the maximum allowable size "
                           "for a copy source: " +
                               std::to_string(ctx.options.max_object_bytes) +
                               ". Copy it with UploadPartCopy.",
                           "InvalidRequest"));
  }
  store::ObjectAttributes attrs = src.attributes;
  if (directive == "REPLACE") {
    // New metadata; the checksums still describe the (same) bytes.
    for (const http::Header& stored : src.attributes.headers) {
      if (ChecksumFromHeader(stored.name)) replaced.headers.push_back(stored);
    }
    attrs = std::move(replaced);
  }
  auto info = ctx.store.Put(call.bucket(), call.key(), attrs, **reader);
  if (!info.ok()) return call.Fail(info.error());

  XmlWriter xml("CopyObjectResult");
  xml.Leaf("LastModified", FormatIsoDate(info->last_modified)).Leaf("ETag", QuotedEtag(info->etag));
  for (const http::Header& stored : attrs.headers) {
    if (auto algorithm = ChecksumFromHeader(stored.name)) {
      xml.Leaf("ChecksumType", "FULL_OBJECT");
      xml.Leaf("Checksum" + std::string(ChecksumName(*algorithm)), stored.value);
    }
  }
  http::Response r = XmlResponse(xml.Finish());
  r.headers.Add("x-amz-copy-source-version-id", "null");
  call.Reply(std::move(r));
}

void DeleteObjects(const Context& ctx, Call& call) {
  auto body = VerifyBufferedBody(call.request(), ctx.options.max_object_bytes);
  if (!body.ok()) return call.Fail(body.error());
  auto input = ParseDeleteObjects(*body);
  if (!input.ok()) return call.Fail(input.error());
  if (auto bucket = ctx.store.HeadBucket(call.bucket()); !bucket.ok()) {
    return call.Fail(bucket.error());
  }
  XmlWriter xml("DeleteResult");
  for (const std::string& key : input->keys) {
    Status st = ctx.store.Delete(call.bucket(), key);
    if (st.ok()) {
      if (!input->quiet) xml.Open("Deleted").Leaf("Key", key).Close("Deleted");
      continue;
    }
    AwsError aws = LookupError(Protocol::kS3, st.error());
    xml.Open("Error")
        .Leaf("Key", key)
        .Leaf("Code", aws.code)
        .Leaf("Message", st.error().message)
        .Close("Error");
  }
  call.Reply(XmlResponse(xml.Finish()));
}

}  // namespace inferd::api::s3::internal
