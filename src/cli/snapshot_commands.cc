#include "cli/snapshot_commands.h"

#include <algorithm>
#include <filesystem>

#include <fmt/format.h>

#include "cli/cluster_commands.h"
#include "cli/control.h"
#include "cli/exit_codes.h"
#include "cli/region_commands.h"
#include "common/atomic_file.h"
#include "common/log.h"
#include "snapshot/snapshot.h"
#include "snapshot/volume_delete.h"

namespace cfs::cli {
namespace {

Status CheckNewSnapshotId(const Context& ctx, const std::string& id) {
  if (!config::IsValidVolumeId(id)) {
    return InvalidArgument(fmt::format("'{}' is not a valid snapshot id; use 1-63 letters, digits and hyphens, "
                                       "starting with a letter", id));
  }
  std::error_code ec;
  if (std::filesystem::exists(SnapshotDir(ctx, id), ec)) {
    return AlreadyExists(fmt::format("snapshot {} already exists in region {}; choose another --id", id,
                                     ctx.config.region));
  }
  return Status::Ok();
}

nlohmann::json SnapshotJson(const Context& ctx, const config::VolumeDescriptor& d) {
  std::string source = snapshot::SnapshotSourceArn(d);
  std::string cluster_id = source.substr(source.rfind(':') + 1);
  nlohmann::json j{{"DBClusterSnapshotIdentifier", d.id},
                   {"DBClusterSnapshotArn", d.arn},
                   {"DBClusterIdentifier", cluster_id},
                   {"SourceDBClusterArn", source},
                   {"SnapshotCreateTime", d.created_at},
                   {"SnapshotType", snapshot::SnapshotType(d)},
                   {"StorageEncrypted", d.storage_encrypted},
                   {"Status", d.status},
                   {"Region", d.region}};
  if (d.storage_encrypted) j["KmsKeyId"] = d.kms_key_arn;
  j["Lineage"] = LineageJson(d);  // region_commands.h
  if (std::string copied = LastLineageArn(d, snapshot::kRelCopied); !copied.empty()) {
    j["SourceDBClusterSnapshotArn"] = copied;
  }
  Result<snapshot::VolumeUsage> u = snapshot::MeasureUsage(SnapshotDir(ctx, d.id));
  if (u.ok()) {
    j["SharedBytes"] = u->shared_bytes;
    j["ExclusiveBytes"] = u->exclusive_bytes;
  }
  return j;
}

std::vector<config::VolumeDescriptor> AllSnapshots(const Context& ctx) {
  std::vector<std::string> ids;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(SnapshotsDir(ctx), ec)) {
    std::string name = e.path().filename();
    if (!name.empty() && name[0] != '.') ids.push_back(name);
  }
  std::sort(ids.begin(), ids.end());
  std::vector<config::VolumeDescriptor> out;
  for (const auto& id : ids) {
    Result<config::VolumeDescriptor> d = LoadSnapshot(ctx, id);
    if (d.ok()) out.push_back(std::move(*d));
    else std::cerr << ErrorLine(d.status()) << "\n";
  }
  return out;
}

std::string ParentDirFor(const Context& ctx, const config::VolumeDescriptor& d) {
  return d.kind == config::VolumeKind::kSnapshot ? SnapshotsDir(ctx) : ClustersDir(ctx);
}

nlohmann::json ReportJson(const snapshot::CreateResult& r) {
  return {{"ok", true}, {"pause_us", r.pause_us}, {"freeze_us", r.freeze_us}, {"tree_us", r.tree_us},
          {"link_us", r.link_us}, {"total_us", r.total_us},
          {"chunks_linked", r.stats.chunks_linked}, {"tree_entries", r.stats.tree_entries}};
}

}  // namespace

std::string SnapshotsDir(const Context& ctx) { return ctx.config.RegionDir() + "/snapshots"; }
std::string SnapshotDir(const Context& ctx, const std::string& id) { return SnapshotsDir(ctx) + "/" + id; }
std::string SnapshotArn(const Context& ctx, const std::string& id) {
  return fmt::format("arn:cipherfs:rds:{}:{}:cluster-snapshot:{}", ctx.config.region, ctx.account, id);
}

Result<config::VolumeDescriptor> LoadSnapshot(const Context& ctx, const std::string& id) {
  if (!config::IsValidVolumeId(id)) {
    return InvalidArgument(fmt::format("'{}' is not a valid snapshot id; see: cipherfs snapshot list", id));
  }
  Result<config::VolumeDescriptor> d = config::ReadVolumeDescriptor(SnapshotDir(ctx, id));
  if (!d.ok() && d.status().code() == Code::kNotFound) {
    return NotFound(fmt::format("snapshot {} not found in region {}; list snapshots with: cipherfs snapshot list",
                                id, ctx.config.region));
  }
  if (d.ok() && d->kind != config::VolumeKind::kSnapshot) {
    return DataLoss(fmt::format("{} is not a snapshot descriptor", SnapshotDir(ctx, id)));
  }
  return d;
}

config::VolumeDescriptor SnapshotDescriptor(const Context& ctx, const config::VolumeDescriptor& c,
                                            const std::string& id, const std::string& kind) {
  config::VolumeDescriptor d = c;  // same encryption, key, wrapped data key, chunk size
  d.kind = config::VolumeKind::kSnapshot;
  d.id = id;
  d.arn = SnapshotArn(ctx, id);
  d.status = "available";
  d.created_at = config::NowRfc3339();
  d.lineage.push_back({kind == "automated" ? snapshot::kRelAutomatedSnapshot : snapshot::kRelManualSnapshot,
                       c.arn, d.created_at});
  return d;
}

Result<nlohmann::json> LiveSnapshot(Context& ctx, const std::string& cluster_id, fs::LiveMount* live,
                                    const nlohmann::json& req) {
  config::VolumeDescriptor d;
  if (req.contains("descriptor")) {
    CFS_ASSIGN_OR_RETURN(d, config::ParseVolumeYaml(req.at("descriptor").get<std::string>(), "control request"));
  } else {
    CFS_ASSIGN_OR_RETURN(config::VolumeDescriptor c, LoadCluster(ctx, cluster_id));
    std::string id = req.at("id").get<std::string>();
    CFS_RETURN_IF_ERROR(CheckNewSnapshotId(ctx, id));
    d = SnapshotDescriptor(ctx, c, id, req.value("kind", "manual"));
  }
  CFS_RETURN_IF_ERROR(MakeDirs(ParentDirFor(ctx, d), 0755));
  // Outside the barrier: writes that returned before this request reach the
  // daemon first (a writer blocked by the barrier would hold the flush up).
  if (Status flushed = live->FlushKernelCache(); !flushed.ok()) {
    log::Warn("snapshot {} of cluster {}: {}; the snapshot may miss writes still in the kernel cache", d.id,
              cluster_id, flushed.ToString());
  }
  snapshot::LiveHooks hooks;
  hooks.freeze = [live] {
    live->PauseNamespace(true);
    live->data().BeginWriteBarrier();
  };
  hooks.thaw = [live] {
    live->data().EndWriteBarrier();
    live->PauseNamespace(false);
  };
  hooks.data = &live->data();  // chunks linked after the pause (snapshot.h)
  snapshot::CreateResult r;
  if (req.value("refresh", false)) {
    CFS_RETURN_IF_ERROR(
        snapshot::RefreshCowVolume(ctx.backing, ClusterDir(ctx, cluster_id), ParentDirFor(ctx, d), d, hooks, &r));
  } else {
    CFS_RETURN_IF_ERROR(snapshot::CreateCowVolume(ctx.backing, ClusterDir(ctx, cluster_id), ParentDirFor(ctx, d), d,
                                                  &hooks, &r));
  }
  log::Info("snapshot {} of cluster {}: pause {} us, {} chunks linked in {} us after it, total {} us", d.id,
            cluster_id, r.pause_us, r.stats.chunks_linked, r.link_us, r.total_us);
  return ReportJson(r);
}

Status CowCopyOfCluster(Context& ctx, const std::string& cluster_id, const config::VolumeDescriptor& d,
                        nlohmann::json* report, bool refresh) {
  CFS_RETURN_IF_ERROR(MakeDirs(ParentDirFor(ctx, d), 0755));
  Result<FileLock> lock = FileLock::TryAcquire(ClusterDir(ctx, cluster_id) + "/mount.lock", FileLock::Mode::kExclusive);
  if (lock.ok()) {  // unmounted: nobody may mount it meanwhile
    if (refresh) {
      Status gone = snapshot::DeleteVolume(ParentDirFor(ctx, d), d.id);
      if (!gone.ok() && gone.code() != Code::kNotFound) return gone;
    }
    snapshot::CreateResult r;
    CFS_RETURN_IF_ERROR(
        snapshot::CreateCowVolume(ctx.backing, ClusterDir(ctx, cluster_id), ParentDirFor(ctx, d), d, nullptr, &r));
    *report = ReportJson(r);
    return Status::Ok();
  }
  if (lock.status().code() != Code::kUnavailable) return lock.status();
  CFS_ASSIGN_OR_RETURN(std::string yaml, config::FormatVolumeYaml(d));
  nlohmann::json req{{"op", "snapshot"}, {"id", d.id}, {"kind", snapshot::SnapshotType(d)}, {"descriptor", yaml}};
  if (refresh) req["refresh"] = true;
  Result<nlohmann::json> r = ControlCall(ClusterDir(ctx, cluster_id) + "/" + kControlSocketName, req);
  if (!r.ok() && r.status().code() == Code::kUnavailable) {
    return WithHint(r.status(), fmt::format("cluster {} is mounted but its daemon does not answer; retry, or "
                                            "unmount it first", cluster_id));
  }
  CFS_RETURN_IF_ERROR(r.status());
  *report = *r;
  return Status::Ok();
}

Status SnapshotCreate(Context& ctx, const SnapshotCreateArgs& args) {
  CFS_ASSIGN_OR_RETURN(config::VolumeDescriptor c, LoadCluster(ctx, args.cluster));
  if (args.kms_key_id && !c.storage_encrypted) {
    return FailedPrecondition(fmt::format("cluster {} is unencrypted and has no encrypted snapshot (DESIGN rule 3); "
                                          "snapshot it without --kms-key-id, then restore that snapshot with "
                                          "cipherfs cluster restore-from-snapshot --kms-key-id", c.id));
  }
  if (args.kms_key_id) {
    return FailedPrecondition(fmt::format("a snapshot has its cluster's encryption and key, none can be given "
                                          "(DESIGN rule 3); drop --kms-key-id, or restore the snapshot with "
                                          "cipherfs cluster restore-from-snapshot --kms-key-id"));
  }
  CFS_RETURN_IF_ERROR(CheckNewSnapshotId(ctx, args.id));
  config::VolumeDescriptor d = SnapshotDescriptor(ctx, c, args.id, args.kind);
  nlohmann::json report;
  CFS_RETURN_IF_ERROR(CowCopyOfCluster(ctx, args.cluster, d, &report));
  if (ctx.json) {
    nlohmann::json j = SnapshotJson(ctx, d);
    j["WritePauseMicroseconds"] = report.value("pause_us", 0);
    j["ChunkLinkMicroseconds"] = report.value("link_us", 0);  // after the pause, writers running
    j["WritePauseDetail"] = {{"WaitForOperationsInFlightMicroseconds", report.value("freeze_us", 0)},
                             {"TreeCopyMicroseconds", report.value("tree_us", 0)},
                             {"TreeEntries", report.value("tree_entries", 0)}};
    *ctx.out << nlohmann::json{{"DBClusterSnapshot", j}}.dump(2) << "\n";
  } else {
    *ctx.out << fmt::format("created snapshot {} of cluster {} (write pause {:.1f} ms, {} chunks shared)\n", d.id,
                            c.id, report.value("pause_us", 0) / 1000.0, report.value("chunks_linked", 0));
  }
  return Status::Ok();
}

Status SnapshotList(Context& ctx) {
  std::vector<config::VolumeDescriptor> all = AllSnapshots(ctx);
  if (ctx.json) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& d : all) arr.push_back(SnapshotJson(ctx, d));
    *ctx.out << nlohmann::json{{"DBClusterSnapshots", arr}}.dump(2) << "\n";
    return Status::Ok();
  }
  *ctx.out << fmt::format("{:<24} {:<20} {:<10} {:<9} {}\n", "SNAPSHOT", "CLUSTER", "TYPE", "ENCRYPTED", "CREATED");
  for (const auto& d : all) {
    std::string src = snapshot::SnapshotSourceArn(d);
    *ctx.out << fmt::format("{:<24} {:<20} {:<10} {:<9} {}\n", d.id, src.substr(src.rfind(':') + 1),
                            snapshot::SnapshotType(d), d.storage_encrypted ? "yes" : "no", d.created_at);
  }
  return Status::Ok();
}

Status SnapshotDescribe(Context& ctx, const std::string& id) {
  CFS_ASSIGN_OR_RETURN(config::VolumeDescriptor d, LoadSnapshot(ctx, id));
  nlohmann::json j = SnapshotJson(ctx, d);
  if (ctx.json) {
    *ctx.out << nlohmann::json{{"DBClusterSnapshots", nlohmann::json::array({j})}}.dump(2) << "\n";
    return Status::Ok();
  }
  for (const auto& [k, v] : j.items()) {
    *ctx.out << fmt::format("{:<28} {}\n", k, v.is_string() ? v.get<std::string>() : v.dump());
  }
  return Status::Ok();
}

Status SnapshotDelete(Context& ctx, const std::string& id) {
  CFS_ASSIGN_OR_RETURN(config::VolumeDescriptor d, LoadSnapshot(ctx, id));
  snapshot::CleanStaleStaging(SnapshotsDir(ctx));
  CFS_RETURN_IF_ERROR(snapshot::DeleteVolumeVia(ctx.backing, SnapshotsDir(ctx), d.id));
  *ctx.out << fmt::format("deleted snapshot {}\n", d.id);
  return Status::Ok();
}

}  // namespace cfs::cli
