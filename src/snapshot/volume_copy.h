// Copy-on-write copy of a volume's contents (DESIGN.md section 4b): tree/ is
// recreated entry by entry (inode files, directories, symlinks copied with
// modes, owners, times and xattrs; hard links stay hard links) and every
// chunk file of objects/ is hard-linked, so no data is copied. The live
// volume's data path breaks the sharing before its next write to a chunk
// whose link count is above one (store/chunk_cow.h).
// Thread safety: pure functions over the backing; the caller excludes
// writers of the source (an unmounted volume under its writer lock, or a
// mounted one behind its write barrier with namespace operations paused).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"
#include "store/backing.h"

namespace cfs::snapshot {

struct CopyStats {
  uint64_t tree_entries = 0;   // directories, inode files, symlinks, others
  uint64_t chunks_linked = 0;  // chunk files hard-linked from objects/
};

struct CopyOptions {
  // fsync every file and directory made (off for the part of a live snapshot
  // done inside the write barrier; SyncVolumeCopy runs after it).
  bool sync = true;
  // A chunk file (or chunk directory) vanishing during the copy is skipped:
  // a mounted volume deleted that file's data (its last link was already
  // gone from tree/ when tree/ was copied).
  bool tolerate_vanished_chunks = false;
  // `dst_dir` may hold an earlier copy: tree/ (and objects/, for
  // CopyVolumeObjects) is brought to the source in place, entry by entry (an
  // equal entry is kept, no new host inode made; entries the source does
  // not have are removed).
  bool reuse = false;
};

// Copies `src_dir`/tree and `src_dir`/objects into `dst_dir`, an existing
// empty directory. On failure `dst_dir` holds a partial copy: the caller
// removes it (it is a staging folder). The source is never modified.
Status CopyVolumeCow(store::Backing* backing, const std::string& src_dir, const std::string& dst_dir,
                     const CopyOptions& options, CopyStats* stats);

// Hard-links the chunk files of `src_dir`/objects into `dst_dir`/objects
// (made if missing; with `reuse`, a chunk file already linked stays, one of
// another inode is relinked, names the source lacks are removed).
Status CopyVolumeObjects(store::Backing* backing, const std::string& src_dir, const std::string& dst_dir,
                         const CopyOptions& options, CopyStats* stats);

// Copies only `src_dir`/tree into `dst_dir`/tree (which must not exist):
// cross-region copies move the chunks themselves (copy_transfer.h).
Status CopyVolumeTree(store::Backing* backing, const std::string& src_dir, const std::string& dst_dir,
                      const CopyOptions& options, CopyStats* stats);

// A copy of `src_dir`/tree made while the volume changes (Precopy, writers
// running), then brought to the tree's state at one instant (CatchUp,
// writers held): CatchUp stats every entry and copies again only those new
// or changed since Precopy, so the write pause costs a stat per file
// instead of a copy per file. CatchUp fails with IsHardLinkChange() when a
// hard-linked inode file changed; the caller then removes `dst_dir`/tree
// and copies the whole tree (CopyVolumeTree) inside the pause. Nothing is
// fsynced. With `reuse`, `dst_dir`/tree may hold an earlier copy, which
// Precopy brings to the source in place (CopyOptions::reuse_tree).
class LiveTreeCopy {
 public:
  LiveTreeCopy(store::Backing* backing, std::string src_dir, std::string dst_dir, bool reuse = false);
  ~LiveTreeCopy();
  LiveTreeCopy(const LiveTreeCopy&) = delete;
  LiveTreeCopy& operator=(const LiveTreeCopy&) = delete;
  Status Precopy(CopyStats* stats);
  Status CatchUp(CopyStats* stats);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

bool IsHardLinkChange(const Status& s);

// fsyncs every file and directory of the volume copy in `dir` (tree/ and
// objects/ directories; chunk files are the source's, synced by their
// writer's data path, and are fsynced too when `chunks` is set).
Status SyncVolumeCopy(store::Backing* backing, const std::string& dir, bool chunks);

}  // namespace cfs::snapshot
