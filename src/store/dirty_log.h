// DirtyLog: the dirty-chunk log of a volume (docs/format/chunks.md section
// 4, DESIGN.md 4a). A chunk is recorded durably before its first write after
// being clean (group commit: concurrent writers share one fdatasync; a
// record covers a window of kWindow chunks). Each logged chunk has a
// ChunkSyncState counting completed writes and the writes covered by the
// last sync; the log is compacted to the chunks still dirty. New files
// take their id from NewFileId(): ids logged ahead of use, a batch of
// kReserve per log commit, so creating a file and writing its first chunk
// costs no log commit of its own (one fdatasync per kReserve new files).
// Thread safety: Ensure() and the accessors may be called concurrently.
// Compact() and MarkClean() need the DataStore's write barrier held
// exclusively (no write in flight) and are serialized by the caller.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "store/backing.h"
#include "store/chunk_format.h"

namespace cfs::store {

// Shared by the log entry and the in-memory chunk state.
struct ChunkSyncState {
  std::atomic<uint64_t> written{0};  // writes completed (bumped after each pwrite)
  std::atomic<uint64_t> synced{0};   // value of `written` covered by the last sync
  std::atomic<bool> live{true};      // false once dropped from the log
  bool Dirty() const { return written.load() != synced.load(); }
  // After a successful fdatasync that started when written == w.
  void MarkSynced(uint64_t w);
};

class DirtyLog {
 public:
  static constexpr uint32_t kWindow = 16;
  static constexpr size_t kReserve = 64;

  // Opens (creates) `dirty.log` in the volume directory. Read-only: only
  // reads the state. Read-write: decides unclean(), then marks "open" durably.
  // `compact_after`: records appended before WantsCompaction(); `commits`
  // (may be null) counts log fdatasyncs.
  static Result<std::unique_ptr<DirtyLog>> Open(Backing* backing, int volume_dirfd,
                                                const format::MetaAuth* auth, bool read_only,
                                                uint64_t compact_after, std::atomic<uint64_t>* commits);
  ~DirtyLog();

  bool unclean() const { return unclean_; }
  // Chunks logged by the previous (unclean) run, for recovery.
  std::vector<format::LogRecord> PreviousRecords() const;
  // Salt of this run's block nonces (read-write; docs/format/chunks.md 2.4).
  uint64_t run_salt() const { return run_salt_; }
  // The unclean previous run's salt and the one it carried (0 = unknown).
  std::array<uint64_t, 2> previous_run_salts() const { return previous_salts_; }
  // Recovery done: the previous run's chunks may leave the log.
  void MarkRecovered();

  // Returns once chunk `chunk` of `id` is durably in the log; the state
  // tracks its writes and syncs. Errors of the log write are returned.
  Result<std::shared_ptr<ChunkSyncState>> Ensure(const FileId& id, uint64_t chunk);
  // A fresh random file id whose first kWindow chunks are already durably
  // in the log (refills a pool of kReserve ids with one commit when empty).
  Result<FileId> NewFileId();
  // Entries written since their last sync.
  std::vector<std::pair<format::LogRecord, std::shared_ptr<ChunkSyncState>>> DirtyEntries();
  bool WantsCompaction() const { return appended_.load() > compact_after_; }
  // Barrier held: rewrites the log with only the dirty chunks.
  Status Compact();
  // Barrier held, everything synced: empties the log, state "clean".
  Status MarkClean();
  // Records in the log file now (after the last compaction).
  uint64_t records() const { return appended_.load(); }

 private:
  struct Key {
    FileId id;
    uint64_t chunk;
    bool operator==(const Key& o) const { return chunk == o.chunk && id == o.id; }
  };
  struct KeyHash {
    size_t operator()(const Key& k) const;
  };
  struct Batch {
    Bytes records;
    bool done = false;
    Status status;
  };
  struct Entry {
    std::shared_ptr<ChunkSyncState> state;
    std::shared_ptr<Batch> batch;
  };

  DirtyLog(Backing* backing, int volume_dirfd, const format::MetaAuth* auth)
      : backing_(backing), dirfd_(volume_dirfd), auth_(auth) {}
  Status Load(bool read_only);
  Status WaitDurable(std::unique_lock<std::mutex>& l, const std::shared_ptr<Batch>& b);
  Status WriteBatch(const Bytes& records, uint64_t offset, bool write_header);
  Status WriteHeader(int fd, format::LogState state);
  Bytes EncodeRecords(std::vector<format::LogRecord> records) const;
  // mu_ held: appends the record for chunks [chunk, chunk + kWindow) of
  // `id` to the pending batch and creates their entries.
  void AppendRecord(const FileId& id, uint64_t chunk);

  Backing* backing_;
  int dirfd_;  // not owned
  const format::MetaAuth* auth_;
  int fd_ = -1;
  bool unclean_ = false;
  uint64_t run_salt_ = 0, carried_salt_ = 0;
  std::array<uint64_t, 2> previous_salts_{};
  std::atomic<uint64_t> appended_{0};
  uint64_t compact_after_ = 4096;
  std::atomic<uint64_t>* commits_ = nullptr;

  // Lock order: mu_ is a leaf (no other lock is taken while holding it).
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<Key, Entry, KeyHash> entries_;  // guarded by mu_
  std::vector<format::LogRecord> previous_;          // guarded by mu_
  bool recovered_ = true;                            // guarded by mu_
  std::shared_ptr<Batch> pending_;                   // guarded by mu_
  bool leader_active_ = false;                       // guarded by mu_
  bool header_open_ = false;                         // guarded by mu_
  uint64_t next_offset_ = format::kLogRecordsOffset; // guarded by mu_
  std::vector<FileId> reserved_;                     // guarded by mu_: logged, not handed out
  std::shared_ptr<Batch> reserve_batch_;             // guarded by mu_: commit of reserved_
};

}  // namespace cfs::store
