// Snapshots, clones and restores of volumes by copy-on-write (DESIGN.md
// sections 2 rules 3 and 5, 4b; docs/snapshots.md). A new volume is built in
// a staging folder `<parent>/.tmp-<id>-<pid>-<random>` and renamed into place
// as `<parent>/<id>` at the end (parent fsynced), so a crash leaves either no
// volume or a whole one; leftover staging folders of dead processes are
// removed by CleanStaleStaging. Deleting renames to a staging name first.
// Thread safety: functions are independent; the caller holds the source's
// writer lock (unmounted) or passes LiveHooks that exclude its writers.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "common/result.h"
#include "config/volume_yaml.h"
#include "snapshot/volume_copy.h"
#include "store/backing.h"
#include "store/data_store.h"

namespace cfs::snapshot {

// Lineage relations written by this layer.
inline constexpr char kRelManualSnapshot[] = "snapshot-of";
inline constexpr char kRelAutomatedSnapshot[] = "automated-snapshot-of";
inline constexpr char kRelRestored[] = "restored-from";
inline constexpr char kRelCloned[] = "cloned-from";
inline constexpr char kRelCopied[] = "copied-from";  // snapshot copy (copy_snapshot.h)

// How a snapshot of a mounted volume holds its writers: `freeze` pauses
// namespace operations and closes the data path's write barrier; `thaw`
// reopens both. Both run on the calling thread. With `data` (the mounted
// volume's data store), only tree/ is copied between them and the chunks
// are linked after `thaw` while writers run (DataStore::BeginSnapshotLinks:
// the data path preserves a chunk before changing it), so the pause does
// not grow with the data. Without it, the chunks are linked inside the
// pause too and `thaw` must bump the copy-on-write epoch.
struct LiveHooks {
  std::function<void()> freeze;
  std::function<void()> thaw;
  store::DataStore* data = nullptr;
};

struct CreateResult {
  CopyStats stats;
  int64_t pause_us = 0;  // freeze..thaw (live) or the copy time (unmounted)
  int64_t link_us = 0;   // live, with LiveHooks::data: linking the chunks after thaw
  int64_t freeze_us = 0;  // live, with LiveHooks::data: part of the pause waiting for operations in flight
  int64_t tree_us = 0;    // live, with LiveHooks::data: part of the pause copying tree/
  int64_t total_us = 0;
};

// Builds `<parent_dir>/<d.id>` from the volume in `src_dir`: tree/ copied,
// chunks hard-linked, everything fsynced, `d` written as volume.yaml.
// AlreadyExists if the id is taken (checked first and at the final rename).
// On failure nothing is left under `parent_dir` and the source is intact.
Status CreateCowVolume(store::Backing* backing, const std::string& src_dir, const std::string& parent_dir,
                       const config::VolumeDescriptor& d, const LiveHooks* live, CreateResult* result);

// Brings the existing snapshot `<parent_dir>/<d.id>` of the mounted volume
// in `src_dir` (`live` with `data`) to this instant in place: tree/
// entries equal to the source's kept (LiveTreeCopy with `reuse`), objects/
// refreshed (SnapshotLinks with `refresh`: a chunk file unchanged since its
// last instant stays, so do the chunk directories), `d` written as
// volume.yaml. Replica shipping refreshes its snapshots instead of making
// and deleting one per shipment: thousands of host inodes fewer made and
// freed each time (docs/regions.md). While
// it runs the snapshot is renamed to a staging name (not listed, not
// restorable); on failure it is gone. Without the snapshot: as
// CreateCowVolume.
Status RefreshCowVolume(store::Backing* backing, const std::string& src_dir, const std::string& parent_dir,
                        const config::VolumeDescriptor& d, const LiveHooks& live, CreateResult* result);

// Removes `<parent_dir>/<id>` (renamed away first, then deleted). Chunks
// still linked from other volumes stay. NotFound if there is none.
Status DeleteVolume(const std::string& parent_dir, const std::string& id);

// Removes `.tmp-*` folders in `parent_dir` whose creating process is gone.
void CleanStaleStaging(const std::string& parent_dir);

// Bytes of chunk files of the volume in `dir` (allocated blocks): shared
// with another volume (link count above one) or exclusive to it.
struct VolumeUsage {
  uint64_t shared_bytes = 0;
  uint64_t exclusive_bytes = 0;
  uint64_t chunk_files = 0;
};
Result<VolumeUsage> MeasureUsage(const std::string& dir);

// The ARN in whose encryption context the volume's data key is wrapped: a
// cluster's own ARN; for a snapshot, the cluster it was taken of (the
// snapshot keeps that cluster's wrapped data key, rule 3); for a snapshot
// copy, its own ARN (the copy re-wrapped the data key for it).
std::string DataKeyContextArn(const config::VolumeDescriptor& d);

// "manual" or "automated" for a snapshot descriptor.
std::string SnapshotType(const config::VolumeDescriptor& d);
// The source cluster's ARN of a snapshot ("" if none).
std::string SnapshotSourceArn(const config::VolumeDescriptor& d);

}  // namespace cfs::snapshot
