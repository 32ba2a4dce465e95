// Automated backups (docs/snapshots.md "Automated backups"): `cipherfs backup
// run` (from cron or a systemd timer), the mount daemon's periodic check, and
// `cipherfs cluster modify` of a cluster's retention period and backup
// window (snapshot::BackupPolicy, kept in <cluster dir>/backup-policy).
// Thread safety: one run per cluster at a time, enforced across processes by
// <cluster dir>/backup.lock; BackupTicker runs on its own thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cli/context.h"
#include "config/volume_yaml.h"
#include "snapshot/backup_policy.h"

namespace cfs::cli {

// Validates `cluster create`'s backup options for a new cluster `id`: the
// policy to write (defaults for what is not given).
Result<snapshot::BackupPolicy> BackupPolicyForNewCluster(const std::string& id, bool storage_encrypted,
                                                         const std::optional<int>& retention_days,
                                                         const std::optional<std::string>& window);

struct BackupRunArgs {
  std::optional<std::string> cluster;  // default: every cluster of the region
  std::optional<std::string> at;       // RFC 3339: act as if it were this time (tests)
};
// For each cluster: an automated snapshot if due, then the expired ones
// deleted. Keeps going over the other clusters after an error; returns the
// first error.
Status BackupRun(Context& ctx, const BackupRunArgs& args);

// The automated backups of cluster `c` in this region (kept ones too).
std::vector<snapshot::AutomatedBackup> AutomatedBackupsOf(const Context& ctx, const config::VolumeDescriptor& c);

// What one check of one cluster did.
struct BackupOutcome {
  std::string taken;                 // automated snapshot id, or ""
  std::vector<std::string> expired;  // deleted automated snapshots
  bool skipped_busy = false;         // another run held backup.lock
};
Result<BackupOutcome> RunBackupsForCluster(Context& ctx, const std::string& cluster_id, int64_t now);

struct ClusterModifyArgs {
  std::string id;
  std::optional<int> backup_retention_period;
  std::optional<std::string> preferred_backup_window;
  std::optional<std::string> kms_key_id;   // refused: rule 1
  std::optional<bool> storage_encrypted;   // refused when it would change: rule 1
};
Status ClusterModify(Context& ctx, const ClusterModifyArgs& args);

// In the mount daemon: checks the cluster's backups every `period_s` seconds
// (first check after one period) until destroyed.
class BackupTicker {
 public:
  BackupTicker(Context* ctx, std::string cluster_id, int period_s);
  ~BackupTicker();
  BackupTicker(const BackupTicker&) = delete;
  BackupTicker& operator=(const BackupTicker&) = delete;

 private:
  void Loop();
  Context* ctx_;
  std::string cluster_id_;
  int period_s_;
  std::mutex mu_;  // guards stop_
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// The daemon's check period: $CIPHERFS_BACKUP_CHECK_SECONDS (1-86400), else
// 300; 0 turns the daemon's checks off.
int BackupCheckPeriodSeconds();

}  // namespace cfs::cli
