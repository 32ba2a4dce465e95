// `cipherfs cluster create|list|describe`: clusters of the current region,
// region/clusters/<id>/ with volume.yaml and the volume layout.
// Thread safety: one command per process thread; concurrent processes
// creating the same id: one wins, the other gets AlreadyExists.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/context.h"
#include "config/volume_yaml.h"

namespace cfs::cli {

// The encryption context of a cluster's data key: {"cluster-arn": <ARN>}.
inline constexpr char kClusterContextKey[] = "cluster-arn";
keymgr::EncryptionContext ClusterEncryptionContext(const std::string& cluster_arn);
// `d`, a copy of another volume's descriptor, made volume `id` (ARN `arn`)
// of this region, available now, with `relation` of `source_arn` appended
// to its lineage.
void NewVolumeHere(const Context& ctx, config::VolumeDescriptor& d, const std::string& id, const std::string& arn,
                   const std::string& relation, const std::string& source_arn);
// Wraps d's data key `key` under `key_id`, a key of this region's KMS (an
// Encrypt call, in this region's audit log); unencrypted volumes: nothing.
Status WrapDataKeyHere(Context& ctx, config::VolumeDescriptor& d, const std::string& key_id, const SecretBytes& key);

struct ClusterCreateArgs {
  std::string id;
  bool storage_encrypted = false;
  std::optional<std::string> kms_key_id;  // any identifier form; default alias/aws/rds
  std::optional<int> backup_retention_period;           // days, 1-35 (0: off, unencrypted only); default 1
  std::optional<std::string> preferred_backup_window;   // hh:mm-hh:mm UTC (backup_commands.h)
};

// Creates the cluster in a temporary folder and renames it into place; on
// any failure nothing is left behind.
Status ClusterCreate(Context& ctx, const ClusterCreateArgs& args);
Status ClusterList(Context& ctx);
Status ClusterDescribe(Context& ctx, const std::string& id);

// The descriptor of cluster `id`: NotFound (with a hint) if there is none.
Result<config::VolumeDescriptor> LoadCluster(const Context& ctx, const std::string& id);

// The cloud API's DBCluster fields.
nlohmann::json ClusterJson(const config::VolumeDescriptor& d);

}  // namespace cfs::cli
