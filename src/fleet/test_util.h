// Test helpers for src/fleet: .tar.gz archives built with libarchive's writer, the inferd-echo
// binary, a slow ObjectStore; TempDir and WaitFor come from common/testing.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/testing/test_support.h"
#include "store/object_store.h"

namespace inferd::fleet::testing {

struct Entry {
  std::string path;
  std::string content;   // regular files
  std::string symlink;   // non-empty: a symlink to this target
  std::string hardlink;  // non-empty: a hardlink to this archive path
  bool directory = false;
};

inline std::string MakeTarGz(const std::vector<Entry>& entries) {
  std::string out;
  struct archive* a = archive_write_new();
  archive_write_add_filter_gzip(a);
  archive_write_set_format_pax_restricted(a);
  archive_write_set_bytes_in_last_block(a, 1);
  archive_write_open(
      a, &out, nullptr,
      [](struct archive*, void* data, const void* buf, size_t n) -> la_ssize_t {
        static_cast<std::string*>(data)->append(static_cast<const char*>(buf), n);
        return static_cast<la_ssize_t>(n);
      },
      nullptr);
  for (const Entry& e : entries) {
    struct archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, e.path.c_str());
    archive_entry_set_perm(entry, 0644);
    if (!e.symlink.empty()) {
      archive_entry_set_filetype(entry, AE_IFLNK);
      archive_entry_set_symlink(entry, e.symlink.c_str());
    } else if (!e.hardlink.empty()) {
      archive_entry_set_filetype(entry, AE_IFREG);
      archive_entry_set_hardlink(entry, e.hardlink.c_str());
    } else if (e.directory) {
      archive_entry_set_filetype(entry, AE_IFDIR);
      archive_entry_set_perm(entry, 0755);
    } else {
      archive_entry_set_filetype(entry, AE_IFREG);
      archive_entry_set_size(entry, static_cast<la_int64_t>(e.content.size()));
    }
    archive_write_header(a, entry);
    if (!e.content.empty()) archive_write_data(a, e.content.data(), e.content.size());
    archive_entry_free(entry);
  }
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

using test_support::TempDir;

// test_support::WaitFor polling every 50 ms, as the reconciler tests always have (about one
// reconciler pass, reconcile_interval, per poll).
template <typename F>
bool WaitFor(F&& cond, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  return test_support::WaitFor(std::forward<F>(cond), limit, std::chrono::milliseconds(50));
}

// The inferd-echo binary the tests run as a model server (INFERD_ECHO_BIN overrides the build's).
inline std::filesystem::path EchoBin() {
  return test_support::BinaryPath("INFERD_ECHO_BIN", INFERD_ECHO_BIN);
}

// An ObjectStore over `inner` whose object reads are slow: at most 4 bytes per Read, and
// `on_read` (advance a FakeClock, or sleep) before each. Counts the objects opened (gets()).
class SlowStore final : public store::ObjectStore {
 public:
  SlowStore(store::ObjectStore& inner, std::function<void()> on_read)
      : inner_(inner), on_read_(std::move(on_read)) {}
  Result<store::ObjectInfo> Put(const std::string& b, const std::string& k,
                                const store::ObjectAttributes& a, http::ByteSource& body,
                                const store::PutOptions& o) override {
    return inner_.Put(b, k, a, body, o);
  }
  Result<store::ObjectInfo> Head(const std::string& b, const std::string& k) override {
    return inner_.Head(b, k);
  }
  Result<std::unique_ptr<store::ObjectReader>> Get(const std::string& b, const std::string& k,
                                                   std::optional<store::RangeSpec> r) override {
    ++gets_;
    auto reader = inner_.Get(b, k, r);
    if (!reader.ok()) return reader;
    return std::unique_ptr<store::ObjectReader>(
        std::make_unique<Reader>(std::move(*reader), on_read_));
  }
  Status Delete(const std::string& b, const std::string& k) override { return inner_.Delete(b, k); }
  Result<store::ListResult> List(const std::string& b, const store::ListOptions& o) override {
    return inner_.List(b, o);
  }
  int gets() const { return gets_; }

 private:
  class Reader final : public store::ObjectReader {
   public:
    Reader(std::unique_ptr<store::ObjectReader> inner, std::function<void()>& on_read)
        : inner_(std::move(inner)), on_read_(on_read) {}
    const store::ObjectInfo& info() const override { return inner_->info(); }
    uint64_t first() const override { return inner_->first(); }
    uint64_t length() const override { return inner_->length(); }
    Result<size_t> Read(char* buf, size_t n) override {
      on_read_();
      return inner_->Read(buf, std::min<size_t>(n, 4));
    }

   private:
    std::unique_ptr<store::ObjectReader> inner_;
    std::function<void()>& on_read_;
  };
  store::ObjectStore& inner_;
  std::function<void()> on_read_;
  int gets_ = 0;
};

}  // namespace inferd::fleet::testing
