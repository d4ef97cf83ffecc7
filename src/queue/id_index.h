// Internal to queue/: finding invocations by InferenceId without a random-key SQLite index on the
// insert path.
//
// InferenceIds are random, so an index on them puts every insert on a random index page: a batch
// of N inserts dirtied N pages, each written whole to the WAL (≈ 1.8 KB of the ≈ 2.5 KB written
// per accept, and ≈ 10 % of the CPU of an accept, measured with and without the index). Instead
// the id hashes of new rows are kept in memory and written to the `invocation_ids` table
// (id_hash, seq) in bulk: once `flush_rows` have gathered, they are sorted and written in chunks,
// one chunk inside each of the writer's next transactions, so each chunk touches one key range of
// the table's pages instead of one page per row. A chunk never crosses a boundary of the
// `key_ranges` equal slices of the hash space (nor holds more than `chunk_rows`): the pages it
// touches are about 1/key_ranges of the table however large the table has grown, so no
// transaction is held up by a large flush. (Chunks of 1,024 rows out of a set of 16,384 touched
// 1/16 of the table each: 600 KB more in one commit once it held 450,000 rows, and 94 % of the
// slowest 1 % of accepts rode those commits; docs/performance-rounds.md, twelfth round.)
// `invocation_ids_through` records the highest seq whose set is fully written; at open, the rows
// after it are read back into memory (a crash mid-set writes some of them twice: INSERT OR IGNORE).
//
// Lookups (any thread) see the entries in memory — rows committed and not yet written to the
// table, and the set being written until all of it is committed — and the caller adds what the
// table holds. Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <span>
#include <vector>

namespace inferd::queue::internal {

class IdIndex {
 public:
  struct Entry {
    int64_t id_hash = 0;
    int64_t seq = 0;
  };
  // A chunk of the set being written: insert `entries`; when `last`, set the watermark to
  // `through` in the same transaction.
  struct Chunk {
    bool due = false;  // false: nothing to write now
    std::span<const Entry> entries;
    bool last = false;
    int64_t through = 0;
  };

  // All at least 1 (InvocationStore::Open checks its options).
  IdIndex(size_t flush_rows, size_t chunk_rows, size_t key_ranges);

  // At open: the rows after the watermark (all still to be written).
  void Restore(std::vector<Entry> tail);
  // The writer, once the transaction holding these inserts has committed.
  void Add(std::span<const Entry> committed);
  // Appends to `seqs` the seqs in memory whose id hash is `id_hash`.
  void Lookup(int64_t id_hash, std::vector<int64_t>& seqs) const;

  // The writer, after a transaction that deleted rows has committed: their entries leave memory
  // (the set being written included), so they are never written to the table.
  void Forget(std::span<const Entry> deleted);

  // The writer, inside a transaction: the next chunk to write (`due`; it may hold no entries but
  // the watermark when Forget emptied the rest of a set).
  // Starts a new set once flush_rows entries have gathered and the previous set is written.
  Chunk NextChunk();
  // The writer, after that transaction: whether it committed (if not, the chunk is offered again).
  void ChunkDone(bool committed);

 private:
  // Which of the key_ranges_ slices of the hash space `id_hash` is in (ordered as int64_t is).
  uint64_t KeyRange(int64_t id_hash) const;

  const size_t flush_rows_, chunk_rows_, key_ranges_;
  mutable std::mutex mu_;
  std::vector<Entry> pending_;  // committed rows not yet in a set, in seq order
  std::vector<Entry> writing_;  // the set being written, sorted by (id_hash, seq)
  size_t written_ = 0;          // writing_[0, written_) committed to the table
  size_t offered_ = 0;          // end of the chunk last offered
  int64_t through_ = 0;         // the highest seq of writing_
};

}  // namespace inferd::queue::internal
