// Copy-on-write of chunk files (DESIGN.md section 4b, docs/snapshots.md):
// - BreakChunkCow: copies `name` (open as `src_fd`) to `<name>.cow` in the
//   same directory, data ranges only (holes stay holes), syncs it, renames
//   it over `name` and, with `sync_dir`, syncs the directory. On failure
//   the original is untouched. Without `sync_dir` the caller syncs the
//   directory before it reports a write to the new file durable: until
//   then a power cut may bring back the shared original, which holds
//   exactly what the copy held.
// - SnapshotLinks: the chunks owed to a snapshot of a mounted volume whose
//   write barrier is over but whose chunk files are not all linked yet (the
//   O(1) write pause): the data path preserves a chunk (links its file as
//   it was into the snapshot) before its first change since the snapshot
//   instant, and a linker links every other chunk afterwards. With
//   `refresh`, the snapshot is an earlier one being brought to a new
//   instant in place (replica shipping, docs/regions.md): a chunk it holds
//   already keeps its file when that is still the live one (same inode),
//   is relinked to the live file otherwise, and is removed when the live
//   volume had no such chunk at the instant. No chunk directory is made
//   or removed twice, which is what makes a refresh cheaper than a new
//   snapshot plus the deletion of the old one.
// Thread safety: BreakChunkCow: the caller excludes every writer of the
// chunk. SnapshotLinks: safe for concurrent use.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_set>

#include "common/result.h"
#include "common/status.h"
#include "store/backing.h"

namespace cfs::store {

Status BreakChunkCow(Backing* backing, int dirfd, const std::string& name, int src_fd, bool sync_dir = true);

// Makes `dst_dirfd`/`path` a hard link to `src_dirfd`/`path`: nothing if it
// is one already (same inode); linked if missing; else a link made beside
// it (`<path>.new`) is renamed over it, so the name never goes missing.
// Returns whether it linked. ENOENT of the source is returned as is.
Result<bool> LinkOver(Backing* backing, int src_dirfd, int dst_dirfd, const std::string& path);

class SnapshotLinks {
 public:
  // `live_objects_fd`, `snap_objects_fd`: objects/ of the live volume and of
  // the snapshot being built (not owned; open until the object is gone).
  // Made at the snapshot instant (writers held), so every chunk file of the
  // live volume is, at that moment, the chunk as the snapshot must hold it.
  SnapshotLinks(Backing* backing, int live_objects_fd, int snap_objects_fd, bool refresh = false)
      : backing_(backing), live_(live_objects_fd), snap_(snap_objects_fd), refresh_(refresh) {}

  // Before the first change since the instant (write, punch, truncate,
  // delete, copy-on-write break) to chunk `chunk` of the file whose chunk
  // directory is `file_hex`: links its file into the snapshot unless it is
  // linked already; a chunk that does not exist (yet) is marked so the
  // linker never takes the one created later. A failure fails the snapshot
  // (failure()), never the change.
  void Preserve(const std::string& file_hex, uint64_t chunk);
  // Links every chunk file of the live volume neither linked nor preserved
  // (nor marked) yet (chunk files vanishing meanwhile were preserved first),
  // with `refresh` removes the snapshot's chunks the live volume did not
  // have at the instant, then ends: a later Preserve does nothing (the chunk
  // is linked, so the copy-on-write break that follows isolates it).
  // Returns failure().
  Status Finish();
  // The first error of Preserve or LinkRest (the snapshot is incomplete).
  Status failure() const;
  // Chunk files linked (with `refresh`: linked anew or relinked).
  uint64_t linked() const;

 private:
  Status LinkRest();
  // With `refresh`: removes the snapshot's chunks not taken and not in the
  // live volume (so not there at the instant), and leftovers of a relink.
  Status DropRest();
  // Links `<hh>/<file_hex>/<chunk>` (mu_ held). ENOENT is returned as is.
  Status LinkLocked(const std::string& file_hex, const std::string& chunk);
  void NoteFailure(const Status& s);  // mu_ held

  Backing* backing_;
  int live_, snap_;
  const bool refresh_;
  mutable std::mutex mu_;                 // guards everything below
  std::unordered_set<std::string> taken_;  // "<file_hex>/<chunk>" handled by Preserve
  std::unordered_set<std::string> dirs_;   // made in the snapshot's objects/
  uint64_t linked_ = 0;
  bool finished_ = false;
  Status failure_;
};

}  // namespace cfs::store
