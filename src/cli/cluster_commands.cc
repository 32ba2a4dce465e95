#include "cli/cluster_commands.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include <fmt/format.h>

#include "cli/backup_commands.h"
#include "cli/cluster_key_state.h"
#include "cli/exit_codes.h"
#include "cli/region_commands.h"
#include "common/atomic_file.h"
#include "snapshot/backup_policy.h"
#include "store/volume.h"

namespace cfs::cli {
namespace {

Status ValidateCreateArgs(const Context& ctx, const ClusterCreateArgs& args) {
  if (!config::IsValidVolumeId(args.id)) {
    return InvalidArgument(fmt::format("'{}' is not a valid cluster id; use 1-63 letters, digits and hyphens, "
                                       "starting with a letter", args.id));
  }
  if (args.kms_key_id && !args.storage_encrypted) {
    return InvalidArgument("--kms-key-id needs --storage-encrypted; a cluster is encrypted at creation or never");
  }
  std::error_code ec;
  if (std::filesystem::exists(ClusterDir(ctx, args.id), ec)) {
    return AlreadyExists(fmt::format("cluster {} already exists in region {}; choose another --id", args.id,
                                     ctx.config.region));
  }
  return Status::Ok();
}

// Fills the key fields and returns the plaintext data key.
Result<SecretBytes> WrapNewDataKey(Context& ctx, const ClusterCreateArgs& args, config::VolumeDescriptor* d) {
  CFS_ASSIGN_OR_RETURN(auto kms, ctx.open_kms(ctx.config.region));
  std::string key = args.kms_key_id.value_or(std::string(keymgr::kManagedRdsAlias));
  CFS_ASSIGN_OR_RETURN(auto dk, kms->GenerateDataKey(key, ClusterEncryptionContext(d->arn), 32));
  d->kms_key_arn = dk.key_arn;
  d->wrapped_data_key = dk.ciphertext_blob;
  d->cipher = std::string(config::kCipherAes256Gcm);
  return std::move(dk.plaintext);
}

Status BuildVolume(Context& ctx, const std::string& tmp, const config::VolumeDescriptor& d,
                   const SecretBytes* data_key) {
  if (::mkdir(tmp.c_str(), 0700) != 0) return Status::FromErrno(errno, "mkdir " + tmp);
  store::VolumeOptions vopt;
  vopt.chunk_blocks = d.chunk_blocks;
  CFS_RETURN_IF_ERROR(store::CreateVolumeLayout(ctx.backing, tmp, data_key, vopt));
  return config::WriteVolumeDescriptor(tmp, d);
}

Status InstallVolume(const std::string& tmp, const std::string& final_dir, const Context& ctx,
                     const std::string& id) {
  if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, final_dir.c_str(), RENAME_NOREPLACE) != 0) {
    if (errno == EEXIST || errno == ENOTEMPTY) {
      return AlreadyExists(fmt::format("cluster {} already exists in region {}; choose another --id", id,
                                       ctx.config.region));
    }
    return Status::FromErrno(errno, "rename " + tmp);
  }
  return FsyncDir(ClustersDir(ctx));
}

void PrintTable(std::ostream& out, const std::vector<config::VolumeDescriptor>& clusters) {
  out << fmt::format("{:<24} {:<12} {:<9} {:<20} {}\n", "CLUSTER", "STATUS", "ENCRYPTED", "CREATED", "KMS KEY");
  for (const auto& d : clusters) {
    out << fmt::format("{:<24} {:<12} {:<9} {:<20} {}\n", d.id, d.status, d.storage_encrypted ? "yes" : "no",
                       d.created_at, d.storage_encrypted ? d.kms_key_arn : "-");
  }
}

}  // namespace

keymgr::EncryptionContext ClusterEncryptionContext(const std::string& cluster_arn) {
  return {{kClusterContextKey, cluster_arn}};
}

void NewVolumeHere(const Context& ctx, config::VolumeDescriptor& d, const std::string& id, const std::string& arn,
                   const std::string& relation, const std::string& source_arn) {
  d.id = id;
  d.arn = arn;
  d.region = ctx.config.region;
  d.status = "available";
  d.created_at = config::NowRfc3339();
  d.lineage.push_back({relation, source_arn, d.created_at});
}

Status WrapDataKeyHere(Context& ctx, config::VolumeDescriptor& d, const std::string& key_id, const SecretBytes& key) {
  if (!d.storage_encrypted) return Status::Ok();
  CFS_ASSIGN_OR_RETURN(auto kms, ctx.open_kms(ctx.config.region));
  CFS_ASSIGN_OR_RETURN(keymgr::EncryptResult w, kms->Encrypt(key_id, key, ClusterEncryptionContext(d.arn)));
  d.wrapped_data_key = std::move(w.ciphertext_blob);
  d.kms_key_arn = w.key_arn;
  return Status::Ok();
}

nlohmann::json ClusterJson(const config::VolumeDescriptor& d) {
  nlohmann::json j{{"DBClusterIdentifier", d.id},
                   {"DBClusterArn", d.arn},
                   {"Status", d.status},
                   {"StorageEncrypted", d.storage_encrypted},
                   {"StorageEncryptionType", d.storage_encrypted ? "sse-kms" : "none"},
                   {"ClusterCreateTime", d.created_at},
                   {"Region", d.region}};
  if (d.storage_encrypted) j["KmsKeyId"] = d.kms_key_arn;
  j["Lineage"] = LineageJson(d);  // region_commands.h
  return j;
}

Status ClusterCreate(Context& ctx, const ClusterCreateArgs& args) {
  CFS_RETURN_IF_ERROR(ValidateCreateArgs(ctx, args));
  CFS_ASSIGN_OR_RETURN(snapshot::BackupPolicy backups,
                       BackupPolicyForNewCluster(args.id, args.storage_encrypted, args.backup_retention_period,
                                                 args.preferred_backup_window));
  config::VolumeDescriptor d;
  d.id = args.id;
  d.region = ctx.config.region;
  d.arn = ClusterArn(ctx, args.id);
  d.storage_encrypted = args.storage_encrypted;
  d.created_at = config::NowRfc3339();
  SecretBytes data_key;
  if (args.storage_encrypted) {
    CFS_ASSIGN_OR_RETURN(data_key, WrapNewDataKey(ctx, args, &d));
  }
  CFS_RETURN_IF_ERROR(MakeDirs(ClustersDir(ctx), 0755));
  std::string tmp = fmt::format("{}/.creating-{}-{}", ClustersDir(ctx), args.id, ::getpid());
  Status s = BuildVolume(ctx, tmp, d, args.storage_encrypted ? &data_key : nullptr);
  if (s.ok()) s = snapshot::WriteBackupPolicy(tmp, backups);
  if (s.ok()) s = InstallVolume(tmp, ClusterDir(ctx, args.id), ctx, args.id);
  if (!s.ok()) {
    std::error_code ec;
    std::filesystem::remove_all(tmp, ec);
    return s;
  }
  if (ctx.json) {
    *ctx.out << nlohmann::json{{"DBCluster", ClusterJson(d)}}.dump(2) << "\n";
  } else {
    *ctx.out << fmt::format("created cluster {} ({}){}\n", d.id, d.arn,
                            d.storage_encrypted ? ", encrypted with " + d.kms_key_arn : ", not encrypted");
  }
  return Status::Ok();
}

Result<config::VolumeDescriptor> LoadCluster(const Context& ctx, const std::string& id) {
  if (!config::IsValidVolumeId(id)) {
    return InvalidArgument(fmt::format("'{}' is not a valid cluster id; see: cipherfs cluster list", id));
  }
  Result<config::VolumeDescriptor> d = config::ReadVolumeDescriptor(ClusterDir(ctx, id));
  if (!d.ok() && d.status().code() == Code::kNotFound) {
    return NotFound(fmt::format("cluster {} not found in region {}; list clusters with: cipherfs cluster list", id,
                                ctx.config.region));
  }
  return d;
}

Status ClusterList(Context& ctx) {
  std::vector<config::VolumeDescriptor> clusters;
  std::error_code ec;
  std::vector<std::string> ids;
  for (const auto& entry : std::filesystem::directory_iterator(ClustersDir(ctx), ec)) {
    std::string name = entry.path().filename();
    if (name.empty() || name[0] == '.') continue;
    ids.push_back(name);
  }
  std::sort(ids.begin(), ids.end());
  for (const auto& id : ids) {
    Result<config::VolumeDescriptor> d = LoadCluster(ctx, id);
    if (d.ok()) clusters.push_back(std::move(*d));
    else std::cerr << ErrorLine(d.status()) << "\n";
  }
  if (ctx.json) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& d : clusters) arr.push_back(ClusterJson(d));
    *ctx.out << nlohmann::json{{"DBClusters", arr}}.dump(2) << "\n";
  } else {
    PrintTable(*ctx.out, clusters);
  }
  return Status::Ok();
}

Status ClusterDescribe(Context& ctx, const std::string& id) {
  CFS_ASSIGN_OR_RETURN(config::VolumeDescriptor d, LoadCluster(ctx, id));
  CFS_ASSIGN_OR_RETURN(d, RefreshClusterKeyState(ctx, std::move(d)));
  std::string why = ClusterStatusReason(ctx, d);
  Result<snapshot::BackupPolicy> backups = snapshot::ReadBackupPolicy(ClusterDir(ctx, d.id), d.id);
  if (ctx.json) {
    nlohmann::json j = ClusterJson(d);
    if (!why.empty()) j["StatusReason"] = why;
    if (backups.ok()) {
      j["BackupRetentionPeriod"] = backups->retention_days;
      j["PreferredBackupWindow"] = snapshot::FormatBackupWindow(backups->window);
    }
    *ctx.out << nlohmann::json{{"DBClusters", nlohmann::json::array({j})}}.dump(2) << "\n";
    return Status::Ok();
  }
  auto& out = *ctx.out;
  out << fmt::format("DBClusterIdentifier  {}\n", d.id);
  out << fmt::format("DBClusterArn         {}\n", d.arn);
  out << fmt::format("Region               {}\n", d.region);
  out << fmt::format("Status               {}\n", d.status);
  if (!why.empty()) out << fmt::format("StatusReason         {}\n", why);
  out << fmt::format("StorageEncrypted     {}\n", d.storage_encrypted ? "true" : "false");
  if (d.storage_encrypted) out << fmt::format("KmsKeyId             {}\n", d.kms_key_arn);
  out << fmt::format("ClusterCreateTime    {}\n", d.created_at);
  if (backups.ok()) {
    out << fmt::format("BackupRetentionPeriod {} day(s)\n", backups->retention_days);
    out << fmt::format("PreferredBackupWindow {} UTC\n", snapshot::FormatBackupWindow(backups->window));
  } else {
    out << fmt::format("BackupPolicy         unreadable: {}\n", backups.status().message());
  }
  for (const auto& e : d.lineage) out << fmt::format("Lineage              {} {} at {}\n", e.relation, e.arn, e.at);
  return Status::Ok();
}

}  // namespace cfs::cli
