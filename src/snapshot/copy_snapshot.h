// A resumable copy of a volume into another folder (a snapshot copied to
// another region; docs/regions.md). The copy is built in a staging folder
// `<parent>/.copy-<id>/` holding `job` (what is being copied, so a rerun of
// another copy to the same id is refused), `manifest` (chunks already moved,
// copy_transfer.h), `lock` and `volume/`. Rerunning the same copy resumes;
// a successful run renames `volume/` to `<parent>/<id>` (RENAME_NOREPLACE,
// parent fsynced) and removes the staging folder. A failed or interrupted
// run leaves no `<parent>/<id>`, only the staging folder, which
// AbortVolumeCopy removes.
// Thread safety: a copy holds `lock` (flock) for its whole run; a second
// run on the same staging folder gets Unavailable.
#pragma once

#include <string>

#include "common/result.h"
#include "config/volume_yaml.h"
#include "snapshot/copy_transfer.h"
#include "store/backing.h"

namespace cfs::snapshot {

struct VolumeCopyJob {
  std::string source_dir;   // the frozen source volume (a snapshot)
  std::string parent_dir;   // where the copy goes (region/snapshots)
  std::string id;           // the copy's id
  std::string job_text;     // identifies the copy (source ARN, time, key...)
};

struct VolumeCopyReport {
  TransferProgress transfer;
  bool resumed = false;     // an earlier run had left a staging folder
  int64_t total_us = 0;
};

// `<parent>/.copy-<id>`.
std::string CopyStagingDir(const std::string& parent_dir, const std::string& id);

// Copies job.source_dir to `<parent>/<id>` with descriptor `d` (its
// volume.yaml). AlreadyExists if the id is taken; FailedPrecondition if a
// staging folder of another job is there; Unavailable if another run holds
// it; DataLoss when a chunk fails its digest; "interrupted" Unavailable when
// options.stop fires. On every failure the staging folder stays (resumable).
Status CopyVolumeResumable(store::Backing* backing, const VolumeCopyJob& job, const config::VolumeDescriptor& d,
                           const TransferOptions& options, VolumeCopyReport* report);

// Removes the staging folder of a copy to `<parent>/<id>`. NotFound if none;
// Unavailable while a run holds it.
Status AbortVolumeCopy(const std::string& parent_dir, const std::string& id);

}  // namespace cfs::snapshot
