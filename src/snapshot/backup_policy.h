// Automated backups (DESIGN.md section 2 rule 7, docs/snapshots.md): a
// cluster's backup policy -- retention period in days and a daily backup
// window in UTC -- stored as `<cluster dir>/backup-policy`, and the pure
// decisions over it: is an automated snapshot due now, which automated
// snapshots have expired, what the next one is called.
// Thread safety: pure functions; writers of one policy file serialize
// themselves (the CLI holds the cluster's backup.lock).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace cfs::snapshot {

inline constexpr char kBackupPolicyFile[] = "backup-policy";
inline constexpr char kBackupLockFile[] = "backup.lock";
inline constexpr int kDefaultRetentionDays = 1;
inline constexpr int kMaxRetentionDays = 35;
inline constexpr int kMinWindowMinutes = 30;
inline constexpr int kMaxPolicyFileSize = 4096;

// A daily window [start, end) in minutes after 00:00 UTC. end < start wraps
// past midnight ("23:30-00:15").
struct BackupWindow {
  int start_min = 0;
  int end_min = 30;
  int LengthMinutes() const { return end_min > start_min ? end_min - start_min : 1440 - start_min + end_min; }
  bool operator==(const BackupWindow&) const = default;
};

struct BackupPolicy {
  int retention_days = kDefaultRetentionDays;  // 0: automated backups off (unencrypted clusters only)
  BackupWindow window;
  bool operator==(const BackupPolicy&) const = default;
};

// "hh:mm-hh:mm" (UTC, 24 h, at least 30 minutes, less than a day).
// InvalidArgument naming the rule otherwise.
Result<BackupWindow> ParseBackupWindow(std::string_view text);
std::string FormatBackupWindow(const BackupWindow& w);

// 1-35 days; 0 only for an unencrypted cluster (FailedPrecondition naming
// DESIGN rule 7 for an encrypted one), InvalidArgument outside 0-35.
Status ValidateRetention(int days, bool storage_encrypted);

// The window a cluster gets when none is given: 30 minutes starting at a
// half hour between 00:00 and 07:30 UTC picked from the cluster id (stable,
// spreads clusters of one host over the night).
BackupWindow DefaultBackupWindow(std::string_view cluster_id);

// The policy file: "retention_days: N\nwindow: hh:mm-hh:mm\n". Parsing treats
// the text as hostile: DataLoss naming `file_name` for anything malformed.
std::string FormatBackupPolicy(const BackupPolicy& p);
Result<BackupPolicy> ParseBackupPolicy(std::string_view text, const std::string& file_name);

// `<cluster_dir>/backup-policy`; a missing file reads as the default policy
// for `cluster_id`. Written atomically.
Result<BackupPolicy> ReadBackupPolicy(const std::string& cluster_dir, std::string_view cluster_id);
Status WriteBackupPolicy(const std::string& cluster_dir, const BackupPolicy& p);

// An automated snapshot of the cluster: id and creation time (unix seconds).
struct AutomatedBackup {
  std::string id;
  int64_t created = 0;
};

// Unix seconds at which the most recent occurrence of `w` began, at `now`.
int64_t LastWindowStart(const BackupWindow& w, int64_t now);
bool InBackupWindow(const BackupWindow& w, int64_t now);

// Due when backups are on and either `now` is inside the window and none was
// taken since it began, or none was taken in the last day plus a window
// (a missed window, or the cluster's first backup: taken at once).
bool BackupDue(const BackupPolicy& p, const std::vector<AutomatedBackup>& existing, int64_t now);

// The automated snapshots older than the retention period at `now` (all of
// them when backups are off), oldest first.
std::vector<std::string> ExpiredBackups(const BackupPolicy& p, std::vector<AutomatedBackup> existing, int64_t now);

// "auto-<cluster id>-YYYY-MM-DD-HH-MM" (UTC; the cluster part shortened to
// keep the id a valid volume id), "-N" appended when `taken` holds it.
std::string AutomatedSnapshotId(std::string_view cluster_id, int64_t now, const std::vector<AutomatedBackup>& taken);

// "2026-01-02T03:04:05Z" -> unix seconds. InvalidArgument otherwise.
Result<int64_t> ParseRfc3339Utc(std::string_view s);

}  // namespace cfs::snapshot
