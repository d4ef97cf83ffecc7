#include "fleet/artifact.h"

#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>
#include <unistd.h>

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

ArtifactCache::ArtifactCache(store::ObjectStore& store, fs::path models_dir, ExtractLimits limits)
    : store_(store), models_dir_(std::move(models_dir)), limits_(limits) {}

Result<fs::path> ArtifactCache::Get(const std::string& url) {
  auto fetch_error = [&](const std::string& why) {
    return Error(Errc::kValidation, "model artifact " + url + " could not be fetched: " + why);
  };
  auto loc = store::ParseS3Uri(url);
  if (!loc.ok()) return fetch_error(loc.error().message);
  auto reader = store_.Get(loc->bucket, loc->key);
  if (!reader.ok()) return fetch_error(reader.error().message);
  fs::path dir = models_dir_ / Sha256Hex(url + "\n" + (*reader)->info().etag);
  std::lock_guard lock(mu_);
  std::error_code ec;
  if (fs::is_directory(dir, ec)) return dir;
  fs::path tmp =
      models_dir_ / (".tmp-" + dir.filename().string() + "-" + std::to_string(::getpid()));
  fs::remove_all(tmp, ec);
  Status st = ExtractTarGz(**reader, tmp, limits_);
  if (!st.ok()) {
    if (st.error().code == Errc::kUnavailable) return fetch_error(st.error().message);
    if (st.error().code == Errc::kInternal) {
      return Error(Errc::kInternal, "model artifact " + url + ": " + st.error().message);
    }
    return Error(Errc::kValidation,
                 "model artifact " + url + " is not a valid .tar.gz: " + st.error().message);
  }
  fs::rename(tmp, dir, ec);
  if (ec) {
    fs::remove_all(tmp, ec);
    if (!fs::is_directory(dir, ec)) {
      return Error(Errc::kInternal, "cannot place model artifact in " + dir.string());
    }
  }
  return dir;
}

}  // namespace inferd::fleet
