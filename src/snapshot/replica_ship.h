// Shipping a cross-region replica (docs/regions.md): the replica is a
// volume folder kept as a whole point-in-time image of its source. One
// shipment takes the source snapshot `new_snapshot_dir`, compares its chunk
// files with those of the snapshot shipped last (`old_snapshot_dir`, empty
// for the first shipment) by inode number and size -- copy-on-write gives a
// rewritten chunk a new inode, an untouched one keeps it -- builds the next
// image in `<replica>.ship` (current image hard-linked, changed chunks sent
// as ciphertext and checked by SHA-256 on arrival, removed chunks dropped,
// tree/ brought to the snapshot's) and swaps it with the current image atomically
// (renameat2 RENAME_EXCHANGE). So the replica is always one whole
// crash-consistent image; a failed shipment leaves the previous one.
// Thread safety: the caller holds the replica's lock.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "config/volume_yaml.h"
#include "snapshot/copy_transfer.h"
#include "store/backing.h"

namespace cfs::snapshot {

struct ShipReport {
  TransferProgress transfer;     // changed chunks sent
  uint64_t chunks_unchanged = 0;  // linked from the previous image
  uint64_t chunks_removed = 0;
  int64_t total_us = 0;
  // Where a shipment's time goes (docs/regions.md, figures).
  int64_t snapshot_us = 0;        // the source snapshot (through its daemon when mounted)
  int64_t snapshot_pause_us = 0;  // of which the source's writes were held
  int64_t tree_us = 0;            // tree/ copied into the next image
  int64_t install_us = 0;         // the image made durable and swapped in
};

// Changed (new or rewritten: another inode or size) and removed chunks of
// `now` against `before` (the chunks of the snapshot shipped last).
void DiffChunks(const std::vector<ChunkFile>& before, const std::vector<ChunkFile>& now,
                std::vector<ChunkFile>* changed, std::vector<std::string>* removed, uint64_t* unchanged);

// The next image of a replica being built in `<replica>.ship`: the current
// image's chunks hard-linked, a receiver for changed chunks and removals;
// tree/ is the caller's (copied with CopyOptions::reuse, or unpacked: then
// `keep_tree` false, and there is none). After an Install the folder keeps
// the image it replaced, and the next Open brings that one up to date in
// place (objects relinked only where they differ, tree/ entries kept where
// equal): a shipment then makes and frees host inodes for what changed
// only, not for every directory and file of the volume. Destroying it
// without Install removes the staging folder.
class ShipStaging {
 public:
  static Result<std::unique_ptr<ShipStaging>> Open(store::Backing* backing, const std::string& replica_dir,
                                                   bool keep_tree = true);
  ~ShipStaging();
  const std::string& dir() const { return staging_; }
  LocalReceiver* receiver() { return receiver_.get(); }
  // Writes the descriptor, makes the image durable and swaps it with the
  // current one (atomic); the previous image stays in the staging folder.
  Status Install(const config::VolumeDescriptor& d);

 private:
  ShipStaging(store::Backing* b, std::string replica_dir)
      : b_(b), replica_(std::move(replica_dir)), staging_(replica_ + ".ship") {}
  store::Backing* b_;
  std::string replica_, staging_;
  bool installed_ = false;
  std::unique_ptr<LocalReceiver> receiver_;
};

// Ships to `replica_dir` (created on the first shipment) with descriptor
// `d`. On failure the previous image (if any) is untouched.
Status ShipImage(store::Backing* backing, const std::string& new_snapshot_dir, const std::string& old_snapshot_dir,
                 const std::string& replica_dir, const config::VolumeDescriptor& d, const TransferOptions& options,
                 ShipReport* report);

}  // namespace cfs::snapshot
