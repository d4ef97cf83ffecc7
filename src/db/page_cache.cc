#include "db/page_cache.h"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <vector>

namespace inferd::db {
namespace {

sqlite3_pcache_methods2 g_base;  // pcache1, as SQLite configured it
std::atomic<uint64_t> g_skipped{0};
std::atomic<uint64_t> g_passed{0};
std::atomic<uint64_t> g_temporary{0};

// SQLite's lock-byte page: 1 GiB (PENDING_BYTE) into the file. balance_nonroot() rekeys pages
// to it while it reorders page numbers; a database never stores a page there.
unsigned TemporaryKey(int page_size) { return 0x40000000u / static_cast<unsigned>(page_size) + 1; }

struct Cache {
  sqlite3_pcache* inner;
  unsigned temporary_key;
  unsigned bound = 0;                         // every key held, but the tracked pages', is ≤ it
  std::vector<sqlite3_pcache_page*> at_temp;  // pages at temporary_key (between two rekeys)

  void Untrack(sqlite3_pcache_page* page) {
    at_temp.erase(std::remove(at_temp.begin(), at_temp.end(), page), at_temp.end());
  }
};

Cache* Of(sqlite3_pcache* p) { return reinterpret_cast<Cache*>(p); }

int Init(void*) { return g_base.xInit(g_base.pArg); }
void Shutdown(void*) { g_base.xShutdown(g_base.pArg); }

sqlite3_pcache* Create(int page_size, int extra, int purgeable) {
  sqlite3_pcache* inner = g_base.xCreate(page_size, extra, purgeable);
  if (inner == nullptr) return nullptr;
  auto* cache = new (std::nothrow) Cache{inner, TemporaryKey(page_size), 0, {}};
  if (cache == nullptr) {
    g_base.xDestroy(inner);
    return nullptr;
  }
  return reinterpret_cast<sqlite3_pcache*>(cache);
}

void Cachesize(sqlite3_pcache* p, int n) { g_base.xCachesize(Of(p)->inner, n); }
int Pagecount(sqlite3_pcache* p) { return g_base.xPagecount(Of(p)->inner); }

sqlite3_pcache_page* Fetch(sqlite3_pcache* p, unsigned key, int create) {
  Cache* c = Of(p);
  sqlite3_pcache_page* page = g_base.xFetch(c->inner, key, create);
  if (page != nullptr) c->bound = std::max(c->bound, key);
  return page;
}

void Unpin(sqlite3_pcache* p, sqlite3_pcache_page* page, int discard) {
  Cache* c = Of(p);
  if (discard && !c->at_temp.empty()) c->Untrack(page);
  g_base.xUnpin(c->inner, page, discard);
}

void Rekey(sqlite3_pcache* p, sqlite3_pcache_page* page, unsigned old_key, unsigned new_key) {
  Cache* c = Of(p);
  if (old_key == c->temporary_key) c->Untrack(page);
  if (new_key == c->temporary_key) {
    g_temporary.fetch_add(1, std::memory_order_relaxed);
    c->at_temp.push_back(page);
  } else {
    c->bound = std::max(c->bound, new_key);
  }
  g_base.xRekey(c->inner, page, old_key, new_key);
}

void Truncate(sqlite3_pcache* p, unsigned limit) {
  Cache* c = Of(p);
  const bool tracked_dropped = !c->at_temp.empty() && c->temporary_key >= limit;
  if (limit > c->bound && !tracked_dropped) {
    g_skipped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  g_passed.fetch_add(1, std::memory_order_relaxed);
  g_base.xTruncate(c->inner, limit);
  if (tracked_dropped) c->at_temp.clear();
  if (limit > 0) c->bound = std::min(c->bound, limit - 1);
}

void Destroy(sqlite3_pcache* p) {
  Cache* c = Of(p);
  g_base.xDestroy(c->inner);
  delete c;
}

void Shrink(sqlite3_pcache* p) { g_base.xShrink(Of(p)->inner); }

bool Install() {
  if (sqlite3_config(SQLITE_CONFIG_GETPCACHE2, &g_base) != SQLITE_OK || g_base.xCreate == nullptr) {
    return false;
  }
  static sqlite3_pcache_methods2 wrapper{
      /*iVersion=*/1, /*pArg=*/nullptr, Init,  Shutdown, Create,
      Cachesize,      Pagecount,        Fetch, Unpin,    Rekey,
      Truncate,       Destroy,          Shrink};
  return sqlite3_config(SQLITE_CONFIG_PCACHE2, &wrapper) == SQLITE_OK;
}

}  // namespace

bool InstallPageCache() {
  static const bool installed = Install();
  return installed;
}

PageCacheStats GetPageCacheStats() {
  return {g_skipped.load(std::memory_order_relaxed), g_passed.load(std::memory_order_relaxed),
          g_temporary.load(std::memory_order_relaxed)};
}

}  // namespace inferd::db
