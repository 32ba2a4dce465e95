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

#include <memory>
#include <string>

#include "common/atomic_file.h"
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

// The staging folder of one copy, claimed for a run (the receiving end of a
// copy sent from another host, `region serve`, fills it; CopyVolumeResumable
// uses it too). Holds the lock until destroyed.
class CopyStaging {
 public:
  // Claims `<parent>/.copy-<id>` for `job` with `volume/objects` made and a
  // receiver on its manifest. Errors as CopyVolumeResumable's.
  static Result<std::unique_ptr<CopyStaging>> Open(store::Backing* backing, const VolumeCopyJob& job);
  const std::string& volume_dir() const { return volume_; }
  LocalReceiver* receiver() { return receiver_.get(); }
  bool resumed() const { return resumed_; }
  // Writes the descriptor, makes the copy durable, renames `volume/` to
  // `<parent>/<id>` (RENAME_NOREPLACE, parent fsynced), removes the staging
  // folder. On failure the staging folder stays.
  Status Commit(const config::VolumeDescriptor& d);

 private:
  CopyStaging(store::Backing* b, VolumeCopyJob job, FileLock lock)
      : b_(b), job_(std::move(job)), lock_(std::move(lock)) {}
  store::Backing* b_;
  VolumeCopyJob job_;
  FileLock lock_;
  std::string staging_, volume_;
  bool resumed_ = false;
  std::unique_ptr<LocalReceiver> receiver_;
};

}  // namespace cfs::snapshot
