#include "cli/backup_commands.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>

#include <fmt/format.h>

#include "cli/cluster_commands.h"
#include "cli/exit_codes.h"
#include "cli/snapshot_commands.h"
#include "common/atomic_file.h"
#include "common/log.h"
#include "snapshot/snapshot.h"
#include "snapshot/volume_delete.h"

namespace cfs::cli {
namespace {

int64_t NowUnix() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}


std::vector<std::string> AllClusterIds(const Context& ctx) {
  std::vector<std::string> ids;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(ClustersDir(ctx), ec)) {
    std::string name = e.path().filename();
    if (!name.empty() && name[0] != '.') ids.push_back(name);
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

Status TakeAutomated(Context& ctx, const config::VolumeDescriptor& c, const std::string& id, int64_t now) {
  config::VolumeDescriptor d = SnapshotDescriptor(ctx, c, id, "automated");
  d.created_at = FormatTime(now);
  d.lineage.back().at = d.created_at;
  nlohmann::json report;
  CFS_RETURN_IF_ERROR(CowCopyOfCluster(ctx, c.id, d, &report));
  log::Info("automated snapshot {} of cluster {}: pause {} us", id, c.id, report.value("pause_us", 0));
  return Status::Ok();
}

// Automated snapshots kept by `cluster delete --delete-automated-backups
// false` hold the cluster's backup policy at its deletion (a backup-policy
// file in the snapshot folder) and expire on that retention period, like
// Aurora's retained automated backups. Returns the ids deleted.
std::vector<std::string> ExpireRetainedBackups(Context& ctx, int64_t now, Status* first) {
  std::vector<std::string> expired;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(SnapshotsDir(ctx), ec)) {
    std::string name = e.path().filename();
    std::error_code ec2;
    if (name.empty() || name[0] == '.' ||
        !std::filesystem::exists(SnapshotDir(ctx, name) + "/" + snapshot::kBackupPolicyFile, ec2)) {
      continue;
    }
    Result<config::VolumeDescriptor> s = LoadSnapshot(ctx, name);
    if (!s.ok() || snapshot::SnapshotType(*s) != "automated") continue;
    std::string source = snapshot::SnapshotSourceArn(*s);
    std::string cluster_id = source.substr(source.rfind(':') + 1);
    Result<config::VolumeDescriptor> c = LoadCluster(ctx, cluster_id);
    if (c.ok() && c->arn == source) continue;  // its cluster is back (same id): its own runs expire it
    Result<snapshot::BackupPolicy> p = snapshot::ReadBackupPolicy(SnapshotDir(ctx, name), cluster_id);
    Result<int64_t> created = snapshot::ParseRfc3339Utc(s->created_at);
    Status st = p.ok() ? created.status() : p.status();
    if (st.ok() && snapshot::ExpiredBackups(*p, {{name, *created}}, now).empty()) continue;
    if (st.ok()) st = snapshot::DeleteVolumeVia(ctx.backing, SnapshotsDir(ctx), name);
    if (!st.ok()) {
      if (!ctx.json) std::cerr << ErrorLine(WithHint(st, "retained automated snapshot " + name)) << "\n";
      if (first->ok()) *first = st;
      continue;
    }
    log::Info("expired retained automated snapshot {} of deleted cluster {}", name, cluster_id);
    expired.push_back(name);
  }
  std::sort(expired.begin(), expired.end());
  return expired;
}

void PrintOutcome(Context& ctx, const std::string& id, const Result<BackupOutcome>& r, nlohmann::json* arr) {
  if (ctx.json) {
    nlohmann::json j{{"DBClusterIdentifier", id}};
    if (r.ok()) {
      j["AutomatedSnapshotCreated"] = r->taken;
      j["AutomatedSnapshotsExpired"] = r->expired;
      j["SkippedBusy"] = r->skipped_busy;
    } else {
      j["Error"] = ErrorLine(r.status());
    }
    arr->push_back(j);
    return;
  }
  if (!r.ok()) return;  // the error line is printed by the caller
  if (r->skipped_busy) *ctx.out << fmt::format("{}: another backup run is at work, skipped\n", id);
  if (!r->taken.empty()) *ctx.out << fmt::format("{}: created automated snapshot {}\n", id, r->taken);
  for (const auto& e : r->expired) *ctx.out << fmt::format("{}: deleted expired automated snapshot {}\n", id, e);
  if (r->taken.empty() && r->expired.empty() && !r->skipped_busy) *ctx.out << fmt::format("{}: nothing due\n", id);
}

}  // namespace

std::vector<snapshot::AutomatedBackup> AutomatedBackupsOf(const Context& ctx, const config::VolumeDescriptor& c) {
  std::vector<snapshot::AutomatedBackup> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(SnapshotsDir(ctx), ec)) {
    std::string name = e.path().filename();
    if (name.empty() || name[0] == '.') continue;
    Result<config::VolumeDescriptor> s = LoadSnapshot(ctx, name);
    if (!s.ok() || snapshot::SnapshotType(*s) != "automated" || snapshot::SnapshotSourceArn(*s) != c.arn) continue;
    Result<int64_t> t = snapshot::ParseRfc3339Utc(s->created_at);
    out.push_back({s->id, t.ok() ? *t : 0});
  }
  return out;
}

Result<snapshot::BackupPolicy> BackupPolicyForNewCluster(const std::string& id, bool storage_encrypted,
                                                         const std::optional<int>& retention_days,
                                                         const std::optional<std::string>& window) {
  snapshot::BackupPolicy p;
  p.window = snapshot::DefaultBackupWindow(id);
  if (retention_days) {
    CFS_RETURN_IF_ERROR(snapshot::ValidateRetention(*retention_days, storage_encrypted));
    p.retention_days = *retention_days;
  }
  if (window) {
    CFS_ASSIGN_OR_RETURN(p.window, snapshot::ParseBackupWindow(*window));
  }
  return p;
}

Result<BackupOutcome> RunBackupsForCluster(Context& ctx, const std::string& cluster_id, int64_t now) {
  CFS_ASSIGN_OR_RETURN(config::VolumeDescriptor c, LoadCluster(ctx, cluster_id));
  BackupOutcome out;
  Result<FileLock> lock =
      FileLock::TryAcquire(ClusterDir(ctx, c.id) + "/" + snapshot::kBackupLockFile, FileLock::Mode::kExclusive);
  if (!lock.ok() && lock.status().code() == Code::kUnavailable) {
    out.skipped_busy = true;
    return out;
  }
  CFS_RETURN_IF_ERROR(lock.status());
  CFS_ASSIGN_OR_RETURN(snapshot::BackupPolicy p, snapshot::ReadBackupPolicy(ClusterDir(ctx, c.id), c.id));
  CFS_RETURN_IF_ERROR(MakeDirs(SnapshotsDir(ctx), 0755));
  std::vector<snapshot::AutomatedBackup> have = AutomatedBackupsOf(ctx, c);
  if (snapshot::BackupDue(p, have, now)) {
    std::string id = snapshot::AutomatedSnapshotId(c.id, now, have);
    CFS_RETURN_IF_ERROR(TakeAutomated(ctx, c, id, now));
    have.push_back({id, now});
    out.taken = id;
  }
  for (const auto& id : snapshot::ExpiredBackups(p, have, now)) {
    CFS_RETURN_IF_ERROR(snapshot::DeleteVolumeVia(ctx.backing, SnapshotsDir(ctx), id));
    log::Info("expired automated snapshot {} of cluster {}", id, c.id);
    out.expired.push_back(id);
  }
  return out;
}

Status BackupRun(Context& ctx, const BackupRunArgs& args) {
  int64_t now = NowUnix();
  if (args.at) {
    CFS_ASSIGN_OR_RETURN(now, snapshot::ParseRfc3339Utc(*args.at));
  }
  std::vector<std::string> ids;
  if (args.cluster) {
    CFS_RETURN_IF_ERROR(LoadCluster(ctx, *args.cluster).status());
    ids.push_back(*args.cluster);
  } else {
    ids = AllClusterIds(ctx);
  }
  snapshot::CleanStaleStaging(SnapshotsDir(ctx));
  Status first = Status::Ok();
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& id : ids) {
    Result<BackupOutcome> r = RunBackupsForCluster(ctx, id, now);
    if (!r.ok()) {
      if (!ctx.json) std::cerr << ErrorLine(WithHint(r.status(), "cluster " + id)) << "\n";
      if (first.ok()) first = r.status();
    }
    PrintOutcome(ctx, id, r, &arr);
  }
  std::vector<std::string> retained;
  if (!args.cluster) retained = ExpireRetainedBackups(ctx, now, &first);
  if (ctx.json) {
    *ctx.out << nlohmann::json{{"BackupRun", arr}, {"RetainedAutomatedSnapshotsExpired", retained}}.dump(2) << "\n";
  }
  for (const auto& id : retained) {
    if (!ctx.json) *ctx.out << fmt::format("deleted expired retained automated snapshot {} (cluster deleted)\n", id);
  }
  return first;
}

Status ClusterModify(Context& ctx, const ClusterModifyArgs& args) {
  CFS_ASSIGN_OR_RETURN(config::VolumeDescriptor c, LoadCluster(ctx, args.id));
  if (args.kms_key_id) {
    return FailedPrecondition(fmt::format(
        "the key of cluster {} can't be changed (DESIGN rule 1); take a snapshot and restore it with "
        "cipherfs cluster restore-from-snapshot --kms-key-id", c.id));
  }
  if (args.storage_encrypted && *args.storage_encrypted != c.storage_encrypted) {
    return FailedPrecondition(
        c.storage_encrypted
            ? fmt::format("encryption of cluster {} can't be turned off (DESIGN rule 1); copy the plaintext out "
                          "with cipherfs cluster export", c.id)
            : fmt::format("cluster {} was created unencrypted and stays so (DESIGN rule 1); snapshot it and "
                          "restore the snapshot with --kms-key-id to get an encrypted cluster", c.id));
  }
  CFS_ASSIGN_OR_RETURN(FileLock lock, FileLock::Acquire(ClusterDir(ctx, c.id) + "/" + snapshot::kBackupLockFile,
                                                         FileLock::Mode::kExclusive));
  CFS_ASSIGN_OR_RETURN(snapshot::BackupPolicy p, snapshot::ReadBackupPolicy(ClusterDir(ctx, c.id), c.id));
  if (args.backup_retention_period) {
    CFS_RETURN_IF_ERROR(snapshot::ValidateRetention(*args.backup_retention_period, c.storage_encrypted));
    p.retention_days = *args.backup_retention_period;
  }
  if (args.preferred_backup_window) {
    CFS_ASSIGN_OR_RETURN(p.window, snapshot::ParseBackupWindow(*args.preferred_backup_window));
  }
  CFS_RETURN_IF_ERROR(snapshot::WriteBackupPolicy(ClusterDir(ctx, c.id), p));
  if (ctx.json) {
    nlohmann::json j = ClusterJson(c);
    j["BackupRetentionPeriod"] = p.retention_days;
    j["PreferredBackupWindow"] = snapshot::FormatBackupWindow(p.window);
    *ctx.out << nlohmann::json{{"DBCluster", j}}.dump(2) << "\n";
  } else {
    *ctx.out << fmt::format("cluster {}: backup retention period {} day(s), backup window {} UTC\n", c.id,
                            p.retention_days, snapshot::FormatBackupWindow(p.window));
  }
  return Status::Ok();
}

int BackupCheckPeriodSeconds() {
  const char* v = std::getenv("CIPHERFS_BACKUP_CHECK_SECONDS");
  if (v == nullptr || *v == '\0') return 300;
  char* end = nullptr;
  long n = std::strtol(v, &end, 10);
  if (*end != '\0' || n < 0 || n > 86400) {
    log::Warn("CIPHERFS_BACKUP_CHECK_SECONDS is not 0-86400; using 300");
    return 300;
  }
  return static_cast<int>(n);
}

BackupTicker::BackupTicker(Context* ctx, std::string cluster_id, int period_s)
    : ctx_(ctx), cluster_id_(std::move(cluster_id)), period_s_(period_s) {
  thread_ = std::thread([this] { Loop(); });
}

BackupTicker::~BackupTicker() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void BackupTicker::Loop() {
  std::unique_lock<std::mutex> l(mu_);
  while (!cv_.wait_for(l, std::chrono::seconds(period_s_), [this] { return stop_; })) {
    l.unlock();
    Result<BackupOutcome> r = RunBackupsForCluster(*ctx_, cluster_id_, NowUnix());
    if (!r.ok()) log::Error("automated backup of cluster {} failed: {}", cluster_id_, r.status().ToString());
    l.lock();
  }
}

}  // namespace cfs::cli
