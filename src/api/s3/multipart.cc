// Multipart uploads: Create, UploadPart (streamed), UploadPartCopy, Complete, Abort, ListParts,
// ListMultipartUploads.
#include <algorithm>
#include <limits>

#include "api/s3/checksums.h"
#include "api/s3/s3_internal.h"
#include "api/s3/xml.h"

namespace inferd::api::s3::internal {
namespace {

Result<int> PartNumber(const Call& call) {
  constexpr int64_t kBig = std::numeric_limits<int64_t>::max();
  auto n = IntParam(call, "partNumber", 0, -kBig, kBig);
  if (!n.ok() || *n < 1 || *n > store::FilesystemStore::kMaxParts) {
    return Error(Errc::kValidation,
                 "Part number must be an integer between 1 and 10000, inclusive.",
                 "InvalidArgument");
  }
  return static_cast<int>(*n);
}

std::string UploadId(const Call& call) { return std::string(call.Param("uploadId").value_or("")); }

void WriteOwner(const Context& ctx, std::string_view element, XmlWriter& xml) {
  xml.Open(element)
      .Leaf("ID", ctx.options.owner_id)
      .Leaf("DisplayName", ctx.options.owner_display_name)
      .Close(element);
}

// x-amz-copy-source-range: "bytes=first-last", both required.
Result<std::optional<store::RangeSpec>> CopySourceRange(const Call& call) {
  auto header = call.request().headers.Get("x-amz-copy-source-range");
  if (!header) return std::optional<store::RangeSpec>();
  auto range = ParseRange(*header);
  if (!range || !range->first || !range->last) {
    return Error(Errc::kValidation,
                 "The x-amz-copy-source-range value must be of the form bytes=first-last where "
                 "first and last are the zero-based offsets of the first and last bytes to copy",
                 "InvalidArgument");
  }
  return range;
}

}  // namespace

void CreateMultipartUpload(const Context& ctx, Call& call) {
  const http::Headers& h = call.request().headers;
  auto body = VerifyBufferedBody(call.request(), ctx.options.max_object_bytes);
  if (!body.ok()) return call.Fail(body.error());
  auto attrs = AttributesFromHeaders(h);
  if (!attrs.ok()) return call.Fail(attrs.error());
  std::optional<ChecksumAlgorithm> algorithm;
  if (auto name = h.Get("x-amz-checksum-algorithm")) {
    algorithm = ParseChecksumName(*name);
    if (!algorithm) {
      return call.Fail(Error(Errc::kValidation,
                             "Checksum algorithm \"" + std::string(*name) +
                                 "\" is not supported: use CRC32, CRC32C, CRC64NVME, SHA1 or "
                                 "SHA256.",
                             "InvalidRequest"));
    }
  }
  auto id = ctx.store.CreateMultipartUpload(call.bucket(), call.key(), *attrs);
  if (!id.ok()) return call.Fail(id.error());
  XmlWriter xml("InitiateMultipartUploadResult");
  xml.Leaf("Bucket", call.bucket()).Leaf("Key", call.key()).Leaf("UploadId", *id);
  http::Response r = XmlResponse(xml.Finish());
  if (algorithm) r.headers.Add("x-amz-checksum-algorithm", std::string(ChecksumName(*algorithm)));
  call.Reply(std::move(r));
}

void UploadPart(const Context& ctx, Call& call) {
  auto part_number = PartNumber(call);
  if (!part_number.ok()) return call.Fail(part_number.error());
  auto input = OpenUpload(ctx, call);
  if (!input.ok()) return call.Fail(input.error());
  UploadBody& body = *(*input)->body;
  store::PutOptions options;
  options.before_commit = [&body] { return body.Verify(); };
  auto part =
      ctx.store.UploadPart(call.bucket(), call.key(), UploadId(call), *part_number, body, options);
  if (!part.ok()) return call.Fail(part.error());
  http::Response r = EmptyResponse(200);
  r.headers.Add("ETag", QuotedEtag(part->etag));
  if (auto checksum = body.checksum()) r.headers.Add(checksum->name, checksum->value);
  call.Reply(std::move(r));
}

void UploadPartCopy(const Context& ctx, Call& call) {
  auto part_number = PartNumber(call);
  if (!part_number.ok()) return call.Fail(part_number.error());
  auto range = CopySourceRange(call);
  if (!range.ok()) return call.Fail(range.error());
  auto reader = OpenCopySource(ctx, call, *range);
  if (!reader.ok()) {
    if (reader.error().code != Errc::kRangeNotSatisfiable) return call.Fail(reader.error());
    return call.Fail(Error(Errc::kValidation,
                           "The x-amz-copy-source-range is not within the source object.",
                           "InvalidArgument"));
  }
  const store::ObjectInfo& src = (*reader)->info();
  if (*range && *(*range)->last >= src.size) {
    return call.Fail(
        Error(Errc::kValidation,
              "Range specified is not valid for source object of size: " + std::to_string(src.size),
              "InvalidArgument"));
  }
  if ((*reader)->length() > ctx.options.max_object_bytes) {
    return call.Fail(EntityTooLarge(ctx.options.max_object_bytes));
  }
  auto part =
      ctx.store.UploadPart(call.bucket(), call.key(), UploadId(call), *part_number, **reader);
  if (!part.ok()) return call.Fail(part.error());
  XmlWriter xml("CopyPartResult");
  xml.Leaf("LastModified", FormatIsoDate(part->last_modified)).Leaf("ETag", QuotedEtag(part->etag));
  http::Response r = XmlResponse(xml.Finish());
  r.headers.Add("x-amz-copy-source-version-id", "null");
  call.Reply(std::move(r));
}

void CompleteMultipartUpload(const Context& ctx, Call& call) {
  auto body = VerifyBufferedBody(call.request(), ctx.options.max_object_bytes);
  if (!body.ok()) return call.Fail(body.error());
  auto parts = ParseCompleteMultipartUpload(*body);
  if (!parts.ok()) return call.Fail(parts.error());
  auto info = ctx.store.CompleteMultipartUpload(call.bucket(), call.key(), UploadId(call), *parts);
  if (!info.ok()) return call.Fail(info.error());
  std::string host(call.request().headers.Get("host").value_or("localhost"));
  XmlWriter xml("CompleteMultipartUploadResult");
  xml.Leaf("Location",
           "http://" + host + "/" + UrlEncodeKey(call.bucket()) + "/" + UrlEncodeKey(call.key()))
      .Leaf("Bucket", call.bucket())
      .Leaf("Key", call.key())
      .Leaf("ETag", QuotedEtag(info->etag));
  call.Reply(XmlResponse(xml.Finish()));
}

void AbortMultipartUpload(const Context& ctx, Call& call) {
  if (auto st = ctx.store.AbortMultipartUpload(call.bucket(), call.key(), UploadId(call));
      !st.ok()) {
    return call.Fail(st.error());
  }
  call.Reply(EmptyResponse(204));
}

void ListParts(const Context& ctx, Call& call) {
  auto max = IntParam(call, "max-parts", 1000, 0, 1000);
  if (!max.ok()) return call.Fail(max.error());
  auto marker = IntParam(call, "part-number-marker", 0, 0, store::FilesystemStore::kMaxParts);
  if (!marker.ok()) return call.Fail(marker.error());
  auto parts = ctx.store.ListParts(call.bucket(), call.key(), UploadId(call));
  if (!parts.ok()) return call.Fail(parts.error());

  XmlWriter xml("ListPartsResult");
  xml.Leaf("Bucket", call.bucket()).Leaf("Key", call.key()).Leaf("UploadId", UploadId(call));
  xml.Leaf("PartNumberMarker", static_cast<uint64_t>(*marker));
  int64_t count = 0;
  int next_marker = 0;
  bool truncated = false;
  std::vector<const store::PartInfo*> shown;
  for (const store::PartInfo& p : *parts) {
    if (p.part_number <= *marker) continue;
    if (count == *max) {
      truncated = true;
      break;
    }
    shown.push_back(&p);
    next_marker = p.part_number;
    ++count;
  }
  xml.Leaf("NextPartNumberMarker", static_cast<uint64_t>(next_marker));
  xml.Leaf("MaxParts", static_cast<uint64_t>(*max)).Leaf("IsTruncated", truncated);
  for (const store::PartInfo* p : shown) {
    xml.Open("Part")
        .Leaf("PartNumber", static_cast<uint64_t>(p->part_number))
        .Leaf("LastModified", FormatIsoDate(p->last_modified))
        .Leaf("ETag", QuotedEtag(p->etag))
        .Leaf("Size", p->size)
        .Close("Part");
  }
  WriteOwner(ctx, "Initiator", xml);
  WriteOwner(ctx, "Owner", xml);
  xml.Leaf("StorageClass", "STANDARD");
  call.Reply(XmlResponse(xml.Finish()));
}

void ListMultipartUploads(const Context& ctx, Call& call) {
  bool url = false;
  if (auto enc = call.Param("encoding-type")) {
    if (*enc != "url") {
      return call.Fail(Error(Errc::kValidation, "Invalid Encoding Method specified in Request",
                             "InvalidArgument"));
    }
    url = true;
  }
  auto encoded = [url](std::string_view v) { return url ? UrlEncodeKey(v) : std::string(v); };
  auto max = IntParam(call, "max-uploads", 1000, 0, 1000);
  if (!max.ok()) return call.Fail(max.error());
  const std::string prefix(call.Param("prefix").value_or(""));
  const std::string delimiter(call.Param("delimiter").value_or(""));
  const std::string key_marker(call.Param("key-marker").value_or(""));
  const std::string id_marker(call.Param("upload-id-marker").value_or(""));
  auto uploads = ctx.store.ListMultipartUploads(call.bucket());
  if (!uploads.ok()) return call.Fail(uploads.error());

  // Past the markers: keys after key-marker, or (with upload-id-marker) the uploads of that key
  // listed after that upload.
  size_t start = 0;
  if (!key_marker.empty()) {
    auto it = std::find_if(uploads->begin(), uploads->end(),
                           [&](const auto& u) { return u.key > key_marker; });
    start = static_cast<size_t>(it - uploads->begin());
    if (!id_marker.empty()) {
      for (size_t i = 0; i < uploads->size(); ++i) {
        if ((*uploads)[i].key == key_marker && (*uploads)[i].upload_id == id_marker) {
          start = i + 1;
          break;
        }
      }
    }
  }

  XmlWriter xml("ListMultipartUploadsResult");
  xml.Leaf("Bucket", call.bucket())
      .Leaf("KeyMarker", encoded(key_marker))
      .Leaf("UploadIdMarker", id_marker)
      .Leaf("Prefix", encoded(prefix));
  if (!delimiter.empty()) xml.Leaf("Delimiter", encoded(delimiter));
  if (url) xml.Leaf("EncodingType", "url");
  xml.Leaf("MaxUploads", static_cast<uint64_t>(*max));

  std::vector<std::string> prefixes;
  std::vector<const store::MultipartUploadInfo*> shown;
  bool truncated = false;
  std::string next_key, next_id;
  for (size_t i = start; i < uploads->size(); ++i) {
    const store::MultipartUploadInfo& u = (*uploads)[i];
    if (u.key.compare(0, prefix.size(), prefix) != 0) continue;
    std::string common;
    if (!delimiter.empty()) {
      size_t pos = u.key.find(delimiter, prefix.size());
      if (pos != std::string::npos) common = u.key.substr(0, pos + delimiter.size());
    }
    if (!common.empty() && !prefixes.empty() && prefixes.back() == common) {
      next_key = u.key;  // the next page starts after every upload under this prefix
      continue;
    }
    if (static_cast<int64_t>(shown.size() + prefixes.size()) == *max) {
      truncated = true;
      break;
    }
    if (!common.empty()) {
      prefixes.push_back(common);
      next_key = u.key;
      next_id.clear();
    } else {
      shown.push_back(&u);
      next_key = u.key;
      next_id = u.upload_id;
    }
  }
  xml.Leaf("IsTruncated", truncated);
  if (truncated) {
    xml.Leaf("NextKeyMarker", encoded(next_key)).Leaf("NextUploadIdMarker", next_id);
  }
  for (const store::MultipartUploadInfo* u : shown) {
    xml.Open("Upload").Leaf("Key", encoded(u->key)).Leaf("UploadId", u->upload_id);
    WriteOwner(ctx, "Initiator", xml);
    WriteOwner(ctx, "Owner", xml);
    xml.Leaf("StorageClass", "STANDARD")
        .Leaf("Initiated", FormatIsoDate(u->initiated))
        .Close("Upload");
  }
  for (const std::string& p : prefixes) {
    xml.Open("CommonPrefixes").Leaf("Prefix", encoded(p)).Close("CommonPrefixes");
  }
  call.Reply(XmlResponse(xml.Finish()));
}

}  // namespace inferd::api::s3::internal
