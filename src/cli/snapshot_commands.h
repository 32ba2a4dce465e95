// `cipherfs snapshot create|list|describe|delete` and the cluster lifecycle
// commands built on snapshots (cluster restore-from-snapshot, clone, delete;
// cluster_lifecycle_commands.cc). Snapshots live in region/snapshots/<id>/
// (docs/snapshots.md).
// Thread safety: one command per process; the mount daemon serializes the
// snapshots it takes (control.h).
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/context.h"
#include "config/volume_yaml.h"
#include "fs/mount.h"

namespace cfs::cli {

std::string SnapshotsDir(const Context& ctx);
std::string SnapshotDir(const Context& ctx, const std::string& id);
std::string SnapshotArn(const Context& ctx, const std::string& id);

struct SnapshotCreateArgs {
  std::string cluster;
  std::string id;
  std::string kind = "manual";            // manual | automated
  std::optional<std::string> kms_key_id;  // always refused (DESIGN rule 3)
};

// Of an unmounted cluster (under its writer lock) or of a mounted one (asked
// of its daemon over the control channel).
Status SnapshotCreate(Context& ctx, const SnapshotCreateArgs& args);
Status SnapshotList(Context& ctx);
Status SnapshotDescribe(Context& ctx, const std::string& id);
Status SnapshotDelete(Context& ctx, const std::string& id);

// The descriptor of snapshot `id` (NotFound with a hint).
Result<config::VolumeDescriptor> LoadSnapshot(const Context& ctx, const std::string& id);

// The descriptor of a new snapshot `id` of cluster `c`.
config::VolumeDescriptor SnapshotDescriptor(const Context& ctx, const config::VolumeDescriptor& c,
                                            const std::string& id, const std::string& kind);

// In the mount daemon: a {"op":"snapshot"} request on the live volume;
// with "refresh": true an existing snapshot (named by the request's
// descriptor) is brought to this instant (snapshot::RefreshCowVolume).
Result<nlohmann::json> LiveSnapshot(Context& ctx, const std::string& cluster_id, fs::LiveMount* live,
                                    const nlohmann::json& request);

// Copy-on-write copy of cluster `cluster_id` to the new volume `d` (a
// snapshot or a clone): under the writer lock if unmounted, else by its
// daemon. Prints nothing. `refresh`: `d` may exist already (a snapshot of
// this cluster) and is brought to this instant -- in place by the daemon,
// deleted and made anew when unmounted.
Status CowCopyOfCluster(Context& ctx, const std::string& cluster_id, const config::VolumeDescriptor& d,
                        nlohmann::json* report, bool refresh = false);

// `cluster restore-from-snapshot`, `cluster clone`, `cluster delete`.
struct RestoreArgs {
  std::string snapshot;
  std::string id;
  std::optional<std::string> kms_key_id;
  std::optional<bool> storage_encrypted;  // false refused for an encrypted snapshot (rule 1)
};
Status ClusterRestoreFromSnapshot(Context& ctx, const RestoreArgs& args);
Status ClusterClone(Context& ctx, const std::string& source, const std::string& id);
struct ClusterDeleteArgs {
  std::string id;
  std::optional<std::string> final_snapshot_id;
  bool skip_final_snapshot = false;
  bool keep_automated_backups = false;
};
Status ClusterDelete(Context& ctx, const ClusterDeleteArgs& args);

}  // namespace cfs::cli
