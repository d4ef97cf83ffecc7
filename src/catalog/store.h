// CatalogStore: durable storage of models, endpoint configurations, endpoints and tags in one
// SQLite database (WAL, synchronous=FULL: a call that returned has reached the disk).
//
// Resources of the three kinds share one table: identity (kind, region, case-folded name), the
// name as created, ARN, timestamps, status (endpoints) and `doc`, the resource's JSON document.
// The store knows nothing of the documents' shape; catalog::Catalog does.
//
// Thread-safe: one connection behind a mutex. Every call blocks on disk I/O: call it from the
// blocking pool, never from an I/O thread.
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace inferd::db {
class Database;
}

namespace inferd::catalog {

enum class Kind { kModel = 0, kEndpointConfig = 1, kEndpoint = 2 };

struct Resource {
  Kind kind = Kind::kModel;
  std::string region;
  std::string name;  // as created (case kept)
  std::string arn;
  double creation_time = 0;       // epoch seconds
  double last_modified_time = 0;  // epoch seconds
  std::string status;             // endpoints only
  std::string doc;                // JSON document
};

enum class SortBy { kName, kCreationTime, kStatus };

struct ListQuery {
  std::string name_contains;  // case-insensitive substring
  std::optional<double> creation_before, creation_after;
  std::optional<double> modified_before, modified_after;
  std::string status_equals;
  SortBy sort_by = SortBy::kCreationTime;
  bool descending = true;
  int limit = 10;
  std::string next_token;  // as returned by a previous page; "" = first page
};

struct Page {
  std::vector<Resource> items;
  std::string next_token;  // "" = no more
};

struct Tag {
  std::string key;
  std::string value;
};

class CatalogStore {
 public:
  static constexpr int kMaxTagsPerResource = 50;

  // Opens (creating if needed) the database file.
  static Result<std::unique_ptr<CatalogStore>> Open(const std::filesystem::path& path);
  ~CatalogStore();
  CatalogStore(const CatalogStore&) = delete;
  CatalogStore& operator=(const CatalogStore&) = delete;

  // kAlreadyExists when (kind, region, lower(name)) exists. Tags are stored in the same
  // transaction.
  Status Insert(const Resource& resource, const std::vector<Tag>& tags = {});
  // kNotFound when absent.
  Result<Resource> Get(Kind kind, const std::string& region, const std::string& name);
  // Replaces status, last_modified_time and doc of an existing resource (kNotFound if absent).
  Status Update(const Resource& resource);
  // Removes the resource and its tags; kNotFound when absent.
  Status Remove(Kind kind, const std::string& region, const std::string& name);
  // A page of resources of one kind in one region. kValidation for a token not issued by us.
  Result<Page> List(Kind kind, const std::string& region, const ListQuery& query);
  // Every resource of a kind, all regions (for reconcilers at start-up).
  Result<std::vector<Resource>> All(Kind kind);

  // Tags by resource ARN. AddTags overwrites existing keys; kResourceLimit above 50 tags.
  bool ArnExists(const std::string& arn);
  Status AddTags(const std::string& arn, const std::vector<Tag>& tags);
  Status DeleteTags(const std::string& arn, const std::vector<std::string>& keys);
  // Tags sorted by key, paginated (`next_token` as for List).
  Result<std::pair<std::vector<Tag>, std::string>> ListTags(const std::string& arn, int limit,
                                                            const std::string& next_token);

 private:
  explicit CatalogStore(std::unique_ptr<db::Database> db);
  Status AddTagsLocked(const std::string& arn, const std::vector<Tag>& tags);

  std::mutex mu_;
  std::unique_ptr<db::Database> db_;
};

}  // namespace inferd::catalog
