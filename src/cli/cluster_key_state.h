// Cluster state follows key state, as in the managed model
// (reference/kms-semantics.md 13.2): a mounted encrypted cluster asks the KMS
// every mount.key_check_interval whether its data key can still be
// unwrapped (Decrypt of the wrapped key: covers a disabled key, a key
// pending deletion or deleted, and revoked access). When it can't, the
// daemon wipes its keys, fails all I/O with EIO, and the cluster becomes
// `inaccessible-encryption-credentials-recoverable`, with the reason and
// time in region/clusters/<id>/key-state.json. `cipherfs cluster start`
// brings it back once the key is usable; after 7 days (environment
// CIPHERFS_INACCESSIBLE_TERMINAL_AFTER, in seconds, changes it) it becomes
// `inaccessible-encryption-credentials`: terminal,
// mounts are refused and only a restore from a snapshot helps.
// Thread safety: functions are reentrant; the key check may run on any thread.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "cli/context.h"
#include "config/volume_yaml.h"

namespace cfs::cli {

inline constexpr char kStatusRecoverable[] = "inaccessible-encryption-credentials-recoverable";
inline constexpr char kStatusTerminal[] = "inaccessible-encryption-credentials";

struct KeyStateNote {
  std::string reason;   // the KMS error that made the key unusable
  int64_t since = 0;    // unix seconds the cluster became inaccessible
};

// key-state.json of the cluster folder; nullopt when absent or unreadable.
std::optional<KeyStateNote> ReadKeyStateNote(const std::string& cluster_dir);

// The mount daemon's key check for cluster `d` (served from `cluster_dir`):
// false (and the cluster marked recoverable) when the KMS refuses to
// unwrap the data key; true when it can, or when the KMS can't be asked
// (a transient failure keeps the mount).
std::function<bool()> ClusterKeyCheck(std::shared_ptr<keymgr::KeyManager> kms, const config::VolumeDescriptor& d,
                                      std::string cluster_dir);

// Applies the recoverable -> terminal transition when due (persisting it).
Result<config::VolumeDescriptor> RefreshClusterKeyState(const Context& ctx, config::VolumeDescriptor d);

// Why a cluster is in its state ("" when available).
std::string ClusterStatusReason(const Context& ctx, const config::VolumeDescriptor& d);

// cipherfs cluster start --id X: recoverable -> available once the KMS
// unwraps the data key again. Terminal clusters are refused.
Status ClusterStart(Context& ctx, const std::string& id);

}  // namespace cfs::cli
