// S3Store::List: ListObjectsV2, mapped onto ListResult's start_after paging.
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <pugixml.hpp>

#include "http/uri.h"
#include "store/s3_store.h"
#include "store/s3_store_internal.h"

namespace inferd::store {
namespace {

constexpr int kMaxListKeys = 1000;

// "2009-10-12T17:50:30.000Z" → epoch seconds.
double ParseIso8601(std::string_view text) {
  int y, mo, d, h, mi;
  double s;
  std::string t(text);
  if (std::sscanf(t.c_str(), "%d-%d-%dT%d:%d:%lfZ", &y, &mo, &d, &h, &mi, &s) != 6) return 0;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  return static_cast<double>(::timegm(&tm)) + s;
}

}  // namespace

Result<ListResult> S3Store::List(const std::string& bucket, const ListOptions& options) {
  if (options.max_keys < 0) {
    return Error(Errc::kValidation, "max_keys must not be negative.", "InvalidArgument");
  }
  if (options.max_keys == 0) {
    INFERD_RETURN_IF_ERROR(HeadBucket(bucket));
    return ListResult{};
  }
  const int want = std::min(options.max_keys, kMaxListKeys);
  // One more than wanted: a common prefix the service repeats (see below) may be dropped.
  Call call("GET", bucket, "",
            {{"list-type", "2"},
             {"encoding-type", "url"},
             {"max-keys", std::to_string(std::min(want + 1, kMaxListKeys))}});
  if (!options.prefix.empty()) call.query.emplace_back("prefix", options.prefix);
  if (!options.delimiter.empty()) call.query.emplace_back("delimiter", options.delimiter);
  if (!options.start_after.empty()) call.query.emplace_back("start-after", options.start_after);
  auto response = Send(call);
  if (!response.ok()) return std::move(response).error();
  if (response->status != 200) return ResponseError(call, *response);

  pugi::xml_document doc;
  if (!doc.load_buffer(response->body.data(), response->body.size()) ||
      !doc.child("ListBucketResult")) {
    return Error(Errc::kInternal, fmt::format("{} failed: the S3 service at {} answered "
                                              "ListObjectsV2 with a document that is not a "
                                              "ListBucketResult.",
                                              call.What(), options_.endpoint));
  }
  pugi::xml_node root = doc.child("ListBucketResult");
  const bool url_encoded = std::string_view(root.child_value("EncodingType")) == "url";
  auto decode = [&](const char* text) {
    if (!url_encoded) return std::string(text);
    auto d = http::PercentDecode(text, /*plus_as_space=*/true);
    return d ? *d : std::string(text);
  };
  // Objects and common prefixes merged in key order, so the page can be cut at `want` entries.
  struct Entry {
    std::string name;
    bool prefix = false;
    ObjectInfo info;
  };
  std::vector<Entry> entries;
  for (pugi::xml_node c : root.children("Contents")) {
    Entry e;
    e.name = decode(c.child_value("Key"));
    e.info.bucket = bucket;
    e.info.key = e.name;
    e.info.size = std::strtoull(c.child_value("Size"), nullptr, 10);
    e.info.etag = s3_internal::StripQuotes(c.child_value("ETag"));
    e.info.last_modified = ParseIso8601(c.child_value("LastModified"));
    entries.push_back(std::move(e));
  }
  for (pugi::xml_node p : root.children("CommonPrefixes")) {
    Entry e;
    e.name = decode(p.child_value("Prefix"));
    e.prefix = true;
    entries.push_back(std::move(e));
  }
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.name < b.name; });
  std::string last_seen = entries.empty() ? "" : entries.back().name;
  // Paging with start_after = a common prefix must skip that prefix's keys, as FilesystemStore
  // does; a service may roll them up into the same prefix again.
  const std::string& after = options.start_after;
  std::erase_if(entries, [&](const Entry& e) {
    return e.name <= after || (e.prefix && !after.empty() && after.starts_with(e.name));
  });
  ListResult result;
  result.truncated = std::string_view(root.child_value("IsTruncated")) == "true";
  if (entries.size() > static_cast<size_t>(want)) {
    entries.resize(want);
    result.truncated = true;
  }
  if (result.truncated) {
    result.next_start_after = entries.empty() ? last_seen : entries.back().name;
  }
  for (Entry& e : entries) {
    if (e.prefix) {
      result.common_prefixes.push_back(std::move(e.name));
    } else {
      result.objects.push_back(std::move(e.info));
    }
  }
  return result;
}
}  // namespace inferd::store
