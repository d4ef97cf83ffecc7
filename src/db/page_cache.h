// PageCache: SQLite's own page cache (pcache1) with one cost taken out of commits.
//
// At the end of every write transaction SQLite truncates the connection's page cache to the
// database's size (pager_end_transaction → xTruncate(size + 1)). pcache1 does nothing when no
// page above the size was ever cached since the last truncate (its highest key), and otherwise
// scans its hash table — every bucket and every cached page when that highest key lies more
// buckets above the size than it has. B-tree balancing swaps page numbers through a temporary
// key, the lock-byte page (262,145 with 4 KiB pages), which leaves pcache1's highest key there:
// the next commit then scans the whole cache. With the queue writer's 64 MiB cache (16,384
// buckets, ≈ 16,000 pages) that is ≈ 0.4 ms, on about one commit in seven at 10,000 accepts/s:
// a fifth of the writer's CPU (docs/performance-rounds.md, sixteenth round).
//
// InstallPageCache() puts a thin wrapper in front of pcache1 (SQLITE_CONFIG_PCACHE2): every
// method goes to pcache1, and each cache also keeps an upper bound of the keys it holds —
// leaving out pages that sit at the temporary key between two rekeys, which it tracks one by
// one. A truncate that can drop nothing is skipped; any other goes to pcache1.
//
//   xFetch(key) / xRekey(→ key)        bound = max(bound, key)   (the temporary key: tracked page)
//   xRekey(temporary key →) / discard  the page no longer tracked
//   xTruncate(limit)                   limit > bound and no tracked page at or above it: skipped
//                                      otherwise pcache1's truncate; bound = limit - 1
#pragma once

#include <cstdint>

namespace inferd::db {

// Installs the wrapper; must run before SQLite is first used in the process (Database::Open
// calls it once, first). Returns whether it is installed (false: SQLite was already in use, and
// pcache1 serves unwrapped — correct, only slower).
bool InstallPageCache();

struct PageCacheStats {
  uint64_t truncates_skipped = 0;  // could drop nothing: pcache1 not called
  uint64_t truncates_passed = 0;   // went to pcache1
  uint64_t temporary_rekeys = 0;   // pages rekeyed to the lock-byte page by B-tree balancing
};
PageCacheStats GetPageCacheStats();

}  // namespace inferd::db
