#include "queue/id_index.h"

#include <algorithm>
#include <unordered_set>

namespace inferd::queue::internal {

IdIndex::IdIndex(size_t flush_rows, size_t chunk_rows, size_t key_ranges)
    : flush_rows_(flush_rows), chunk_rows_(chunk_rows), key_ranges_(key_ranges) {}

uint64_t IdIndex::KeyRange(int64_t id_hash) const {
  // Flipping the sign bit maps int64_t's order onto uint64_t's; the top 64 bits of the product
  // then split [0, 2^64) into key_ranges_ equal, ordered slices.
  const uint64_t key = static_cast<uint64_t>(id_hash) ^ (uint64_t{1} << 63);
  return static_cast<uint64_t>((static_cast<unsigned __int128>(key) * key_ranges_) >> 64);
}

void IdIndex::Restore(std::vector<Entry> tail) {
  std::lock_guard lock(mu_);
  pending_ = std::move(tail);
}

void IdIndex::Add(std::span<const Entry> committed) {
  if (committed.empty()) return;
  std::lock_guard lock(mu_);
  pending_.insert(pending_.end(), committed.begin(), committed.end());
}

void IdIndex::Lookup(int64_t id_hash, std::vector<int64_t>& seqs) const {
  std::lock_guard lock(mu_);
  for (const Entry& e : pending_) {
    if (e.id_hash == id_hash) seqs.push_back(e.seq);
  }
  auto [first, last] =
      std::equal_range(writing_.begin(), writing_.end(), Entry{id_hash, 0},
                       [](const Entry& a, const Entry& b) { return a.id_hash < b.id_hash; });
  for (auto it = first; it != last; ++it) seqs.push_back(it->seq);
}

void IdIndex::Forget(std::span<const Entry> deleted) {
  if (deleted.empty()) return;
  std::unordered_set<int64_t> seqs;
  seqs.reserve(deleted.size());
  for (const Entry& e : deleted) seqs.insert(e.seq);
  auto gone = [&](const Entry& e) { return seqs.contains(e.seq); };
  std::lock_guard lock(mu_);
  std::erase_if(pending_, gone);
  // Only the part of the set not yet written: the writer calls this after ChunkDone, which has
  // moved written_ past this transaction's chunk.
  writing_.erase(std::remove_if(writing_.begin() + static_cast<std::ptrdiff_t>(written_),
                                writing_.end(), gone),
                 writing_.end());
}

IdIndex::Chunk IdIndex::NextChunk() {
  std::lock_guard lock(mu_);
  if (writing_.empty()) {
    if (pending_.size() < flush_rows_) return {};
    writing_.swap(pending_);
    pending_.clear();
    through_ = 0;
    for (const Entry& e : writing_) through_ = std::max(through_, e.seq);
    std::sort(writing_.begin(), writing_.end(), [](const Entry& a, const Entry& b) {
      return a.id_hash != b.id_hash ? a.id_hash < b.id_hash : a.seq < b.seq;
    });
    written_ = 0;
  }
  offered_ = std::min(writing_.size(), written_ + chunk_rows_);
  if (written_ < offered_) {
    const uint64_t range = KeyRange(writing_[written_].id_hash);
    auto end = std::find_if(writing_.begin() + static_cast<std::ptrdiff_t>(written_) + 1,
                            writing_.begin() + static_cast<std::ptrdiff_t>(offered_),
                            [&](const Entry& e) { return KeyRange(e.id_hash) != range; });
    offered_ = static_cast<size_t>(end - writing_.begin());
  }
  return Chunk{true, std::span<const Entry>(writing_.data() + written_, offered_ - written_),
               offered_ == writing_.size(), through_};
}

void IdIndex::ChunkDone(bool committed) {
  std::lock_guard lock(mu_);
  if (writing_.empty() || !committed) return;
  written_ = offered_;
  if (written_ == writing_.size()) {
    writing_.clear();
    writing_.shrink_to_fit();
    written_ = offered_ = 0;
  }
}

}  // namespace inferd::queue::internal
