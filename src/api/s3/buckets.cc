// Bucket operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation,
// GetBucketVersioning.
#include <algorithm>

#include "api/protocol.h"
#include "api/s3/s3_internal.h"
#include "api/s3/xml.h"
#include "common/base64.h"

namespace inferd::api::s3::internal {
namespace {

std::string RegionOf(const Context& ctx, const Call& call) {
  return call.identity().region.empty() ? ctx.options.default_region : call.identity().region;
}

}  // namespace

void ListBuckets(const Context& ctx, Call& call) {
  auto body = VerifyBufferedBody(call.request(), ctx.options.max_object_bytes);
  if (!body.ok()) return call.Fail(body.error());
  auto max = IntParam(call, "max-buckets", 10000, 1, 10000);
  if (!max.ok()) return call.Fail(max.error());
  std::string prefix(call.Param("prefix").value_or(""));
  std::string after;
  if (auto token = call.Param("continuation-token")) {
    auto decoded = Base64Decode(*token);
    if (!decoded) {
      return call.Fail(Error(Errc::kValidation, "The continuation token provided is incorrect.",
                             "InvalidArgument"));
    }
    after = std::move(*decoded);
  }
  auto buckets = ctx.store.ListBuckets();
  if (!buckets.ok()) return call.Fail(buckets.error());

  XmlWriter xml("ListAllMyBucketsResult");
  xml.Open("Owner")
      .Leaf("ID", ctx.options.owner_id)
      .Leaf("DisplayName", ctx.options.owner_display_name)
      .Close("Owner");
  xml.Open("Buckets");
  int64_t count = 0;
  std::string last;
  bool truncated = false;
  for (const store::BucketInfo& b : *buckets) {
    if (b.name.compare(0, prefix.size(), prefix) != 0 || (!after.empty() && b.name <= after)) {
      continue;
    }
    if (count == *max) {
      truncated = true;
      break;
    }
    xml.Open("Bucket")
        .Leaf("Name", b.name)
        .Leaf("CreationDate", FormatIsoDate(b.creation_time))
        .Leaf("BucketRegion", RegionOf(ctx, call))
        .Close("Bucket");
    last = b.name;
    ++count;
  }
  xml.Close("Buckets");
  if (truncated) xml.Leaf("ContinuationToken", Base64Encode(last));
  if (!prefix.empty()) xml.Leaf("Prefix", prefix);
  call.Reply(XmlResponse(xml.Finish()));
}

void CreateBucket(const Context& ctx, Call& call) {
  auto body = VerifyBufferedBody(call.request(), ctx.options.max_object_bytes);
  if (!body.ok()) return call.Fail(body.error());
  auto location = ParseCreateBucketConfiguration(*body);
  if (!location.ok()) return call.Fail(location.error());
  if (call.bucket() == kReservedBucket) {
    return call.Fail(Error(Errc::kValidation,
                           "The bucket name \"inferd\" is reserved: paths under /inferd/ belong "
                           "to inferd's own API. Choose another bucket name.",
                           "InvalidBucketName"));
  }
  if (auto st = ctx.store.CreateBucket(call.bucket()); !st.ok()) return call.Fail(st.error());
  http::Response r = EmptyResponse(200);
  r.headers.Add("Location", "/" + call.bucket());
  call.Reply(std::move(r));
}

void HeadBucket(const Context& ctx, Call& call) {
  auto info = ctx.store.HeadBucket(call.bucket());
  if (!info.ok()) return call.Fail(info.error());
  http::Response r = EmptyResponse(200);
  r.headers.Add("x-amz-bucket-region", RegionOf(ctx, call));
  r.headers.Add("Content-Type", "application/xml");
  call.Reply(std::move(r));
}

void DeleteBucket(const Context& ctx, Call& call) {
  if (auto st = ctx.store.DeleteBucket(call.bucket()); !st.ok()) return call.Fail(st.error());
  call.Reply(EmptyResponse(204));
}

void GetBucketLocation(const Context& ctx, Call& call) {
  auto info = ctx.store.HeadBucket(call.bucket());
  if (!info.ok()) return call.Fail(info.error());
  // S3 reports us-east-1 as an empty constraint (the classic region).
  std::string region = RegionOf(ctx, call);
  std::string body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint xmlns=\"" +
                     std::string(kS3Namespace) + "\">" +
                     (region == "us-east-1" ? std::string() : XmlEscape(region)) +
                     "</LocationConstraint>";
  call.Reply(XmlResponse(std::move(body)));
}

void GetBucketVersioning(const Context& ctx, Call& call) {
  auto info = ctx.store.HeadBucket(call.bucket());
  if (!info.ok()) return call.Fail(info.error());
  // Never versioned: S3 answers an empty configuration for such buckets.
  call.Reply(XmlResponse(XmlWriter("VersioningConfiguration").Finish()));
}

}  // namespace inferd::api::s3::internal
