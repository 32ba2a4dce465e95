// DataStore and FileData: the contents of regular files in a volume
// (docs/format/chunks.md). A regular file is an *inode file* in tree/ (magic,
// version, random 128-bit file id, plaintext size, MAC) plus chunk files in
// objects/<first byte of id, hex>/<id hex>/<chunk index>, each holding
// `chunk_blocks` 4 KiB blocks with two tag slots per block (section 4 of
// DESIGN.md), and a dirty-chunk log that makes torn blocks after a power cut
// read back as torn pages instead of EIO (section 4a).
//
// Thread safety: DataStore and FileData are safe for concurrent use.
// FileData uses block-range locks: reads and writes of different blocks of
// one file proceed in parallel; sub-block writes read-modify-write under an
// exclusive lock of that block only.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/encoding.h"
#include "common/result.h"
#include "store/backing.h"
#include "store/volume_keys.h"

namespace cfs::store {

constexpr uint32_t kBlockSize = 4096;
constexpr uint32_t kDefaultChunkBlocks = 256;

struct DataStoreOptions {
  uint32_t chunk_blocks = kDefaultChunkBlocks;
  bool read_only = false;
  // Key generation of a block write = seq >> generation_shift, so a chunk
  // key does at most 2^generation_shift encryptions (format: 24; lower
  // only in tests, the reader does not depend on it).
  uint32_t generation_shift = 24;
  // Bound of the DataStore-wide cache of open chunk-file descriptors.
  size_t max_open_chunk_fds = 2048;
  // The dirty-chunk log is compacted (at the next Sync) once it holds more
  // records than this.
  uint64_t dirty_log_compact_records = 4096;
  // A chunk whose every change since its last full fdatasync overwrote
  // written blocks is made durable without its metadata when the backing
  // allows it (Backing::SyncOverwrites); false: always fdatasync.
  bool sync_overwrites_in_place = true;
};

// Counters exported by `cipherfs stats` (relaxed atomics).
struct DataCounters {
  std::atomic<uint64_t> bytes_read{0}, bytes_written{0};
  std::atomic<uint64_t> blocks_encrypted{0}, blocks_decrypted{0};
  std::atomic<uint64_t> auth_failures{0}, cow_breaks{0}, torn_blocks_repaired{0};
  std::atomic<uint64_t> dirty_log_commits{0};
  // FileData::SyncAhead runs, and datasyncs answered by one (JoinSyncAhead).
  std::atomic<uint64_t> syncs_ahead{0}, syncs_joined{0};
  // Chunk syncs made with Backing::SyncOverwrites, and with Fsync.
  std::atomic<uint64_t> chunk_syncs_in_place{0}, chunk_syncs_full{0};
};

class FileData;

class DataStore {
 public:
  // `volume_dirfd`: the volume directory (holds objects/ and the dirty-chunk
  // log); duplicated, the caller keeps its own. `keys` null: unencrypted
  // volume (same layout, plaintext data, MACs replaced by SHA-256 checksums).
  // Creates objects/ and the log if missing (a new volume).
  static Result<std::unique_ptr<DataStore>> Open(Backing* backing, int volume_dirfd,
                                                 const VolumeKeys* keys, DataStoreOptions options);
  ~DataStore();

  // True if the volume was not closed cleanly since it was last opened
  // (daemon killed, power cut). Set by Open, cleared by CloseClean.
  bool unclean() const;
  // After an unclean shutdown: for every chunk in the dirty-chunk log,
  // every block whose slots both fail to authenticate is re-tagged from its
  // newest slot (or becomes a hole if no slot was ever written), logged with
  // file id and block number, and counted. Returns the count.
  Result<uint64_t> RecoverTornBlocks();

  // Writes a fresh inode file (new random file id, size 0) into `inode_fd`,
  // an empty regular file the caller just created. Not fsynced.
  Status InitInodeFile(int inode_fd);
  // InitInodeFile, then the new file's contents opened on `creator_fd`
  // itself (an O_RDWR descriptor of the new inode file, which the FileData
  // takes over and closes): no reopen, no read of what was just written.
  Result<std::shared_ptr<FileData>> CreateFile(int creator_fd);
  // Verified size of the file behind an inode file, without opening chunks.
  Result<uint64_t> ReadSize(int inode_fd);
  // Opens the contents behind an inode file; the FileData keeps its own
  // descriptor, reopened from `inode_fd` (which may be O_PATH). kDataLoss
  // when the inode file does not verify.
  Result<std::shared_ptr<FileData>> OpenFile(int inode_fd);
  // Deletes the chunks of a file whose last link is gone and last open closed.
  Status DeleteFileData(const FileId& id);
  // Makes the dirty-chunk log and all open files durable and marks the
  // volume clean (clean unmount).
  Status CloseClean();

  // Snapshots (copy-on-write): while held, writes wait. After a snapshot
  // hard-linked chunk files, BumpCowEpoch() makes writers re-check link counts.
  void BeginWriteBarrier();
  void EndWriteBarrier();
  void BumpCowEpoch();

  // Snapshots with a write pause that does not grow with the data
  // (docs/snapshots.md, "The O(1) write pause"). Inside the write barrier,
  // BeginSnapshotLinks records the instant and bumps the copy-on-write
  // epoch: from then on, before its first change to a chunk (write, punch,
  // truncate, delete), the data path links the chunk file as it was into
  // `snapshot_objects_fd` (the new volume's objects/, kept open by the
  // caller until FinishSnapshotLinks returns). After the barrier,
  // FinishSnapshotLinks links every other chunk file that existed at the
  // instant, stops preserving and returns the number of chunk files linked,
  // or the first failure (the snapshot is then incomplete: discard it).
  // One snapshot at a time: FailedPrecondition while one is pending.
  // `refresh`: `snapshot_objects_fd` holds an earlier snapshot's chunks,
  // brought to this instant in place (SnapshotLinks, store/chunk_cow.h);
  // the count returned is then of the chunk files linked anew.
  Status BeginSnapshotLinks(int snapshot_objects_fd, bool refresh = false);
  Result<uint64_t> FinishSnapshotLinks();

  DataCounters& counters();
  uint32_t chunk_blocks() const;

 private:
  friend class FileData;
  // The FileData of an inode file whose record verified: the file already
  // open (then `fd` is closed), or a new one owning `fd`.
  Result<std::shared_ptr<FileData>> Adopt(int fd, const FileId& id, uint64_t size);
  DataStore() = default;
  struct Impl;
  // Shared with every FileData: a file may be released (and sync its size)
  // after the store object itself is gone, e.g. when the FUSE layer drops
  // its last handle late in unmount.
  std::shared_ptr<Impl> impl_;
};

class FileData {
 public:
  ~FileData();
  const FileId& id() const;
  uint64_t size() const;
  // Reads up to `length` bytes at `offset`; short only at end of file.
  // kDataLoss (EIO) when a written block fails authentication.
  Result<size_t> Read(uint64_t offset, size_t length, uint8_t* out);
  // Writes all of `data`; extends the size (persisted to the inode file's
  // host page cache before returning, so a killed daemon loses nothing).
  Result<size_t> Write(uint64_t offset, ByteView data);
  Status Truncate(uint64_t new_size);
  // mode: 0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE,
  // FALLOC_FL_ZERO_RANGE[|FALLOC_FL_KEEP_SIZE]; others kUnimplemented.
  Status Fallocate(int mode, uint64_t offset, uint64_t length);
  // SEEK_DATA / SEEK_HOLE over authenticated allocation maps; ENXIO past EOF.
  Result<uint64_t> Seek(uint64_t offset, int whence);
  // Data, tags, chunk headers and the inode file are durable on return.
  // A write error seen on the backing side since the last Sync is returned.
  Status Sync(bool datasync);
  // True right after the first write since a Sync, when the sync cycle
  // before it had one or two writes: a log (WAL, redo log) whose fsync
  // comes next. Cheap; a hint only.
  bool WantsSyncAhead() const;
  // A head start for that fsync: syncs the chunks written since the last
  // Sync (not the size nor directory entries), so the device flush runs
  // while the caller's fsync is still on its way. An error goes to the
  // fsyncs that joined, else to the next Sync.
  void SyncAhead();
  // For a datasync: if a SyncAhead in flight makes durable everything a
  // Sync(true) would now, registers `done` to be called with its result
  // (on the SyncAhead's thread, once) and returns true; else false (the
  // caller runs Sync; `done` is dropped uncalled).
  bool JoinSyncAhead(std::function<void(const Status&)> done);
  // Bytes of backing storage holding written blocks (for st_blocks).
  uint64_t AllocatedBytes() const;

 private:
  friend class DataStore;
  FileData() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cfs::store
