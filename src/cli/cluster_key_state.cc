#include "cli/cluster_key_state.h"

#include <unistd.h>

#include <cstdlib>
#include <ctime>

#include <fmt/format.h>

#include "cli/exit_codes.h"

#include <nlohmann/json.hpp>

#include "cli/cluster_commands.h"
#include "common/atomic_file.h"
#include "common/log.h"
#include "keymgr/kms_error.h"
#include "snapshot/snapshot.h"

namespace cfs::cli {
namespace {

constexpr int64_t kDefaultTerminalAfter = 7 * 86400;

std::string NotePath(const std::string& cluster_dir) { return cluster_dir + "/key-state.json"; }

int64_t TerminalAfterSeconds() {
  const char* env = std::getenv("CIPHERFS_INACCESSIBLE_TERMINAL_AFTER");
  if (env == nullptr || *env == '\0') return kDefaultTerminalAfter;
  char* end = nullptr;
  long long v = std::strtoll(env, &end, 10);
  if (*end != '\0' || v < 0) {
    log::Warn("cli: CIPHERFS_INACCESSIBLE_TERMINAL_AFTER={} is not a number of seconds; using 7 days", env);
    return kDefaultTerminalAfter;
  }
  return v;
}

Status WriteNote(const std::string& cluster_dir, const KeyStateNote& note) {
  nlohmann::json j{{"reason", note.reason}, {"since", note.since}};
  return WriteFileAtomically(NotePath(cluster_dir), j.dump(1) + "\n", 0644);
}

// Persists `status` in volume.yaml (re-read fresh: others may have changed it).
Status SetStatus(const std::string& cluster_dir, const std::string& status) {
  CFS_ASSIGN_OR_RETURN(config::VolumeDescriptor d, config::ReadVolumeDescriptor(cluster_dir));
  if (d.status == status) return Status::Ok();
  d.status = status;
  return config::WriteVolumeDescriptor(cluster_dir, d);
}

Status MarkRecoverable(const std::string& cluster_dir, const std::string& reason) {
  std::optional<KeyStateNote> old = ReadKeyStateNote(cluster_dir);
  KeyStateNote note{reason, old ? old->since : static_cast<int64_t>(std::time(nullptr))};
  CFS_RETURN_IF_ERROR(WriteNote(cluster_dir, note));
  return SetStatus(cluster_dir, kStatusRecoverable);
}

std::string Since(int64_t t) { return t > 0 ? FormatTime(t) : "an unknown time"; }

}  // namespace

std::optional<KeyStateNote> ReadKeyStateNote(const std::string& cluster_dir) {
  Result<std::string> text = ReadSmallFile(NotePath(cluster_dir), 64 * 1024);
  if (!text.ok()) return std::nullopt;
  try {
    nlohmann::json j = nlohmann::json::parse(*text);
    return KeyStateNote{j.at("reason").get<std::string>(), j.at("since").get<int64_t>()};
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::function<bool()> ClusterKeyCheck(std::shared_ptr<keymgr::KeyManager> kms, const config::VolumeDescriptor& d,
                                      std::string cluster_dir) {
  return [kms = std::move(kms), blob = d.wrapped_data_key, key_arn = d.kms_key_arn, id = d.id,
          context = ClusterEncryptionContext(snapshot::DataKeyContextArn(d)), dir = std::move(cluster_dir)] {
    Result<keymgr::DecryptResult> r = kms->Decrypt(blob, context, key_arn);
    if (r.ok()) return true;  // the plaintext copy is wiped right here (SecretBytes)
    if (!keymgr::KmsErrorOf(r.status())) {
      log::Warn("cli: key check of cluster {} could not ask the KMS: {}", id, r.status().ToString());
      return true;
    }
    log::Error("cli: cluster {} lost access to its key {}: {}; keys wiped, I/O fails with EIO", id, key_arn,
               r.status().message());
    Status s = MarkRecoverable(dir, r.status().message());
    if (!s.ok()) log::Error("cli: could not record the state of cluster {}: {}", id, s.ToString());
    return false;
  };
}

Result<config::VolumeDescriptor> RefreshClusterKeyState(const Context& ctx, config::VolumeDescriptor d) {
  if (d.status != kStatusRecoverable) return d;
  std::optional<KeyStateNote> note = ReadKeyStateNote(ClusterDir(ctx, d.id));
  int64_t since = note ? note->since : 0;
  if (since > 0 && std::time(nullptr) - since < TerminalAfterSeconds()) return d;
  if (since == 0) {  // no note (written by hand or lost): start the clock now
    CFS_RETURN_IF_ERROR(WriteNote(ClusterDir(ctx, d.id), {"unknown", static_cast<int64_t>(std::time(nullptr))}));
    return d;
  }
  d.status = kStatusTerminal;
  CFS_RETURN_IF_ERROR(config::WriteVolumeDescriptor(ClusterDir(ctx, d.id), d));
  return d;
}

std::string ClusterStatusReason(const Context& ctx, const config::VolumeDescriptor& d) {
  if (d.status != kStatusRecoverable && d.status != kStatusTerminal) return "";
  std::optional<KeyStateNote> note = ReadKeyStateNote(ClusterDir(ctx, d.id));
  std::string why = note ? note->reason : "the cluster's KMS key could not be used";
  int64_t since = note ? note->since : 0;
  if (d.status == kStatusTerminal) {
    return fmt::format("key unusable since {} ({}); terminal: restore from a snapshot", Since(since), why);
  }
  return fmt::format("key unusable since {} ({}); make the key usable and run: cipherfs cluster start --id {} "
                     "before {}",
                     Since(since), why, d.id, Since(since + TerminalAfterSeconds()));
}

Status ClusterStart(Context& ctx, const std::string& id) {
  CFS_ASSIGN_OR_RETURN(config::VolumeDescriptor d, LoadCluster(ctx, id));
  CFS_ASSIGN_OR_RETURN(d, RefreshClusterKeyState(ctx, std::move(d)));
  if (d.status == kStatusTerminal) {
    return FailedPrecondition(fmt::format("cluster {} is {}: {}; create a new cluster with: cipherfs cluster "
                                          "restore-from-snapshot",
                                          id, d.status, ClusterStatusReason(ctx, d)));
  }
  if (d.status == "available") {
    *ctx.out << fmt::format("cluster {} is already available\n", id);
    return Status::Ok();
  }
  if (d.status != kStatusRecoverable) {
    return FailedPrecondition(fmt::format("cluster {} is {}; only a cluster in {} can be started", id, d.status,
                                          kStatusRecoverable));
  }
  CFS_ASSIGN_OR_RETURN(auto kms, ctx.open_kms(d.region));
  Result<keymgr::DecryptResult> r =
      kms->Decrypt(d.wrapped_data_key, ClusterEncryptionContext(snapshot::DataKeyContextArn(d)), d.kms_key_arn);
  if (!r.ok()) {
    return WithHint(r.status(), fmt::format("cluster {} stays {} until its key {} is usable (enable it, cancel its "
                                            "deletion or restore the grant), then run: cipherfs cluster start --id {}",
                                            id, d.status, d.kms_key_arn, id));
  }
  d.status = "available";
  CFS_RETURN_IF_ERROR(config::WriteVolumeDescriptor(ClusterDir(ctx, id), d));
  ::unlink((ClusterDir(ctx, id) + "/key-state.json").c_str());
  *ctx.out << fmt::format("cluster {} is available again; if it is still mounted (keys wiped), unmount and mount it "
                          "again\n",
                          id);
  return Status::Ok();
}

}  // namespace cfs::cli
