// Shipping a cross-region replica (docs/regions.md): the replica is a
// volume folder kept as a whole point-in-time image of its source. One
// shipment takes the source snapshot `new_snapshot_dir`, compares its chunk
// files with those of the snapshot shipped last (`old_snapshot_dir`, empty
// for the first shipment) by inode number and size -- copy-on-write gives a
// rewritten chunk a new inode, an untouched one keeps it -- builds the next
// image in `<replica>.ship` (current image hard-linked, changed chunks sent
// as ciphertext and checked by SHA-256 on arrival, removed chunks dropped,
// tree/ copied anew) and swaps it with the current image atomically
// (renameat2 RENAME_EXCHANGE). So the replica is always one whole
// crash-consistent image; a failed shipment leaves the previous one.
// Thread safety: the caller holds the replica's lock.
#pragma once

#include <string>

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
};

// Ships to `replica_dir` (created on the first shipment) with descriptor
// `d`. On failure the previous image (if any) is untouched.
Status ShipImage(store::Backing* backing, const std::string& new_snapshot_dir, const std::string& old_snapshot_dir,
                 const std::string& replica_dir, const config::VolumeDescriptor& d, const TransferOptions& options,
                 ShipReport* report);

}  // namespace cfs::snapshot
