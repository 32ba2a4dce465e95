// `cipherfs mount` and `cipherfs umount`.
//
// mount: reads volume.yaml, takes the cluster's writer lock
// (region/clusters/<id>/mount.lock; read-only mounts take none), checks the
// mountpoint (an existing, empty directory, not a mount), unwraps the data
// key via the region's KMS (context {"cluster-arn": ARN}) and serves the
// volume (fs::ServeVolume). By default it daemonizes: the parent returns
// once the child has mounted, or with the child's error. While it runs, the
// daemon holds home/run/<pid>.mount (flock) naming its mountpoint, which
// `umount` uses to wait for its exit.
// Thread safety: called once per process, before any thread exists (fork).
#pragma once

#include <string>
#include <vector>

#include "cli/context.h"

namespace cfs::cli {

struct MountArgs {
  std::string id;
  std::string mountpoint;
  std::vector<std::string> options;  // -o values, comma lists allowed
  bool foreground = false;
  bool read_only = false;
  bool snapshot = false;  // `id` names a snapshot (region/snapshots/<id>), mounted read-only
};

Status Mount(Context& ctx, const MountArgs& args);

// Unmounts (fusermount3 -u) and waits until the daemon has exited.
Status Umount(Context& ctx, const std::string& mountpoint);

// Checks an absolute, resolved mountpoint: an empty directory that is not a
// mount. NotFound / FailedPrecondition / Unavailable (already a mount).
Status CheckMountpoint(const std::string& mountpoint);

// The filesystem type mounted exactly at `mountpoint` per
// /proc/self/mountinfo, or empty if none.
std::string MountedFsType(const std::string& mountpoint);

}  // namespace cfs::cli
