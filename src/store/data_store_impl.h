// Internal state of DataStore and FileData (not part of the API; only
// src/store/data_store*.cc, file_data*.cc and chunk*.cc include it).
//
// Lock order (outermost first):
//   DataStore::Impl::gate (writers inside; closed by snapshots and log
//     compaction)
//   FileData::Impl::ranges (block-range locks)
//   ChunkState::cow_mu (shared by writers of the chunk, exclusive for a
//     copy-on-write break)
//   ChunkState::mu, then FileData::Impl::mu, then DataStore::Impl::files_mu
//     (never in the other order; held only for short work)
//   DataStore::Impl::snapshot_mu, then SnapshotLinks' mutex (a writer
//     holds cow_mu exclusively while it preserves a chunk)
//   ChunkState::sync_mu (held across a chunk's fdatasync, taken with no
//     other lock held; writers never wait for it)
//   DirtyLog and FdCache internal mutexes (leaves)
#pragma once

#include <sys/types.h>

#include <array>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "store/chunk_cow.h"
#include "store/chunk_format.h"
#include "store/data_store.h"
#include "store/dirty_log.h"
#include "store/fd_cache.h"
#include "store/range_lock.h"

namespace cfs::store {

struct FileIdHash {
  size_t operator()(const FileId& id) const {
    uint64_t a = 0;
    for (int i = 0; i < 8; ++i) a = (a << 8) | id[i];
    return size_t(a);
  }
};

// In-memory state of one chunk of an open file, loaded lazily.
struct ChunkState {
  explicit ChunkState(uint64_t i) : index(i) {}
  const uint64_t index;

  std::mutex mu;           // guards the fields below up to `sync`
  bool loaded = false;     // header read (or found missing)
  bool exists = false;     // the chunk file exists with a header
  bool seq_known = false;  // `seq` initialised from the tag table
  Status error;            // the header did not verify: every block is EIO
  format::ChunkHeader header;  // its map is the authoritative in-memory map
  std::shared_ptr<ChunkSyncState> sync;  // from the dirty log (null in read-only)
  uint64_t unlogged_written = 0;         // writes when no log entry (read-only never)

  // Since the last successful sync (for honest retries after a failed
  // fdatasync, which may have dropped the pages): blocks written and
  // punched, and the seq counter when that sync started.
  std::vector<uint64_t> wrote_bits, punched_bits;
  uint64_t sync_floor = 0;
  bool sync_failed = false;
  // Serializes this chunk's fdatasyncs, so that a sync finding its writes
  // covered by one that just ended (a sync ahead) skips its own flush.
  std::mutex sync_mu;

  // Commits without the chunk file's metadata (Backing::SyncOverwrites):
  // `host_allocs` is bumped after every change that may allocate or free
  // host blocks of the chunk file (a write over a block not known written
  // or past the checked size, a punch, fallocate, a new or replaced file),
  // before the change is counted as written. A full fdatasync of a fully
  // written chunk that found every block allocated records the count it
  // started at (`overwrites_only_at`, guarded by `mu`) and the size it saw;
  // while the count has not moved, a sync may leave the metadata alone
  // (docs/format/chunks.md 2.6).
  std::atomic<uint64_t> host_allocs{0};
  uint64_t overwrites_only_at = ~uint64_t{0};
  uint64_t host_bytes_checked = 0;

  std::atomic<uint64_t> finished_changes{0};  // writes and punches ended (UnsyncedMark)
  std::atomic<uint64_t> seq{0};  // largest seq used in this chunk
  std::shared_mutex cow_mu;      // writers shared; copy-on-write break exclusive
  std::atomic<uint64_t> cow_checked_epoch{~uint64_t{0}};
};

struct DataStore::Impl {
  Backing* backing = nullptr;
  int volume_fd = -1;   // owned (reopened from the caller's)
  int objects_fd = -1;  // owned
  const VolumeKeys* keys = nullptr;
  DataStoreOptions options;
  std::unique_ptr<format::MetaAuth> auth;
  DataCounters counters;
  std::unique_ptr<DirtyLog> log;  // null when read-only
  std::unique_ptr<FdCache> fds;
  uint64_t data_offset = 0;  // D of chunks.md
  // The backing overwrites in place (Backing::OverwritesInPlace): chunk
  // syncs may skip the file's metadata where nothing was allocated.
  bool overwrites_in_place = false;
  dev_t volume_dev = 0;  // the flush of SyncOverwrites reaches this filesystem only

  WriteGate gate;
  std::atomic<uint64_t> cow_epoch{1};
  std::mutex snapshot_mu;                   // guards `snapshot_links` (a leaf lock)
  std::shared_ptr<SnapshotLinks> snapshot_links;  // a snapshot's chunks still being linked
  std::mutex compact_mu;  // serializes log compaction and CloseClean

  // objects/<hh>, opened once each and kept: a live volume never removes
  // them (-1: not opened yet). HashDirFd gives one out.
  std::array<std::atomic<int>, 256> hash_dir_fds;
  // The descriptor of objects/<hh> for `id` (owned by the store); with
  // `create`, the directory is made if missing and *created (if given)
  // says so.
  Result<int> HashDirFd(const FileId& id, bool create = false, bool* created = nullptr);

  std::mutex files_mu;  // guards `files` and `pending_inode_fds`
  std::unordered_map<FileId, std::weak_ptr<FileData>, FileIdHash> files;
  std::vector<int> pending_inode_fds;  // closed files whose size was not synced

  uint64_t chunk_bytes() const { return uint64_t{options.chunk_blocks} * format::kBlock; }
  std::string FileDirName(const FileId& id) const;  // "<hh>/<id32>"
  Status SyncPendingInodes();
  // A fresh inode record (new file id, size 0) written into `inode_fd`;
  // with `may_reopen`, an O_PATH or read-only `inode_fd` is reopened
  // privately for the write (else that is EBADF).
  Result<format::InodeRecord> WriteNewInode(int inode_fd, bool may_reopen);
  // Before the first change to chunk `c` of file `id` since a snapshot
  // instant whose chunks are still being linked: links it into the snapshot
  // (store/chunk_cow.h). Cheap when no snapshot is pending.
  void PreserveForSnapshot(const FileId& id, uint64_t c);
  Status MaybeCompact();
  Result<uint64_t> Recover();  // chunk_recover.cc
  Status RecoverChunk(const FileId& id, uint64_t c, uint64_t* repaired);
  // Syncs every logged chunk written since its last sync (closed files too).
  Status SyncDirtyChunks();

  Impl() {
    for (auto& fd : hash_dir_fds) fd.store(-1);
  }
  // Final teardown: syncs closed files' sizes, closes the log and descriptors.
  ~Impl();
};

// Runs job(0..n-1) on up to 8 threads (the caller is one of them):
// concurrent fdatasyncs let the host file system share journal commits and
// device flushes, where one thread would pay a flush per file. Returns the
// first error; every job runs.
Status ParallelSync(size_t n, const std::function<Status(size_t)>& job);

struct FileData::Impl {
  std::shared_ptr<DataStore::Impl> store;  // keeps the store alive while the file is
  FileId id{};
  int inode_fd = -1;  // owned
  std::unique_ptr<format::BlockCodec> codec;
  RangeLock ranges;
  std::atomic<uint64_t> size{0};
  std::atomic<uint64_t> allocated_blocks{0};  // over loaded chunks
  // No written block (nor valid slot) lies past the size. False after open
  // (a killed daemon or a failed extending write may have left some) until
  // the first extension cleans up; growing must only ever expose zeros.
  std::atomic<bool> eof_clean{false};

  std::mutex mu;  // guards the fields below
  std::map<uint64_t, std::shared_ptr<ChunkState>> chunks;
  // Chunks changed since their last good sync (added when a write or
  // punch has finished, dropped by Sync once clean): what Sync looks at,
  // instead of every loaded chunk of a large file.
  std::set<uint64_t> unsynced;
  int dir_fd = -1;            // objects/<hh>/<id32>, opened lazily
  bool dir_dirty = false;     // entries created in dir_fd since the last sync
  bool dir_absent = false;    // OpenDir(false) found no chunk directory (mu)
  bool parent_dirty = false;  // dir_fd itself (or objects/<hh>) was created
  uint64_t size_version = 0, size_synced = 0;
  Status sticky;              // first backing error since the last Sync
  Status poison;              // written data lost after a failed sync: every Sync fails
  bool inode_sync_failed = false;
  bool all_chunks_loaded = false;
  // Writes since the last Sync began, and how many the sync cycle before
  // had: a file synced after every write or two is a log (WantsSyncAhead).
  std::atomic<uint32_t> cycle_writes{0};
  std::atomic<uint32_t> last_cycle_writes{0};
  // False until the first Sync took over what earlier FileData objects of
  // this file (closed since) left unsynced: dirty chunks in the log, chunk
  // directory entries, the size.
  bool adopted = false;

  ~Impl();

  // Chunk bookkeeping (file_data_chunks.cc).
  std::shared_ptr<ChunkState> Chunk(uint64_t c);
  Status Load(ChunkState& cs);
  Result<int> OpenDir(bool create);
  Result<std::shared_ptr<ChunkFd>> Fd(uint64_t c, bool create);
  Status Create(ChunkState& cs);
  Status WriteHeader(ChunkState& cs, int fd);  // cs.mu held
  // Before modifying a chunk (barrier held shared): logs it, breaks
  // copy-on-write, creates it; returns holding cow_mu shared.
  Result<std::shared_lock<std::shared_mutex>> PrepareWrite(ChunkState& cs, bool create);
  Status BreakCow(ChunkState& cs);
  Status EnsureSeq(ChunkState& cs, int fd);  // cs.mu held
  // First Sync only: attaches this file's chunks that are still dirty in
  // the log; true if there were any (their directory entries then need a
  // sync too).
  bool AdoptDirtyChunks();
  // Puts the chunk in `unsynced` when the calling write or punch ends
  // (after its every bump of the sync counters); takes `mu` alone.
  struct UnsyncedMark {
    Impl* f;
    ChunkState* cs;
    ~UnsyncedMark() {
      cs->finished_changes.fetch_add(1);
      std::lock_guard<std::mutex> l(f->mu);
      f->unsynced.insert(cs->index);
    }
  };
  void NoteWritten(ChunkState& cs);
  void NoteError(const Status& s);

  // Block I/O within one chunk (chunk_io.cc). `b0 + n <= chunk_blocks`.
  Status ReadBlocks(ChunkState& cs, uint32_t b0, uint32_t n, uint8_t* out);
  Status WriteBlocks(ChunkState& cs, uint32_t b0, uint32_t n, const uint8_t* plain);
  Status PunchBlocks(ChunkState& cs, uint32_t b0, uint32_t n);

  // File-level helpers (file_data.cc).
  Status SyncImpl(bool datasync);
  // The chunks in `unsynced`, and the dirty ones among them with their
  // sync state and finished writes.
  struct SyncJob {
    std::shared_ptr<ChunkState> state;
    std::shared_ptr<ChunkSyncState> sync;
    uint64_t written;
  };
  struct SyncBatch {
    std::vector<std::shared_ptr<ChunkState>> states;
    std::vector<SyncJob> jobs;
  };
  // Takes `mu`, then each chunk's mu: the caller holds neither.
  SyncBatch CollectUnsynced();
  // Syncs the batch's jobs (a kDataLoss poisons the file); its chunks found
  // clean afterwards leave `unsynced`.
  Status SyncBatchChunks(const SyncBatch& batch);

  // A SyncAhead in flight (at most one per file; `ahead` under mu): the
  // jobs it syncs and the fsyncs that joined it.
  struct Ahead {
    std::vector<SyncJob> covers;
    std::vector<std::function<void(const Status&)>> joined;
    // Does this sync make every job of `now` durable (same sync state, at
    // least as many finished writes)?
    bool Covers(const std::vector<SyncJob>& now) const;
  };
  std::shared_ptr<Ahead> ahead;
  Status SyncChunk(ChunkState& cs, ChunkSyncState& sync);
  // A chunk file's host size and holes ([lo, hi); unwritten extents count
  // as holes).
  struct HostExtents {
    dev_t dev = 0;
    uint64_t size = 0;
    std::vector<std::pair<uint64_t, uint64_t>> holes;
  };
  Status MapHoles(int fd, HostExtents* out);
  // Header, and slots and data of every block the map says written, lie
  // in allocated ranges below the size. Requires cs.mu.
  bool WrittenBlocksAllocated(const ChunkState& cs, const HostExtents& e) const;
  // After a failed fdatasync: are the blocks written/punched since the last
  // good sync still on disk? (kDataLoss if not.)
  Status VerifyAfterFailedSync(ChunkState& cs, int fd);
  uint64_t LoadedAllocatedBlocks();
  Status PersistSize(uint64_t new_size);  // mu held
  Status WriteRange(uint64_t offset, ByteView data);
  Status ZeroRange(uint64_t offset, uint64_t end);  // punches whole blocks, RMWs edges
  // Deletes chunk files wholly past `size` and zeros [size, zero_end) (range
  // lock over [size / 4096, inf) held exclusively).
  Status DropBeyond(uint64_t size, uint64_t zero_end);
  // Before the size grows to `end`: cleans up past the size unless eof_clean.
  Status PrepareExtend(uint64_t end);
  Status ReadModifyWrite(uint64_t block, uint32_t from, ByteView data);  // `data` at byte `from`
  uint64_t BlockNo(const ChunkState& cs, uint32_t b) const {
    return cs.index * store->options.chunk_blocks + b;
  }
};

}  // namespace cfs::store
