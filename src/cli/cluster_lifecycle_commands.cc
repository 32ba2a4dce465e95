// cluster restore-from-snapshot, clone and delete (snapshot_commands.h).
#include <filesystem>

#include <fmt/format.h>

#include "cli/backup_commands.h"
#include "cli/cluster_commands.h"
#include "cli/exit_codes.h"
#include "cli/snapshot_commands.h"
#include "cli/transcode_commands.h"
#include "common/atomic_file.h"
#include "common/log.h"
#include "snapshot/backup_policy.h"
#include "snapshot/snapshot.h"
#include "snapshot/volume_delete.h"

namespace cfs::cli {
namespace {

Status CheckNewClusterId(const Context& ctx, const std::string& id) {
  if (!config::IsValidVolumeId(id)) {
    return InvalidArgument(fmt::format("'{}' is not a valid cluster id; use 1-63 letters, digits and hyphens, "
                                       "starting with a letter", id));
  }
  std::error_code ec;
  if (std::filesystem::exists(ClusterDir(ctx, id), ec)) {
    return AlreadyExists(fmt::format("cluster {} already exists in region {}; choose another --id", id,
                                     ctx.config.region));
  }
  return Status::Ok();
}

// A new cluster descriptor `id` made from `from` (a snapshot or a cluster):
// same encryption; the data key re-wrapped by the KMS (ReEncrypt: the
// plaintext key never leaves it) for the new cluster's ARN context and
// `key` (default: the source's key).
Result<config::VolumeDescriptor> NewClusterFrom(Context& ctx, const config::VolumeDescriptor& from,
                                                const std::string& id, const std::string& relation,
                                                const std::optional<std::string>& key) {
  config::VolumeDescriptor d = from;
  d.kind = config::VolumeKind::kCluster;
  d.id = id;
  d.arn = ClusterArn(ctx, id);
  d.status = "available";
  d.created_at = config::NowRfc3339();
  d.lineage.push_back({relation, from.arn, d.created_at});
  if (from.storage_encrypted) {
    CFS_ASSIGN_OR_RETURN(auto kms, ctx.open_kms(ctx.config.region));
    CFS_ASSIGN_OR_RETURN(keymgr::ReEncryptResult r,
                         kms->ReEncrypt(from.wrapped_data_key,
                                        ClusterEncryptionContext(snapshot::DataKeyContextArn(from)),
                                        key.value_or(from.kms_key_arn), ClusterEncryptionContext(d.arn)));
    d.wrapped_data_key = std::move(r.ciphertext_blob);
    d.kms_key_arn = r.key_arn;
  }
  return d;
}

void PrintCluster(Context& ctx, const config::VolumeDescriptor& d, const std::string& what, int64_t us) {
  if (ctx.json) {
    *ctx.out << nlohmann::json{{"DBCluster", ClusterJson(d)}}.dump(2) << "\n";
  } else {
    *ctx.out << fmt::format("created cluster {} {} in {:.1f} ms{}\n", d.id, what, us / 1000.0,
                            d.storage_encrypted ? ", encrypted with " + d.kms_key_arn : ", not encrypted");
  }
}

bool IsMounted(const Context& ctx, const std::string& id) {
  Result<FileLock> lock = FileLock::TryAcquire(ClusterDir(ctx, id) + "/mount.lock", FileLock::Mode::kExclusive);
  return !lock.ok() && lock.status().code() == Code::kUnavailable;
}

}  // namespace

Status ClusterRestoreFromSnapshot(Context& ctx, const RestoreArgs& args) {
  CFS_ASSIGN_OR_RETURN(config::VolumeDescriptor s, LoadSnapshot(ctx, args.snapshot));
  CFS_RETURN_IF_ERROR(CheckNewClusterId(ctx, args.id));
  if (s.storage_encrypted && args.storage_encrypted == false) {
    return FailedPrecondition(fmt::format("snapshot {} is encrypted and so is every cluster restored from it "
                                          "(DESIGN rule 1: encryption can't be turned off); copy the plaintext "
                                          "out with cipherfs cluster export", s.id));
  }
  if (!s.storage_encrypted && (args.kms_key_id || args.storage_encrypted == true)) {
    // Rule 5: the only way from unencrypted to encrypted, every block encrypted on the way.
    return RestoreEncrypting(ctx, s, args.id, args.kms_key_id.value_or(std::string(keymgr::kManagedRdsAlias)));
  }
  CFS_ASSIGN_OR_RETURN(config::VolumeDescriptor d,
                       NewClusterFrom(ctx, s, args.id, snapshot::kRelRestored, args.kms_key_id));
  CFS_RETURN_IF_ERROR(MakeDirs(ClustersDir(ctx), 0755));
  snapshot::CleanStaleStaging(ClustersDir(ctx));
  snapshot::CreateResult r;
  CFS_RETURN_IF_ERROR(snapshot::CreateCowVolume(ctx.backing, SnapshotDir(ctx, s.id), ClustersDir(ctx), d, nullptr, &r));
  PrintCluster(ctx, d, "from snapshot " + s.id, r.total_us);
  return Status::Ok();
}

Status ClusterClone(Context& ctx, const std::string& source, const std::string& id) {
  CFS_ASSIGN_OR_RETURN(config::VolumeDescriptor c, LoadCluster(ctx, source));
  CFS_RETURN_IF_ERROR(CheckNewClusterId(ctx, id));
  CFS_ASSIGN_OR_RETURN(config::VolumeDescriptor d, NewClusterFrom(ctx, c, id, snapshot::kRelCloned, std::nullopt));
  nlohmann::json report;
  CFS_RETURN_IF_ERROR(CowCopyOfCluster(ctx, source, d, &report));
  PrintCluster(ctx, d, "as a clone of " + c.id, report.value("total_us", 0));
  return Status::Ok();
}

Status ClusterDelete(Context& ctx, const ClusterDeleteArgs& args) {
  if (args.final_snapshot_id.has_value() == args.skip_final_snapshot) {
    return InvalidArgument("cluster delete needs exactly one of --final-snapshot-id ID or --skip-final-snapshot");
  }
  CFS_ASSIGN_OR_RETURN(config::VolumeDescriptor c, LoadCluster(ctx, args.id));
  if (IsMounted(ctx, c.id)) {
    return Status(Code::kUnavailable, fmt::format("cluster {} is mounted; unmount it first (cipherfs umount)", c.id),
                  EBUSY);
  }
  if (args.final_snapshot_id) {
    SnapshotCreateArgs s;
    s.cluster = c.id;
    s.id = *args.final_snapshot_id;
    CFS_RETURN_IF_ERROR(SnapshotCreate(ctx, s));
  }
  CFS_ASSIGN_OR_RETURN(FileLock lock, FileLock::TryAcquire(ClusterDir(ctx, c.id) + "/mount.lock",
                                                           FileLock::Mode::kExclusive));
  // Kept automated backups expire on the retention period the cluster had
  // at its deletion (Aurora's retained automated backups): `backup run`.
  Result<snapshot::BackupPolicy> read = snapshot::ReadBackupPolicy(ClusterDir(ctx, c.id), c.id);
  snapshot::BackupPolicy policy = read.ok() ? *read : snapshot::BackupPolicy{};
  if (!read.ok()) log::Warn("cluster {}: {}; kept backups get the default retention", c.id, read.status().ToString());
  CFS_RETURN_IF_ERROR(snapshot::DeleteVolumeVia(ctx.backing, ClustersDir(ctx), c.id));
  int removed = 0, kept = 0;
  for (const snapshot::AutomatedBackup& b : AutomatedBackupsOf(ctx, c)) {
    const std::string& name = b.id;
    if (args.keep_automated_backups) {
      CFS_RETURN_IF_ERROR(snapshot::WriteBackupPolicy(SnapshotDir(ctx, name), policy));
      ++kept;
    } else {
      CFS_RETURN_IF_ERROR(snapshot::DeleteVolumeVia(ctx.backing, SnapshotsDir(ctx), name));
      ++removed;
    }
  }
  std::string also;
  if (removed) also = fmt::format(" and {} automated backup(s)", removed);
  if (kept) {
    also = fmt::format("; {} automated backup(s) kept, each expiring {} day(s) after it was taken", kept,
                       policy.retention_days);
  }
  *ctx.out << fmt::format("deleted cluster {}{}\n", c.id, also);
  return Status::Ok();
}

}  // namespace cfs::cli
