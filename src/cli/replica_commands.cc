#include "cli/replica_commands.h"

#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>
#include <ctime>
#include <optional>
#include <filesystem>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/cluster_commands.h"
#include "cli/exit_codes.h"
#include "cli/mount_commands.h"
#include "cli/region_commands.h"
#include "cli/snapshot_commands.h"
#include "common/atomic_file.h"
#include "common/log.h"
#include "snapshot/replica_ship.h"
#include "snapshot/snapshot.h"

namespace cfs::cli {
namespace {

constexpr char kRelReplicaOf[] = "replica-of";
constexpr char kRelPromoted[] = "promoted-from-replica";
// Bound on how stale a same-region replica's view is after the writer's
// fsync: its name and attribute timeout (fs/mount.cc, read-only mounts).
constexpr int kSameRegionLagBoundMs = 1000;

std::string ReplicasDir(const Context& ctx) { return ctx.config.RegionDir() + "/replicas"; }
std::string ReplicaDir(const Context& ctx, const std::string& id) { return ReplicasDir(ctx) + "/" + id; }
std::string StatePath(const Context& ctx, const std::string& id) { return ReplicaDir(ctx, id) + ".json"; }

int64_t UnixNow() { return static_cast<int64_t>(std::time(nullptr)); }

std::string Absolute(const std::string& path) {
  std::error_code ec;
  std::filesystem::path p = std::filesystem::absolute(path, ec);
  return ec ? path : p.string();
}

Result<nlohmann::json> LoadState(const Context& ctx, const std::string& id) {
  if (!config::IsValidVolumeId(id)) return InvalidArgument(fmt::format("'{}' is not a valid replica id", id));
  Result<std::string> text = ReadSmallFile(StatePath(ctx, id), 64 * 1024);
  if (!text.ok() && text.status().code() == Code::kNotFound) {
    return NotFound(fmt::format("replica {} not found in region {}; create it with: cipherfs replica create", id,
                                ctx.config.region));
  }
  CFS_RETURN_IF_ERROR(text.status());
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("kind") || !j.contains("source")) {
    return DataLoss(fmt::format("{} is not a replica state file", StatePath(ctx, id)));
  }
  return j;
}

Status SaveState(const Context& ctx, const std::string& id, const nlohmann::json& j) {
  return WriteFileAtomically(StatePath(ctx, id), j.dump(2) + "\n", 0600);
}

// Rule 6: a replica has its source's encryption.
Status CheckEncryption(const config::VolumeDescriptor& src, const ReplicaCreateArgs& a, bool cross) {
  if (!src.storage_encrypted && (a.storage_encrypted || a.kms_key_id)) {
    return FailedPrecondition(fmt::format("cluster {} is not encrypted, so its replica can't be (DESIGN rule 6); "
                                          "drop --storage-encrypted/--kms-key-id, or restore a snapshot of it "
                                          "with --kms-key-id for an encrypted cluster", src.id));
  }
  if (src.storage_encrypted && cross && !a.kms_key_id) {
    return FailedPrecondition(fmt::format("cluster {} is encrypted, so its replica in another region must be too "
                                          "(DESIGN rule 6), under a key of that region; add --kms-key-id KEY",
                                          src.id));
  }
  if (src.storage_encrypted && !cross && a.kms_key_id) {
    return FailedPrecondition(fmt::format("a same-region replica is the source's own volume under its key {} "
                                          "(DESIGN rule 6); drop --kms-key-id", src.kms_key_arn));
  }
  return Status::Ok();
}

Status CreateSameRegion(Context& ctx, const config::VolumeDescriptor& src, const ReplicaCreateArgs& a) {
  if (a.mountpoint.empty()) {
    return InvalidArgument("a same-region replica is a read-only mount: give --mountpoint DIR");
  }
  nlohmann::json state{{"kind", "same-region"}, {"source", src.id}, {"source_arn", src.arn},
                       {"mountpoint", a.mountpoint}, {"created_at", config::NowRfc3339()}};
  CFS_RETURN_IF_ERROR(MakeDirs(ReplicasDir(ctx), 0755));
  CFS_RETURN_IF_ERROR(SaveState(ctx, a.id, state));
  MountArgs m;
  m.id = src.id;
  m.mountpoint = a.mountpoint;
  m.options = a.options;
  m.foreground = a.foreground;
  m.read_only = true;
  Status s = Mount(ctx, m);
  if (!s.ok()) (void)::unlink(StatePath(ctx, a.id).c_str());
  return s;
}

// The replica's descriptor: a cluster of this region whose data key is the
// source's, decrypted in the source region and encrypted under `key` here.
Result<config::VolumeDescriptor> ReplicaDescriptor(Context& ctx, Context& src_ctx, const config::VolumeDescriptor& src,
                                                   const std::string& id, const std::optional<std::string>& key) {
  config::VolumeDescriptor d = src;
  d.kind = config::VolumeKind::kCluster;
  NewVolumeHere(ctx, d, id, ClusterArn(ctx, id), kRelReplicaOf, src.arn);
  if (!src.storage_encrypted) return d;
  CFS_ASSIGN_OR_RETURN(auto source_kms, src_ctx.open_kms(src_ctx.config.region));
  CFS_ASSIGN_OR_RETURN(keymgr::DecryptResult plain,
                       source_kms->Decrypt(src.wrapped_data_key, ClusterEncryptionContext(src.arn), src.kms_key_arn));
  CFS_RETURN_IF_ERROR(WrapDataKeyHere(ctx, d, *key, plain.plaintext));
  return d;
}

// A replica on another host: its receiving end and this end's identity, as
// `replica create --target` recorded them.
Result<snapshot::RemoteTarget> TargetOf(const nlohmann::json& state) {
  crypto::TlsIdentity id{state.value("tls_cert", ""), state.value("tls_key", ""), state.value("tls_ca", "")};
  return snapshot::ParseRemoteTarget(state.value("target", ""), id);
}

// One shipment to another host: the diff is made here (both snapshots are
// in the source region), the changes go over TLS; the first shipment also
// carries the data key (decrypted in the source region; the receiving end
// wraps it under the key of its region).
Status ShipRemote(Context& src, const nlohmann::json& state, const std::string& id, int64_t gen,
                  const config::VolumeDescriptor& cluster, const std::string& new_snap, const std::string& old_snap,
                  const std::string& point_in_time, snapshot::ShipReport* r) {
  auto t0 = std::chrono::steady_clock::now();
  CFS_ASSIGN_OR_RETURN(snapshot::RemoteTarget target, TargetOf(state));
  CFS_ASSIGN_OR_RETURN(std::vector<snapshot::ChunkFile> now, snapshot::ListChunkFiles(src.backing, new_snap));
  std::vector<snapshot::ChunkFile> before, changed;
  if (!old_snap.empty()) {
    CFS_ASSIGN_OR_RETURN(before, snapshot::ListChunkFiles(src.backing, old_snap));
  }
  std::vector<std::string> removed;
  snapshot::DiffChunks(before, now, &changed, &removed, &r->chunks_unchanged);
  CFS_ASSIGN_OR_RETURN(std::string yaml, config::FormatVolumeYaml(cluster));
  snapshot::RemoteHello h{"ship", id, state.value("region", ""), state.value("key_id", ""), "", point_in_time, yaml};
  std::optional<keymgr::DecryptResult> plain;
  if (gen == 1 && cluster.storage_encrypted) {
    CFS_ASSIGN_OR_RETURN(auto kms, src.open_kms(src.config.region));
    CFS_ASSIGN_OR_RETURN(plain, kms->Decrypt(cluster.wrapped_data_key, ClusterEncryptionContext(cluster.arn),
                                             cluster.kms_key_arn));
  }
  CFS_ASSIGN_OR_RETURN(auto session, snapshot::RemoteSession::Open(target, h, plain ? &plain->plaintext : nullptr));
  plain.reset();
  CFS_RETURN_IF_ERROR(session->SendTree(src.backing, new_snap));
  for (const auto& rel : removed) CFS_RETURN_IF_ERROR(session->chunks()->Remove(rel));
  snapshot::TransferOptions opt;
  CFS_RETURN_IF_ERROR(snapshot::TransferChunks(src.backing, new_snap, changed, session->chunks(), opt, &r->transfer));
  CFS_RETURN_IF_ERROR(session->Commit().status());
  r->chunks_removed = removed.size();
  r->total_us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
  return Status::Ok();
}

// A replica ships from two snapshots of its source, taken in turn: the one
// shipped last (the diff's base, untouched until the next shipment is in)
// and the other, refreshed to the new instant (snapshot::RefreshCowVolume).
std::array<std::string, 2> ShipSnapshots(const std::string& id) {
  return {fmt::format("replica-{}-a", id), fmt::format("replica-{}-b", id)};
}

// One shipment under the replica's lock: snapshot the source, ship, record.
Status ShipOnce(Context& ctx, const std::string& id, nlohmann::json& state, snapshot::ShipReport* report) {
  Context src = ContextForRegion(ctx, state.at("source_region").get<std::string>());
  std::string cluster = state.at("source").get<std::string>();
  int64_t gen = state.value("generation", 0) + 1;
  std::string old_snap = state.value("last_snapshot", "");
  const auto pair = ShipSnapshots(id);
  std::string snap_id = old_snap == pair[0] ? pair[1] : pair[0];
  CFS_ASSIGN_OR_RETURN(config::VolumeDescriptor c, LoadCluster(src, cluster));
  config::VolumeDescriptor sd = SnapshotDescriptor(src, c, snap_id, "manual");
  nlohmann::json snap_report;
  auto snap_t0 = std::chrono::steady_clock::now();
  Status snapped = CowCopyOfCluster(src, cluster, sd, &snap_report, /*refresh=*/true);
  if (snapped.code() == Code::kAlreadyExists) {  // a daemon of an older version makes snapshots only
    (void)snapshot::DeleteVolume(SnapshotsDir(src), snap_id);
    snapped = CowCopyOfCluster(src, cluster, sd, &snap_report);
  }
  CFS_RETURN_IF_ERROR(snapped);
  report->snapshot_us =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - snap_t0).count();
  report->snapshot_pause_us = snap_report.value("pause_us", int64_t{0});
  std::string old_dir = old_snap.empty() ? "" : SnapshotDir(src, old_snap);
  Status s = [&]() -> Status {
    if (state.contains("target")) {
      return ShipRemote(src, state, id, gen, c, SnapshotDir(src, snap_id), old_dir, sd.created_at, report);
    }
    CFS_ASSIGN_OR_RETURN(config::VolumeDescriptor d, config::ReadVolumeDescriptor(ReplicaDir(ctx, id) + ".desc"));
    snapshot::TransferOptions opt;
    return snapshot::ShipImage(ctx.backing, SnapshotDir(src, snap_id), old_dir, ReplicaDir(ctx, id), d, opt, report);
  }();
  if (!s.ok()) {
    (void)snapshot::DeleteVolume(SnapshotsDir(src), snap_id);
    return s;
  }
  state["generation"] = gen;
  state["last_snapshot"] = snap_id;
  state["shipped_point_in_time"] = sd.created_at;
  state["shipped_unix"] = UnixNow();
  CFS_RETURN_IF_ERROR(SaveState(ctx, id, state));
  // Kept for the next shipment; one named by an older version goes.
  if (!old_snap.empty() && old_snap != pair[0] && old_snap != pair[1]) {
    (void)snapshot::DeleteVolume(SnapshotsDir(src), old_snap);
  }
  return Status::Ok();
}

Status ShipLocked(Context& ctx, const std::string& id, snapshot::ShipReport* report) {
  CFS_ASSIGN_OR_RETURN(FileLock lock, FileLock::Acquire(ReplicaDir(ctx, id) + ".lock", FileLock::Mode::kExclusive));
  CFS_ASSIGN_OR_RETURN(nlohmann::json state, LoadState(ctx, id));
  if (state["kind"] != "cross-region") {
    return FailedPrecondition(fmt::format("replica {} shares its source's volume; there is nothing to ship", id));
  }
  return ShipOnce(ctx, id, state, report);
}

void PrintShip(Context& ctx, const std::string& id, const snapshot::ShipReport& r) {
  *ctx.out << fmt::format("shipped replica {}: {} chunk(s) changed ({:.1f} MiB), {} unchanged, {} removed, {:.2f} s "
                          "(source snapshot {:.3f} s, writes held {:.4f} s; tree {:.3f} s, install {:.3f} s)\n",
                          id, r.transfer.chunks_done, r.transfer.bytes_done / 1048576.0, r.chunks_unchanged,
                          r.chunks_removed, r.total_us / 1e6, r.snapshot_us / 1e6, r.snapshot_pause_us / 1e6,
                          r.tree_us / 1e6, r.install_us / 1e6);
}

// A replica on another host: only the sending end's state is kept here
// (in this host's folder of the replica's region); the receiving end makes
// the replica's descriptor, with its data key wrapped there.
Status CreateRemote(Context& ctx, const config::VolumeDescriptor& src, Context& src_ctx, const ReplicaCreateArgs& a) {
  CFS_RETURN_IF_ERROR(snapshot::ParseRemoteTarget(a.target, a.tls).status());
  nlohmann::json state{{"kind", "cross-region"}, {"source", src.id}, {"source_arn", src.arn},
                       {"source_region", src_ctx.config.region}, {"region", ctx.config.region},
                       {"target", a.target}, {"tls_cert", Absolute(a.tls.cert_file)},
                       {"tls_key", Absolute(a.tls.key_file)}, {"tls_ca", Absolute(a.tls.ca_file)},
                       {"key_id", a.kms_key_id.value_or("")}, {"generation", 0}, {"created_at", config::NowRfc3339()}};
  CFS_RETURN_IF_ERROR(MakeDirs(ReplicasDir(ctx), 0755));
  CFS_RETURN_IF_ERROR(SaveState(ctx, a.id, state));
  snapshot::ShipReport report;
  Status s = ShipLocked(ctx, a.id, &report);
  if (!s.ok()) {
    (void)::unlink(StatePath(ctx, a.id).c_str());
    return s;
  }
  *ctx.out << fmt::format("created replica {} of {} ({}) in region {} at {}\n", a.id, src.id, src_ctx.config.region,
                          ctx.config.region, a.target);
  PrintShip(ctx, a.id, report);
  return Status::Ok();
}

Status CreateCrossRegion(Context& ctx, const config::VolumeDescriptor& src, Context& src_ctx,
                         const ReplicaCreateArgs& a) {
  if (!a.target.empty()) return CreateRemote(ctx, src, src_ctx, a);
  std::error_code ec;
  if (std::filesystem::exists(ClusterDir(ctx, a.id), ec)) {
    return AlreadyExists(fmt::format("cluster {} already exists in region {}; choose another --id", a.id,
                                     ctx.config.region));
  }
  CFS_ASSIGN_OR_RETURN(config::VolumeDescriptor d, ReplicaDescriptor(ctx, src_ctx, src, a.id, a.kms_key_id));
  CFS_RETURN_IF_ERROR(MakeDirs(ReplicasDir(ctx), 0755));
  CFS_RETURN_IF_ERROR(MakeDirs(ReplicaDir(ctx, a.id) + ".desc", 0700));
  CFS_RETURN_IF_ERROR(config::WriteVolumeDescriptor(ReplicaDir(ctx, a.id) + ".desc", d));
  nlohmann::json state{{"kind", "cross-region"},  {"source", src.id},          {"source_arn", src.arn},
                       {"source_region", src_ctx.config.region}, {"arn", d.arn}, {"generation", 0},
                       {"created_at", d.created_at}};
  CFS_RETURN_IF_ERROR(SaveState(ctx, a.id, state));
  snapshot::ShipReport report;
  Status s = ShipLocked(ctx, a.id, &report);
  if (!s.ok()) {
    std::filesystem::remove_all(ReplicaDir(ctx, a.id) + ".desc", ec);
    std::filesystem::remove_all(ReplicaDir(ctx, a.id), ec);
    (void)::unlink(StatePath(ctx, a.id).c_str());
    return s;
  }
  *ctx.out << fmt::format("created replica {} of {} ({}) in region {}{}\n", a.id, src.id, src_ctx.config.region,
                          ctx.config.region, d.storage_encrypted ? ", encrypted with " + d.kms_key_arn : "");
  PrintShip(ctx, a.id, report);
  return Status::Ok();
}

}  // namespace

Status ReplicaCreate(Context& ctx, const ReplicaCreateArgs& a) {
  if (!config::IsValidVolumeId(a.id)) {
    return InvalidArgument(fmt::format("'{}' is not a valid replica id; use 1-63 letters, digits and hyphens", a.id));
  }
  std::string source_region = a.source_region.value_or(ctx.config.region);
  if (!config::IsValidRegionName(source_region)) {
    return InvalidArgument(fmt::format("'{}' is not a valid region name", source_region));
  }
  Context src_ctx = ContextForRegion(ctx, source_region);
  CFS_ASSIGN_OR_RETURN(config::VolumeDescriptor src, LoadCluster(src_ctx, a.source));
  bool cross = source_region != ctx.config.region;
  CFS_RETURN_IF_ERROR(CheckEncryption(src, a, cross));
  std::error_code ec;
  if (std::filesystem::exists(StatePath(ctx, a.id), ec)) {
    return AlreadyExists(fmt::format("replica {} already exists in region {}; choose another --id", a.id,
                                     ctx.config.region));
  }
  if (!cross) return CreateSameRegion(ctx, src, a);
  if (!a.mountpoint.empty()) {
    return InvalidArgument("a cross-region replica is not mounted while it follows its source; drop --mountpoint "
                           "(promote it to mount it)");
  }
  return CreateCrossRegion(ctx, src, src_ctx, a);
}

// A following shipper yields to the source's workload: CPU nice +10 and
// the lowest best-effort I/O priority, for this thread and the workers it
// starts (both are inherited). When the machine is busy its shipments take
// longer -- the replica lags more -- instead of the source slowing down.
void LowerShipperPriority() {
  constexpr int kNice = 10;
  constexpr int kIoprioWhoProcess = 1, kIoprioClassBestEffort = 2, kIoprioClassShift = 13, kLowestLevel = 7;
  if (::setpriority(PRIO_PROCESS, 0, kNice) != 0) log::Warn("replica ship: setpriority: {}", std::strerror(errno));
  if (::syscall(SYS_ioprio_set, kIoprioWhoProcess, 0, (kIoprioClassBestEffort << kIoprioClassShift) | kLowestLevel) != 0) {
    log::Warn("replica ship: ioprio_set: {}", std::strerror(errno));
  }
}

// With --follow a failed shipment (the replica keeps its last image) is
// logged and tried again after the interval; kMaxFollowFailures in a row
// end the loop with the last error.
constexpr int kMaxFollowFailures = 10;

Status ReplicaShip(Context& ctx, const std::string& id, bool follow, int interval_ms) {
  if (follow) LowerShipperPriority();
  int failures = 0;
  do {
    snapshot::ShipReport report;
    Status s = ShipLocked(ctx, id, &report);
    if (s.ok()) {
      failures = 0;
      PrintShip(ctx, id, report);
      ctx.out->flush();
    } else if (!follow || ++failures >= kMaxFollowFailures) {
      return s;
    } else {
      log::Warn("replica ship {}: shipment failed ({} in a row), the replica keeps its last image; retrying in "
                "{} ms: {}", id, failures, interval_ms, s.ToString());
    }
    if (follow) std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
  } while (follow);
  return Status::Ok();
}

Status ReplicaDescribe(Context& ctx, const std::string& id) {
  CFS_ASSIGN_OR_RETURN(nlohmann::json state, LoadState(ctx, id));
  nlohmann::json j{{"DBClusterIdentifier", id},
                   {"ReplicationSourceIdentifier", state.value("source_arn", "")},
                   {"ReplicaKind", state.value("kind", "")},
                   {"Region", ctx.config.region}};
  if (state["kind"] == "same-region") {
    std::string mp = state.value("mountpoint", "");
    j["Mountpoint"] = mp;
    j["Mounted"] = MountedFsType(mp) == "fuse.cipherfs";
    j["ReplicaLagBoundSeconds"] = kSameRegionLagBoundMs / 1000.0;
  } else {
    Result<config::VolumeDescriptor> d = config::ReadVolumeDescriptor(ReplicaDir(ctx, id) + ".desc");
    if (d.ok()) {
      j["DBClusterArn"] = d->arn;
      j["StorageEncrypted"] = d->storage_encrypted;
      if (d->storage_encrypted) j["KmsKeyId"] = d->kms_key_arn;
    }
    j["SourceRegion"] = state.value("source_region", "");
    if (state.contains("target")) j["Target"] = state.value("target", "");
    j["ShippedPointInTime"] = state.value("shipped_point_in_time", "");
    j["Generation"] = state.value("generation", 0);
    j["ReplicaLagSeconds"] = UnixNow() - state.value("shipped_unix", int64_t{0});
  }
  if (ctx.json) {
    *ctx.out << nlohmann::json{{"DBClusters", nlohmann::json::array({j})}}.dump(2) << "\n";
    return Status::Ok();
  }
  for (const auto& [k, v] : j.items()) {
    *ctx.out << fmt::format("{:<28} {}\n", k, v.is_string() ? v.get<std::string>() : v.dump());
  }
  return Status::Ok();
}

Status ReplicaPromote(Context& ctx, const std::string& id) {
  CFS_ASSIGN_OR_RETURN(FileLock lock, FileLock::Acquire(ReplicaDir(ctx, id) + ".lock", FileLock::Mode::kExclusive));
  CFS_ASSIGN_OR_RETURN(nlohmann::json state, LoadState(ctx, id));
  if (state["kind"] != "cross-region") {
    return FailedPrecondition(fmt::format("replica {} is a read-only mount of cluster {} in this region; unmount it "
                                          "(its source is already writable)", id, state.value("source", "")));
  }
  if (state.contains("target")) {
    return FailedPrecondition(fmt::format("replica {} lives on the host serving {}; run replica promote there",
                                          id, state.value("target", "")));
  }
  CFS_ASSIGN_OR_RETURN(config::VolumeDescriptor d, config::ReadVolumeDescriptor(ReplicaDir(ctx, id)));
  // The image before the last one (kept for the next shipment) shares its
  // chunk files: gone first, so the cluster's writes break no copy-on-write.
  {
    std::error_code ec;
    std::filesystem::remove_all(ReplicaDir(ctx, id) + ".ship", ec);
    if (ec) return Status::FromErrno(ec.value(), "remove " + ReplicaDir(ctx, id) + ".ship");
  }
  d.lineage.push_back({kRelPromoted, d.arn, config::NowRfc3339()});
  CFS_RETURN_IF_ERROR(config::WriteVolumeDescriptor(ReplicaDir(ctx, id), d));
  CFS_RETURN_IF_ERROR(MakeDirs(ClustersDir(ctx), 0755));
  if (::renameat2(AT_FDCWD, ReplicaDir(ctx, id).c_str(), AT_FDCWD, ClusterDir(ctx, id).c_str(), RENAME_NOREPLACE) !=
      0) {
    if (errno == EEXIST || errno == ENOTEMPTY) {
      return AlreadyExists(fmt::format("cluster {} already exists in region {}", id, ctx.config.region));
    }
    return Status::FromErrno(errno, "rename " + ReplicaDir(ctx, id));
  }
  CFS_RETURN_IF_ERROR(FsyncDir(ClustersDir(ctx)));
  std::error_code ec;
  std::filesystem::remove_all(ReplicaDir(ctx, id) + ".desc", ec);
  (void)::unlink(StatePath(ctx, id).c_str());
  Context src = ContextForRegion(ctx, state.value("source_region", ctx.config.region));
  std::string last = state.value("last_snapshot", "");
  if (!last.empty()) (void)snapshot::DeleteVolume(SnapshotsDir(src), last);
  for (const std::string& snap : ShipSnapshots(id)) (void)snapshot::DeleteVolume(SnapshotsDir(src), snap);
  *ctx.out << fmt::format("promoted replica {} to a standalone cluster in region {} (image of {} at {})\n", id,
                          ctx.config.region, state.value("source", ""), state.value("shipped_point_in_time", ""));
  return Status::Ok();
}

namespace {

// The replica's descriptor here, made by its first shipment.
Result<config::VolumeDescriptor> RemoteReplicaDescriptor(Context& ctx, const snapshot::RemoteHello& h,
                                                         const config::VolumeDescriptor& src, const SecretBytes& key) {
  std::error_code ec;
  if (std::filesystem::exists(ClusterDir(ctx, h.target_id), ec)) {
    return AlreadyExists(fmt::format("cluster {} already exists in region {}", h.target_id, ctx.config.region));
  }
  ReplicaCreateArgs a;
  if (!h.key_id.empty()) a.kms_key_id = h.key_id;
  CFS_RETURN_IF_ERROR(CheckEncryption(src, a, true));
  if (src.storage_encrypted && key.empty()) {
    return FailedPrecondition(fmt::format("replica {} does not exist in region {}; create it again", h.target_id,
                                          ctx.config.region));
  }
  config::VolumeDescriptor d = src;
  d.kind = config::VolumeKind::kCluster;
  NewVolumeHere(ctx, d, h.target_id, ClusterArn(ctx, h.target_id), kRelReplicaOf, src.arn);
  CFS_RETURN_IF_ERROR(WrapDataKeyHere(ctx, d, h.key_id, key));
  return d;
}

}  // namespace

Status ServeReplicaShipment(Context& ctx, snapshot::ShipWire& wire, const snapshot::RemoteHello& h,
                            const config::VolumeDescriptor& src, const SecretBytes& key) {
  const std::string& id = h.target_id;
  if (!config::IsValidVolumeId(id)) return InvalidArgument(fmt::format("'{}' is not a valid replica id", id));
  CFS_RETURN_IF_ERROR(MakeDirs(ReplicasDir(ctx), 0755));
  CFS_ASSIGN_OR_RETURN(FileLock lock, FileLock::Acquire(ReplicaDir(ctx, id) + ".lock", FileLock::Mode::kExclusive));
  Result<nlohmann::json> loaded = LoadState(ctx, id);
  bool first = !loaded.ok() && loaded.status().code() == Code::kNotFound;
  if (!first) CFS_RETURN_IF_ERROR(loaded.status());
  nlohmann::json state = first ? nlohmann::json{{"kind", "cross-region"}, {"source", src.id}, {"source_arn", src.arn},
                                                {"source_region", src.region}, {"generation", 0},
                                                {"created_at", config::NowRfc3339()}}
                               : *loaded;
  if (state.value("kind", "") != "cross-region" || state.contains("target") || state.value("source_arn", "") != src.arn) {
    return FailedPrecondition(fmt::format("replica {} of region {} is not a replica of {}", id, ctx.config.region, src.arn));
  }
  const std::string desc_dir = ReplicaDir(ctx, id) + ".desc";
  if (first) {
    CFS_ASSIGN_OR_RETURN(config::VolumeDescriptor d, RemoteReplicaDescriptor(ctx, h, src, key));
    CFS_RETURN_IF_ERROR(MakeDirs(desc_dir, 0700));
    CFS_RETURN_IF_ERROR(config::WriteVolumeDescriptor(desc_dir, d));
  }
  CFS_ASSIGN_OR_RETURN(config::VolumeDescriptor d, config::ReadVolumeDescriptor(desc_dir));
  Status s = [&]() -> Status {
    CFS_ASSIGN_OR_RETURN(auto st, snapshot::ShipStaging::Open(ctx.backing, ReplicaDir(ctx, id), /*keep_tree=*/false));
    CFS_RETURN_IF_ERROR(wire.Send(snapshot::ShipMsg::kReady, nlohmann::json::object()));
    CFS_RETURN_IF_ERROR(snapshot::ReceiveImage(wire, ctx.backing, st->dir(), st->receiver()));
    CFS_RETURN_IF_ERROR(st->Install(d));
    state["generation"] = state.value("generation", 0) + 1;
    state["shipped_point_in_time"] = h.point_in_time;
    state["shipped_unix"] = UnixNow();
    return SaveState(ctx, id, state);
  }();
  if (!s.ok()) {
    if (first) {
      std::error_code ec;
      std::filesystem::remove_all(desc_dir, ec);
      std::filesystem::remove_all(ReplicaDir(ctx, id), ec);
    }
    return s;
  }
  return wire.Send(snapshot::ShipMsg::kDone, {{"arn", d.arn}, {"generation", state["generation"]}});
}

}  // namespace cfs::cli
