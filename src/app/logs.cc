#include "app/logs.h"

#include <algorithm>
#include <boost/json.hpp>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>

#include "catalog/store.h"
#include "common/strings.h"

namespace inferd::app {

namespace fs = std::filesystem;

namespace {

// Instance folders are named <lower(endpoint)>-<variant>-<n>-<id> (fleet/reconciler.cc).
bool BelongsTo(const std::string& dir, const std::string& endpoint,
               const std::set<std::string>& variants) {
  for (const auto& v : variants) {
    std::string prefix = endpoint + "-" + v + "-";
    if (dir.rfind(prefix, 0) != 0) continue;
    std::string_view rest(dir);
    rest.remove_prefix(prefix.size());
    auto dash = rest.find('-');
    if (dash != 0 && dash != std::string_view::npos &&
        std::all_of(rest.begin(), rest.begin() + dash,
                    [](char c) { return c >= '0' && c <= '9'; })) {
      return true;
    }
  }
  return false;
}

void PrintFile(const fs::path& path, int tail) {
  std::ifstream in(path);
  std::string line;
  if (tail <= 0) {
    while (std::getline(in, line)) std::cout << line << "\n";
    return;
  }
  std::deque<std::string> last;
  while (std::getline(in, line)) {
    last.push_back(std::move(line));
    if (static_cast<int>(last.size()) > tail) last.pop_front();
  }
  for (const auto& l : last) std::cout << l << "\n";
}

}  // namespace

int PrintLogs(const LogsOptions& options) {
  fs::path data(options.data_dir);
  auto store = catalog::CatalogStore::Open(data / "catalog.db");
  if (!store.ok()) {
    std::cerr << "inferd logs: " << store.error().message << "\n";
    return 1;
  }
  auto endpoints = (*store)->All(catalog::Kind::kEndpoint);
  if (!endpoints.ok()) {
    std::cerr << "inferd logs: " << endpoints.error().message << "\n";
    return 1;
  }
  std::string wanted = AsciiLower(options.endpoint);
  std::set<std::string> variants;
  for (const auto& r : *endpoints) {
    if (AsciiLower(r.name) != wanted) continue;
    // The variants of its configuration and of an update in progress (doc["Pending"]).
    auto add_variants = [&variants](const boost::json::value& holder) {
      for (const auto& v : holder.at("Variants").as_array()) {
        variants.insert(std::string(v.at("VariantName").as_string()));
      }
    };
    auto doc = boost::json::parse(r.doc);
    add_variants(doc);
    if (auto* pending = doc.as_object().if_contains("Pending")) add_variants(*pending);
  }
  if (variants.empty()) {
    std::cerr << "inferd logs: no endpoint named " << options.endpoint << " in " << options.data_dir
              << "\n";
    return 1;
  }
  std::vector<fs::directory_entry> dirs;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(data / "instances", ec)) {
    if (entry.is_directory() && BelongsTo(entry.path().filename().string(), wanted, variants)) {
      dirs.push_back(entry);
    }
  }
  std::sort(dirs.begin(), dirs.end(), [](const auto& a, const auto& b) {
    return fs::last_write_time(a.path() / "log") < fs::last_write_time(b.path() / "log");
  });
  if (dirs.empty())
    std::cerr << "inferd logs: " << options.endpoint << " has no instance logs yet\n";
  for (const auto& d : dirs) {
    std::cout << "==> " << d.path().filename().string() << " <==\n";
    PrintFile(d.path() / "log", options.tail);
  }
  return 0;
}

}  // namespace inferd::app
