// Deleting a volume (snapshot or cluster) through the Backing, so tests can
// inject faults (tests/snapshot/snapshot_fault_sweep_test.cc): the volume is
// renamed to a staging name `.tmp-delete-<id>-<pid>-<random>` first (parent
// fsynced), so it vanishes from view at once and whole; then its files are
// removed. Chunk files still linked from other volumes stay with them.
// A failure after the rename leaves only that staging folder, which
// CleanStaleStaging removes once this process is gone.
// Thread safety: independent calls; the caller makes sure nobody uses the
// volume (a snapshot not mounted, a cluster under its writer lock).
#pragma once

#include <string>

#include "common/status.h"
#include "store/backing.h"

namespace cfs::snapshot {

// NotFound if `<parent_dir>/<id>` does not exist; on any other failure the
// volume is either still whole under its name or gone from view.
Status DeleteVolumeVia(store::Backing* backing, const std::string& parent_dir, const std::string& id);

// Removes the directory tree `name` of `dirfd` (files, links, directories).
Status RemoveTreeVia(store::Backing* backing, int dirfd, const std::string& name);

}  // namespace cfs::snapshot
