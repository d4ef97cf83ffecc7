#include "fleet/artifact.h"

#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <vector>

namespace inferd::fleet {

namespace fs = std::filesystem;

namespace {

struct ReadContext {
  http::ByteSource* source = nullptr;
  std::vector<char> buf = std::vector<char>(1 << 16);
  uint64_t compressed = 0;
  std::string error;
};

la_ssize_t ReadCallback(struct archive* a, void* data, const void** out) {
  auto* ctx = static_cast<ReadContext*>(data);
  auto n = ctx->source->Read(ctx->buf.data(), ctx->buf.size());
  if (!n.ok()) {
    ctx->error = n.error().message;
    archive_set_error(a, EIO, "%s", ctx->error.c_str());
    return -1;
  }
  ctx->compressed += *n;
  *out = ctx->buf.data();
  return static_cast<la_ssize_t>(*n);
}

// True when `rel` (relative, lexically normal) stays inside its root.
bool Inside(const fs::path& rel) {
  if (rel.is_absolute() || rel.has_root_name() || rel.has_root_directory()) return false;
  fs::path n = rel.lexically_normal();
  return !n.empty() && *n.begin() != "..";
}

bool HasDotDot(const fs::path& p) {
  for (const auto& part : p) {
    if (part == "..") return true;
  }
  return false;
}

Error Refused(std::string m) { return Error(Errc::kValidation, std::move(m)); }

Status Extract(struct archive* in, ReadContext& ctx, const fs::path& dest,
               const ExtractLimits& limits) {
  using ArchivePtr = std::unique_ptr<struct archive, decltype(&archive_write_free)>;
  ArchivePtr out(archive_write_disk_new(), &archive_write_free);
  // Entry paths are checked above and rewritten to absolute paths under `dest`, so only
  // NODOTDOT (defence in depth) and SECURE_SYMLINKS (never write through a symlink) apply.
  archive_write_disk_set_options(out.get(),
                                 ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT);
  uint64_t total = 0;
  for (;;) {
    struct archive_entry* entry = nullptr;
    int r = archive_read_next_header(in, &entry);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) return Refused(archive_error_string(in));
    std::string name = archive_entry_pathname(entry) ? archive_entry_pathname(entry) : "";
    fs::path rel(name);
    if (rel.is_absolute()) return Refused("entry " + name + " has an absolute path");
    if (HasDotDot(rel)) return Refused("entry " + name + " escapes the model directory");
    if (rel.lexically_normal().empty() || rel.lexically_normal() == ".") continue;
    if (const char* hl = archive_entry_hardlink(entry)) {
      if (!Inside(fs::path(hl))) return Refused("hardlink " + name + " points outside: " + hl);
      archive_entry_set_hardlink(entry, (dest / hl).c_str());
    }
    mode_t type = archive_entry_filetype(entry);
    if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK &&
        !archive_entry_hardlink(entry)) {
      return Refused("entry " + name + " is not a file, directory or symlink");
    }
    if (type == AE_IFLNK) {
      const char* target = archive_entry_symlink(entry);
      fs::path t(target ? target : "");
      if (t.is_absolute() || !Inside(rel.parent_path() / t)) {
        return Refused("symlink " + name + " points outside the model directory: " + t.string());
      }
    }
    archive_entry_set_pathname(entry, (dest / rel).c_str());
    if (archive_write_header(out.get(), entry) < ARCHIVE_WARN) {
      return Error(Errc::kInternal,
                   "cannot extract " + name + ": " + archive_error_string(out.get()));
    }
    const void* block;
    size_t size;
    la_int64_t offset;
    while ((r = archive_read_data_block(in, &block, &size, &offset)) == ARCHIVE_OK) {
      total += size;
      if (total > limits.max_bytes) {
        return Refused("it extracts to more than " + std::to_string(limits.max_bytes) + " bytes");
      }
      if (total > (1 << 20) && total > limits.max_ratio * static_cast<double>(ctx.compressed)) {
        return Refused("its compression ratio exceeds " + std::to_string(int(limits.max_ratio)) +
                       " (archive bomb)");
      }
      if (archive_write_data_block(out.get(), block, size, offset) < ARCHIVE_WARN) {
        return Error(Errc::kInternal,
                     "cannot write " + name + ": " + archive_error_string(out.get()));
      }
    }
    if (r != ARCHIVE_EOF) return Refused(archive_error_string(in));
    archive_write_finish_entry(out.get());
  }
  if (archive_write_close(out.get()) < ARCHIVE_WARN) {
    return Error(Errc::kInternal, archive_error_string(out.get()));
  }
  return OkStatus();
}

std::string Sha256Hex(const std::string& s) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(s.data(), s.size(), md, &len, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

}  // namespace

Status ExtractTarGz(http::ByteSource& source, const fs::path& dest, const ExtractLimits& limits) {
  std::error_code ec;
  if (!fs::create_directories(dest, ec) || ec) {
    return Error(Errc::kInternal, "cannot create " + dest.string() + ": " + ec.message());
  }
  using ArchivePtr = std::unique_ptr<struct archive, decltype(&archive_read_free)>;
  ArchivePtr in(archive_read_new(), &archive_read_free);
  archive_read_support_filter_gzip(in.get());
  archive_read_support_format_tar(in.get());
  archive_read_support_format_gnutar(in.get());
  ReadContext ctx;
  ctx.source = &source;
  Status st = OkStatus();
  if (archive_read_open(in.get(), &ctx, nullptr, ReadCallback, nullptr) != ARCHIVE_OK) {
    st = Refused(archive_error_string(in.get()));
  } else {
    st = Extract(in.get(), ctx, dest, limits);
  }
  if (!st.ok()) {
    fs::remove_all(dest, ec);
    if (!ctx.error.empty()) return Error(Errc::kUnavailable, ctx.error);
  }
  return st;
}

namespace {

// Fails reads once the deadline passed (the download timeout).
class DeadlineSource final : public http::ByteSource {
 public:
  DeadlineSource(http::ByteSource& inner, const Clock& clock,
                 std::chrono::steady_clock::time_point deadline)
      : inner_(inner), clock_(clock), deadline_(deadline) {}
  Result<size_t> Read(char* buf, size_t n) override {
    if (clock_.Monotonic() > deadline_) {
      timed_out = true;
      return Error(Errc::kUnavailable, "download timed out");
    }
    return inner_.Read(buf, n);
  }
  bool timed_out = false;

 private:
  http::ByteSource& inner_;
  const Clock& clock_;
  std::chrono::steady_clock::time_point deadline_;
};

std::string Seconds(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000);
  return std::to_string(d.count() / 1000.0);
}

// Moves a finished temporary directory to its cache name (another inferd may have won).
Result<fs::path> Place(const fs::path& tmp, const fs::path& dir) {
  std::error_code ec;
  fs::rename(tmp, dir, ec);
  if (ec) {
    fs::remove_all(tmp, ec);
    if (!fs::is_directory(dir, ec)) {
      return Error(Errc::kInternal, "cannot place model artifact in " + dir.string());
    }
  }
  return dir;
}

// The temporary directory the cache entry `dir` is built in (this process's own; what an earlier
// attempt left there is removed first). Called with the cache's lock held.
fs::path FreshTempFor(const fs::path& dir) {
  fs::path tmp =
      dir.parent_path() / (".tmp-" + dir.filename().string() + "-" + std::to_string(::getpid()));
  std::error_code ec;
  fs::remove_all(tmp, ec);
  return tmp;
}

}  // namespace

ArtifactCache::ArtifactCache(store::ObjectStore& store, fs::path models_dir, ExtractLimits limits,
                             const Clock& clock)
    : store_(store), models_dir_(std::move(models_dir)), limits_(limits), clock_(clock) {}

Result<fs::path> ArtifactCache::Get(const ModelData& data, std::chrono::milliseconds timeout) {
  auto deadline = clock_.Monotonic() + timeout;
  std::string timeout_reason = "model artifact " + data.uri +
                               " was not downloaded within ModelDataDownloadTimeoutInSeconds (" +
                               Seconds(timeout) + " s)";
  if (data.kind == ModelData::Kind::kTarGz) return GetTarGz(data, deadline, timeout_reason);
  return GetFiles(data, deadline, timeout_reason);
}

Result<fs::path> ArtifactCache::GetTarGz(const ModelData& data,
                                         std::chrono::steady_clock::time_point deadline,
                                         const std::string& timeout_reason) {
  const std::string& url = data.uri;
  auto fetch_error = [&](const std::string& why) {
    return Error(Errc::kValidation, "model artifact " + url + " could not be fetched: " + why);
  };
  auto loc = store::ParseS3Uri(url);
  if (!loc.ok()) return fetch_error(loc.error().message);
  auto dir_for = [&](const std::string& etag) {
    return models_dir_ / Sha256Hex(url + "\n" + etag);
  };
  // HEAD first: a version already extracted is not downloaded again (a remote store's GET
  // starts transferring the object as soon as it is opened).
  auto head = store_.Head(loc->bucket, loc->key);
  if (!head.ok()) return fetch_error(head.error().message);
  std::lock_guard lock(mu_);
  std::error_code ec;
  if (fs::path dir = dir_for(head->etag); fs::is_directory(dir, ec)) return dir;
  auto reader = store_.Get(loc->bucket, loc->key);
  if (!reader.ok()) return fetch_error(reader.error().message);
  // Named after the version actually read (the object may have changed since the HEAD).
  fs::path dir = dir_for((*reader)->info().etag);
  if (fs::is_directory(dir, ec)) return dir;
  fs::path tmp = FreshTempFor(dir);
  DeadlineSource source(**reader, clock_, deadline);
  Status st = ExtractTarGz(source, tmp, limits_);
  if (!st.ok()) {
    if (source.timed_out) return Error(Errc::kValidation, timeout_reason);
    if (st.error().code == Errc::kUnavailable) return fetch_error(st.error().message);
    if (st.error().code == Errc::kInternal) {
      return Error(Errc::kInternal, "model artifact " + url + ": " + st.error().message);
    }
    return Error(Errc::kValidation,
                 "model artifact " + url + " is not a valid .tar.gz: " + st.error().message);
  }
  return Place(tmp, dir);
}

// S3Prefix (every object under the prefix) or S3Object (one object), uncompressed.
Result<fs::path> ArtifactCache::GetFiles(const ModelData& data,
                                         std::chrono::steady_clock::time_point deadline,
                                         const std::string& timeout_reason) {
  const std::string& uri = data.uri;
  auto fetch_error = [&](const std::string& why) {
    return Error(Errc::kValidation, "model data " + uri + " could not be fetched: " + why);
  };
  auto loc = store::ParseS3Uri(uri);
  if (!loc.ok()) return fetch_error(loc.error().message);
  bool prefix = data.kind == ModelData::Kind::kPrefix;
  if (prefix && !loc->key.empty() && loc->key.back() != '/') {
    return Error(Errc::kValidation, "model data " + uri +
                                        " must end with / (S3DataType S3Prefix names a key "
                                        "prefix, like s3://bucket/models/my-model/)");
  }
  if (!prefix && (loc->key.empty() || loc->key.back() == '/')) {
    return Error(Errc::kValidation, "model data " + uri + " must name an object (S3Object)");
  }
  // What to fetch: (path below the model dir, key), and a fingerprint of the version.
  std::vector<std::pair<fs::path, store::ObjectInfo>> files;
  std::string fingerprint = uri;
  if (prefix) {
    store::ListOptions list;
    list.prefix = loc->key;
    for (;;) {
      if (clock_.Monotonic() > deadline) return Error(Errc::kValidation, timeout_reason);
      auto page = store_.List(loc->bucket, list);
      if (!page.ok()) return fetch_error(page.error().message);
      for (auto& o : page->objects) {
        std::string rel = o.key.substr(loc->key.size());
        if (rel.empty() || rel.back() == '/') continue;  // folder markers
        fs::path p(rel);
        if (p.is_absolute() || HasDotDot(p) || !Inside(p)) {
          return Error(Errc::kValidation, "model data " + uri + " holds key " + o.key +
                                              " that would escape the model directory");
        }
        for (const auto& part : p) {
          if (part == "." || part.empty()) {
            return Error(Errc::kValidation, "model data " + uri + " holds key " + o.key +
                                                " with an empty or '.' path component (refused)");
          }
        }
        fingerprint += "\n" + o.key + "\n" + o.etag;
        files.emplace_back(p, std::move(o));
      }
      if (!page->truncated) break;
      list.start_after = page->next_start_after;
    }
    if (files.empty()) return fetch_error("no objects under this prefix");
  } else {
    auto head = store_.Head(loc->bucket, loc->key);
    if (!head.ok()) return fetch_error(head.error().message);
    fs::path name = fs::path(loc->key).filename();
    fingerprint += "\n" + head->etag;
    files.emplace_back(name, std::move(*head));
  }
  fs::path dir = models_dir_ / Sha256Hex(fingerprint);
  std::lock_guard lock(mu_);
  std::error_code ec;
  if (fs::is_directory(dir, ec)) return dir;
  fs::path tmp = FreshTempFor(dir);
  auto fail = [&](Error e) {
    fs::remove_all(tmp, ec);
    return e;
  };
  uint64_t total = 0;
  std::vector<char> buf(1 << 16);
  for (const auto& [rel, info] : files) {
    total += info.size;
    if (total > limits_.max_bytes) {
      return fail(Error(Errc::kValidation, "model data " + uri + " is larger than " +
                                               std::to_string(limits_.max_bytes) + " bytes"));
    }
    auto reader = store_.Get(info.bucket.empty() ? loc->bucket : info.bucket, info.key);
    if (!reader.ok()) return fail(fetch_error(info.key + ": " + reader.error().message));
    fs::path target = tmp / rel;
    fs::create_directories(target.parent_path(), ec);
    std::ofstream out(target, std::ios::binary | std::ios::trunc);
    if (ec || !out) return fail(Error(Errc::kInternal, "cannot write " + target.string()));
    DeadlineSource source(**reader, clock_, deadline);
    for (;;) {
      auto n = source.Read(buf.data(), buf.size());
      if (!n.ok()) {
        if (source.timed_out) return fail(Error(Errc::kValidation, timeout_reason));
        return fail(fetch_error(info.key + ": " + n.error().message));
      }
      if (*n == 0) break;
      out.write(buf.data(), static_cast<std::streamsize>(*n));
    }
    out.close();
    if (!out) return fail(Error(Errc::kInternal, "cannot write " + target.string()));
  }
  return Place(tmp, dir);
}

}  // namespace inferd::fleet
