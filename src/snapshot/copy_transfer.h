// Moving chunk files between volumes as the ciphertext they are (DESIGN.md
// rule 4; docs/regions.md). A sender reads a chunk file whole and hands it
// to a ChunkReceiver. Across a transit (TLS) the sender's SHA-256 goes
// with it and the receiver hashes what arrived and refuses a mismatch
// (DataLoss); in process (one buffer, no transit) it is hashed once, for
// the manifest. The receiver writes the chunk under a temporary name and
// renames it into place. Durability is batched: once
// kSyncBatchBytes have arrived (and at Finish), one Backing::SyncFilesystem
// (syncfs; an fsync per chunk for a batch of few chunks) makes the batch
// durable, then its chunks are recorded in a manifest. The manifest (one line per chunk made durable) lets a rerun skip
// what an interrupted run already moved; a chunk written but not yet
// recorded is sent again. Chunks are never decrypted: the copy needs no key.
// Thread safety: TransferChunks runs its own worker threads; LocalReceiver
// may be called from several threads at once. One transfer per destination
// at a time (the caller holds the staging folder's lock).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "common/encoding.h"
#include "common/result.h"
#include "crypto/mac.h"
#include "store/backing.h"
#include "store/tree_fd.h"

namespace cfs::snapshot {

// Largest chunk file accepted (a chunk of kMaxChunkBlocks blocks plus its
// header and tag table is well below); anything bigger is not a chunk.
inline constexpr uint64_t kMaxChunkFileSize = 64ull << 20;
// Bytes received between two durability passes (one syncfs each).
inline constexpr uint64_t kSyncBatchBytes = 256ull << 20;
// A batch of fewer chunks is made durable by an fsync per chunk file.
inline constexpr size_t kSyncFsMinChunks = 32;

// A chunk file of a volume: "objects/<ab>/<file id>/<index>" relative to
// objects/ ("<ab>/<file id>/<index>"), with what identifies its version.
struct ChunkFile {
  std::string rel;
  uint64_t size = 0;
  uint64_t inode = 0;
  int64_t mtime_ns = 0;
};

// The chunk files of the volume in `volume_dir`, sorted by rel. Leftover
// "<n>.cow" files of interrupted copy-on-write breaks are not chunks.
Result<std::vector<ChunkFile>> ListChunkFiles(store::Backing* backing, const std::string& volume_dir);

// Receives chunks into `dst_volume_dir`/objects and records each in the
// manifest file `manifest_path` ("<rel> <size> <sha256 hex>" lines).
class ChunkReceiver {
 public:
  virtual ~ChunkReceiver() = default;
  // Verifies `data` against `sent` (the sender's SHA-256). Ok once the chunk
  // is in place under its name (durable and recorded at the end of its
  // batch, at the latest at Finish); DataLoss on a digest mismatch (nothing
  // written); the I/O error otherwise.
  virtual Status Receive(const std::string& rel, ByteView data, const crypto::Digest& sent) = 0;
  // Hands over a chunk as the sender read it. The SHA-256 is taken where
  // it is needed, once per byte: a receiver across a transit (TLS) gets the
  // sender's digest and checks what arrived against it (Receive); an
  // in-process receiver shares the sender's buffer -- nothing lies between
  // read and write to check -- and takes it once for its manifest.
  virtual Status Deliver(const std::string& rel, ByteView data) { return Receive(rel, data, crypto::Sha256(data)); }
  // Removes a chunk (incremental shipping: gone from the source).
  virtual Status Remove(const std::string& rel) = 0;
  // Makes every chunk received and every directory written durable, and
  // the manifest synced. Ok: all of it is durable.
  virtual Status Finish() = 0;
};

class LocalReceiver final : public ChunkReceiver {
 public:
  // Opens (creating) the manifest; `dst_volume_dir`/objects must exist.
  static Result<std::unique_ptr<LocalReceiver>> Open(store::Backing* backing, const std::string& dst_volume_dir,
                                                     const std::string& manifest_path);
  Status Receive(const std::string& rel, ByteView data, const crypto::Digest& sent) override;
  Status Deliver(const std::string& rel, ByteView data) override;
  Status Remove(const std::string& rel) override;
  Status Finish() override;

  // The chunks a previous run recorded whose file is still there with the
  // recorded size (read once at Open).
  const std::map<std::string, uint64_t>& done() const { return done_; }

 private:
  LocalReceiver(store::Backing* backing, store::ScopedFd objects, store::ScopedFd manifest)
      : b_(backing), objects_(std::move(objects)), manifest_(std::move(manifest)),
        objects_fd_(objects_.get()), manifest_fd_(manifest_.get()) {}
  struct Arrived {
    std::string rel;
    uint64_t size;
    crypto::Digest digest;
  };
  Result<int> OpenChunkDir(const std::string& rel, bool create);
  // Makes the chunks of `batch` durable (one syncfs; fsync file by file and
  // of the directories when the backing has no syncfs), then records them.
  Status SyncAndRecord(std::vector<Arrived> batch);
  Status FsyncChunksAndDirs(const std::vector<Arrived>& batch);
  // Writes a chunk whose digest is known good and queues it for its batch.
  Status Store(const std::string& rel, ByteView data, const crypto::Digest& digest);

  store::Backing* b_;
  store::ScopedFd objects_;
  store::ScopedFd manifest_;
  int objects_fd_;
  int manifest_fd_;
  std::map<std::string, uint64_t> done_;  // filled by Open only
  std::mutex sync_mu_;                    // one durability pass at a time; taken before mu_
  std::mutex mu_;                         // guards dirs_, pending_, pending_bytes_ and manifest appends
  std::set<std::string> dirs_;            // chunk directories touched ("<ab>/<file id>")
  std::vector<Arrived> pending_;          // in place, not yet known durable nor recorded
  uint64_t pending_bytes_ = 0;
};

struct TransferProgress {
  uint64_t chunks_total = 0;    // chunks to send in this run
  uint64_t chunks_done = 0;     // sent and verified in this run
  uint64_t chunks_skipped = 0;  // already moved by an earlier run
  uint64_t bytes_total = 0;
  uint64_t bytes_done = 0;
};

struct TransferOptions {
  unsigned threads = 2;
  // Called after each chunk (serialized); the callee throttles its output.
  std::function<void(const TransferProgress&)> progress;
  // Polled before each chunk; true stops the transfer (Cancelled-like
  // Unavailable status "interrupted").
  const std::atomic<bool>* stop = nullptr;
  // Test hooks (CIPHERFS_TEST_COPY_CORRUPT / CIPHERFS_TEST_COPY_STOP_AFTER):
  // flip one byte of the n-th chunk (0-based, in send order) after the
  // sender hashed it; stop as if interrupted after n chunks arrived.
  int64_t corrupt_chunk = -1;
  int64_t stop_after = -1;
};

// Sends `chunks` of `src_volume_dir` to `receiver` with `options.threads`
// workers. Stops at the first error (its status is returned; chunks that
// arrived before it stay recorded).
Status TransferChunks(store::Backing* backing, const std::string& src_volume_dir,
                      const std::vector<ChunkFile>& chunks, ChunkReceiver* receiver, const TransferOptions& options,
                      TransferProgress* progress);

// The chunks of `all` that `done` (rel -> size of chunks an earlier run
// moved) does not hold with the same size; counts the others in *skipped.
std::vector<ChunkFile> ChunksToSend(std::vector<ChunkFile> all, const std::map<std::string, uint64_t>& done,
                                    uint64_t* skipped);

// Makes a received volume image in `volume_dir` (tree/, objects/, its
// directories, volume.yaml) durable: one Backing::SyncFilesystem, or
// SyncVolumeCopy file by file where the backing has none.
Status SyncReceivedVolume(store::Backing* backing, const std::string& volume_dir);

// Reads a whole chunk file into *data (resized to it; a buffer reused
// from chunk to chunk costs no page faults), refusing anything over
// kMaxChunkFileSize.
Status ReadChunkFile(store::Backing* backing, int objects_fd, const std::string& rel, Bytes* data);

}  // namespace cfs::snapshot
