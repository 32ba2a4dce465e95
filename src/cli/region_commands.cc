#include "cli/region_commands.h"

#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/cluster_commands.h"
#include "cli/exit_codes.h"
#include "cli/snapshot_commands.h"
#include "snapshot/copy_snapshot.h"
#include "snapshot/ship_remote.h"
#include "snapshot/snapshot.h"

namespace cfs::cli {
namespace {

std::atomic<bool> g_stop{false};

// Chunk workers of a cross-region copy: each waits mostly on its chunk's
// fsync, and concurrent fsyncs share the host's journal commits, so more
// workers than cores (bench_copy.sh: 2 workers 0.3x of cp -a, see
// docs/regions.md).
constexpr int64_t kCopyThreads = 8;

void OnStopSignal(int) { g_stop = true; }

// SIGINT/SIGTERM stop a copy between chunks (it stays resumable).
class StopSignals {
 public:
  StopSignals() {
    struct sigaction sa = {};
    sa.sa_handler = OnStopSignal;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, &old_int_);
    ::sigaction(SIGTERM, &sa, &old_term_);
  }
  ~StopSignals() {
    ::sigaction(SIGINT, &old_int_, nullptr);
    ::sigaction(SIGTERM, &old_term_, nullptr);
  }

 private:
  struct sigaction old_int_, old_term_;
};

int64_t EnvInt(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  return std::strtoll(v, nullptr, 10);
}

// Progress on stderr, at most once a second, and once at the end.
class ProgressPrinter {
 public:
  explicit ProgressPrinter(std::string what) : what_(std::move(what)), start_(Clock::now()), last_(start_) {}
  void Update(const snapshot::TransferProgress& p, bool final) {
    auto now = Clock::now();
    if (!final && now - last_ < std::chrono::seconds(1)) return;
    last_ = now;
    double secs = std::chrono::duration<double>(now - start_).count();
    std::cerr << fmt::format("{}: {}/{} chunks, {:.1f}/{:.1f} MiB, {:.0f} MiB/s{}\n", what_,
                             p.chunks_done + p.chunks_skipped, p.chunks_total + p.chunks_skipped,
                             p.bytes_done / 1048576.0, p.bytes_total / 1048576.0,
                             secs > 0 ? p.bytes_done / 1048576.0 / secs : 0.0,
                             p.chunks_skipped ? fmt::format(" ({} moved by an earlier run)", p.chunks_skipped) : "");
  }
  double seconds() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

 private:
  using Clock = std::chrono::steady_clock;
  std::string what_;
  Clock::time_point start_, last_;
};

Status CheckCopyArgs(const Context& ctx, const Context& src, const config::VolumeDescriptor& s,
                     const SnapshotCopyArgs& a) {
  if (!config::IsValidVolumeId(a.target_snapshot)) {
    return InvalidArgument(fmt::format("'{}' is not a valid snapshot id; use 1-63 letters, digits and hyphens, "
                                       "starting with a letter", a.target_snapshot));
  }
  std::error_code ec;
  if (std::filesystem::exists(SnapshotDir(ctx, a.target_snapshot), ec)) {
    return AlreadyExists(fmt::format("snapshot {} already exists in region {}; choose another --target-snapshot",
                                     a.target_snapshot, ctx.config.region));
  }
  bool cross = src.config.region != ctx.config.region;
  if (!s.storage_encrypted && a.kms_key_id) {
    return FailedPrecondition(fmt::format("snapshot {} is not encrypted and its copy can't be (DESIGN rule 4); drop "
                                          "--kms-key-id, or restore it encrypted with cipherfs cluster "
                                          "restore-from-snapshot --kms-key-id (rule 5)", s.id));
  }
  if (cross && s.storage_encrypted && !a.kms_key_id) {
    return FailedPrecondition(fmt::format("copying encrypted snapshot {} to region {} needs a KMS key of region {} "
                                          "(DESIGN rule 4: keys never leave their region); nothing was written in "
                                          "{}; add --kms-key-id KEY (see: cipherfs kms list-keys --region {})",
                                          s.id, ctx.config.region, ctx.config.region, ctx.config.region,
                                          ctx.config.region));
  }
  return Status::Ok();
}

// The copy's descriptor, its data key wrapped for it: same region by
// ReEncrypt; across regions by Decrypt in the source region and Encrypt in
// the target region (each region's audit log records its call).
Result<config::VolumeDescriptor> CopyDescriptor(Context& ctx, Context& src, const config::VolumeDescriptor& s,
                                                const SnapshotCopyArgs& a) {
  config::VolumeDescriptor d = s;
  NewVolumeHere(ctx, d, a.target_snapshot, SnapshotArn(ctx, a.target_snapshot), snapshot::kRelCopied, s.arn);
  if (!s.storage_encrypted) return d;
  keymgr::EncryptionContext from = ClusterEncryptionContext(snapshot::DataKeyContextArn(s));
  keymgr::EncryptionContext to = ClusterEncryptionContext(d.arn);
  if (src.config.region == ctx.config.region) {
    CFS_ASSIGN_OR_RETURN(auto kms, ctx.open_kms(ctx.config.region));
    CFS_ASSIGN_OR_RETURN(keymgr::ReEncryptResult r,
                         kms->ReEncrypt(s.wrapped_data_key, from, a.kms_key_id.value_or(s.kms_key_arn), to));
    d.wrapped_data_key = std::move(r.ciphertext_blob);
    d.kms_key_arn = r.key_arn;
    return d;
  }
  CFS_ASSIGN_OR_RETURN(auto source_kms, src.open_kms(src.config.region));
  CFS_ASSIGN_OR_RETURN(keymgr::DecryptResult plain, source_kms->Decrypt(s.wrapped_data_key, from, s.kms_key_arn));
  CFS_ASSIGN_OR_RETURN(auto target_kms, ctx.open_kms(ctx.config.region));
  CFS_ASSIGN_OR_RETURN(keymgr::EncryptResult wrapped, target_kms->Encrypt(*a.kms_key_id, plain.plaintext, to));
  d.wrapped_data_key = std::move(wrapped.ciphertext_blob);
  d.kms_key_arn = wrapped.key_arn;
  return d;
}

nlohmann::json CopyJson(const config::VolumeDescriptor& d, const config::VolumeDescriptor& s) {
  nlohmann::json j{{"DBClusterSnapshotIdentifier", d.id},     {"DBClusterSnapshotArn", d.arn},
                   {"SourceDBClusterSnapshotArn", s.arn},     {"SourceRegion", s.region},
                   {"StorageEncrypted", d.storage_encrypted}, {"Status", d.status},
                   {"SnapshotCreateTime", d.created_at},      {"Region", d.region}};
  if (d.storage_encrypted) j["KmsKeyId"] = d.kms_key_arn;
  return j;
}

snapshot::TransferOptions CopyOptionsFromEnv(ProgressPrinter* printer, int64_t threads);

Status CrossRegionCopy(Context& ctx, const config::VolumeDescriptor& s, const std::string& source_dir,
                       const config::VolumeDescriptor& d, const SnapshotCopyArgs& a) {
  snapshot::VolumeCopyJob job;
  job.source_dir = source_dir;
  job.parent_dir = SnapshotsDir(ctx);
  job.id = d.id;
  job.job_text = fmt::format("source {} created {}\ntarget {}\nkey {}\n", s.arn, s.created_at, d.arn,
                             a.kms_key_id.value_or("-"));
  ProgressPrinter printer(fmt::format("copy {} -> {}", s.id, d.id));
  snapshot::TransferOptions opt = CopyOptionsFromEnv(&printer, kCopyThreads);
  snapshot::VolumeCopyReport report;
  Status s2;
  {
    StopSignals signals;
    s2 = snapshot::CopyVolumeResumable(ctx.backing, job, d, opt, &report);
  }
  printer.Update(report.transfer, true);
  if (!s2.ok()) {
    return WithHint(s2, fmt::format("no snapshot {} was made; rerun the same command to resume, or remove what "
                                    "was moved with: cipherfs snapshot copy --abort --target-snapshot {} "
                                    "--region {}", d.id, d.id, ctx.config.region));
  }
  if (ctx.json) {
    nlohmann::json j = CopyJson(d, s);
    j["ChunksCopied"] = report.transfer.chunks_done;
    j["ChunksResumed"] = report.transfer.chunks_skipped;
    j["BytesCopied"] = report.transfer.bytes_done;
    j["Seconds"] = printer.seconds();
    *ctx.out << nlohmann::json{{"DBClusterSnapshot", j}}.dump(2) << "\n";
  } else {
    *ctx.out << fmt::format("copied snapshot {} ({}) to {} in region {}: {} chunks, {:.1f} MiB in {:.2f} s{}{}\n",
                            s.id, s.region, d.id, d.region, report.transfer.chunks_done,
                            report.transfer.bytes_done / 1048576.0, printer.seconds(),
                            report.resumed ? fmt::format(", resumed ({} chunks from earlier runs)",
                                                         report.transfer.chunks_skipped)
                                           : "",
                            d.storage_encrypted ? ", encrypted with " + d.kms_key_arn : ", not encrypted");
  }
  return Status::Ok();
}

snapshot::TransferOptions CopyOptionsFromEnv(ProgressPrinter* printer, int64_t threads) {
  snapshot::TransferOptions opt;
  opt.threads = static_cast<unsigned>(EnvInt("CIPHERFS_COPY_THREADS", threads));
  opt.corrupt_chunk = EnvInt("CIPHERFS_TEST_COPY_CORRUPT", -1);
  opt.stop_after = EnvInt("CIPHERFS_TEST_COPY_STOP_AFTER", -1);
  opt.stop = &g_stop;
  opt.progress = [printer](const snapshot::TransferProgress& p) { printer->Update(p, false); };
  return opt;
}

// The chunks and tree of snapshot `s` sent to `region serve` on another
// host; the data key decrypted here (source region's KMS) travels inside
// TLS and is wrapped there by the target region's KMS.
Status SendCopy(Context& src, const config::VolumeDescriptor& s, const SnapshotCopyArgs& a,
                const snapshot::RemoteTarget& target, snapshot::TransferProgress* progress, nlohmann::json* done) {
  std::optional<keymgr::DecryptResult> plain;
  if (s.storage_encrypted) {
    CFS_ASSIGN_OR_RETURN(auto kms, src.open_kms(src.config.region));
    CFS_ASSIGN_OR_RETURN(plain, kms->Decrypt(s.wrapped_data_key, ClusterEncryptionContext(snapshot::DataKeyContextArn(s)),
                                             s.kms_key_arn));
  }
  CFS_ASSIGN_OR_RETURN(std::string yaml, config::FormatVolumeYaml(s));
  snapshot::RemoteHello h{"copy", a.target_snapshot, "", a.kms_key_id.value_or(""),
                          fmt::format("source {} created {}\ntarget {}\nkey {}\n", s.arn, s.created_at,
                                      a.target_snapshot, a.kms_key_id.value_or("-")),
                          "", yaml};
  h.region = a.target_region;
  CFS_ASSIGN_OR_RETURN(auto session, snapshot::RemoteSession::Open(target, h, plain ? &plain->plaintext : nullptr));
  plain.reset();
  const std::string dir = SnapshotDir(src, s.id);
  CFS_RETURN_IF_ERROR(session->SendTree(src.backing, dir));
  CFS_ASSIGN_OR_RETURN(std::vector<snapshot::ChunkFile> all, snapshot::ListChunkFiles(src.backing, dir));
  uint64_t skipped = 0;
  std::vector<snapshot::ChunkFile> todo = snapshot::ChunksToSend(std::move(all), session->done(), &skipped);
  ProgressPrinter printer(fmt::format("copy {} -> {} at {}", s.id, a.target_snapshot, target.url()));
  snapshot::TransferOptions opt = CopyOptionsFromEnv(&printer, 2);  // one TLS stream: 2 readers suffice
  Status sent;
  {
    StopSignals signals;
    sent = snapshot::TransferChunks(src.backing, dir, todo, session->chunks(), opt, progress);
  }
  progress->chunks_skipped = skipped;
  printer.Update(*progress, true);
  CFS_RETURN_IF_ERROR(sent);
  CFS_ASSIGN_OR_RETURN(*done, session->Commit());
  return Status::Ok();
}

Status RemoteCopy(Context& ctx, Context& src, const config::VolumeDescriptor& s, const SnapshotCopyArgs& a) {
  CFS_ASSIGN_OR_RETURN(snapshot::RemoteTarget target, snapshot::ParseRemoteTarget(a.target, a.tls));
  if (src.config.region == ctx.config.region) {
    return InvalidArgument(fmt::format("--target {} is another region's server: name that region with --region",
                                       a.target));
  }
  SnapshotCopyArgs args = a;
  args.target_region = ctx.config.region;
  snapshot::TransferProgress progress;
  nlohmann::json done;
  auto t0 = std::chrono::steady_clock::now();
  Status st = SendCopy(src, s, args, target, &progress, &done);
  if (!st.ok()) {
    return WithHint(st, fmt::format("no snapshot {} was made in region {}; rerun the same command to resume, or "
                                    "remove what was moved with --abort on the target's host", a.target_snapshot,
                                    ctx.config.region));
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::string key_arn = done.value("key_arn", "");
  if (ctx.json) {
    nlohmann::json j{{"DBClusterSnapshotIdentifier", a.target_snapshot}, {"DBClusterSnapshotArn", done.value("arn", "")},
                     {"SourceDBClusterSnapshotArn", s.arn}, {"SourceRegion", s.region}, {"Region", ctx.config.region},
                     {"StorageEncrypted", s.storage_encrypted}, {"Target", a.target},
                     {"ChunksCopied", progress.chunks_done}, {"ChunksResumed", progress.chunks_skipped},
                     {"BytesCopied", progress.bytes_done}, {"Seconds", secs}};
    if (s.storage_encrypted) j["KmsKeyId"] = key_arn;
    *ctx.out << nlohmann::json{{"DBClusterSnapshot", j}}.dump(2) << "\n";
  } else {
    *ctx.out << fmt::format("copied snapshot {} ({}) to {} in region {} at {}: {} chunks, {:.1f} MiB in {:.2f} s{}{}\n",
                            s.id, s.region, a.target_snapshot, ctx.config.region, a.target, progress.chunks_done,
                            progress.bytes_done / 1048576.0, secs,
                            progress.chunks_skipped ? fmt::format(", resumed ({} chunks from earlier runs)",
                                                                  progress.chunks_skipped)
                                                    : "",
                            s.storage_encrypted ? ", encrypted with " + key_arn : ", not encrypted");
  }
  return Status::Ok();
}

}  // namespace

nlohmann::json LineageJson(const config::VolumeDescriptor& d) {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& e : d.lineage) arr.push_back({{"Relation", e.relation}, {"Arn", e.arn}, {"Time", e.at}});
  return arr;
}

std::string LastLineageArn(const config::VolumeDescriptor& d, const std::string& relation) {
  for (auto it = d.lineage.rbegin(); it != d.lineage.rend(); ++it) {
    if (it->relation == relation) return it->arn;
  }
  return "";
}

Context ContextForRegion(const Context& ctx, const std::string& region) {
  Context c = ctx;
  c.config.region = region;
  return c;
}

Status SnapshotCopy(Context& ctx, const SnapshotCopyArgs& a) {
  if (a.abort) {
    CFS_RETURN_IF_ERROR(snapshot::AbortVolumeCopy(SnapshotsDir(ctx), a.target_snapshot));
    *ctx.out << fmt::format("removed the interrupted copy to {} in region {}\n", a.target_snapshot,
                            ctx.config.region);
    return Status::Ok();
  }
  std::string source_region = a.source_region.value_or(ctx.config.region);
  if (!config::IsValidRegionName(source_region)) {
    return InvalidArgument(fmt::format("'{}' is not a valid region name (1-63 of a-z, 0-9 and '-')", source_region));
  }
  Context src = ContextForRegion(ctx, source_region);
  CFS_ASSIGN_OR_RETURN(config::VolumeDescriptor s, LoadSnapshot(src, a.source_snapshot));
  CFS_RETURN_IF_ERROR(CheckCopyArgs(ctx, src, s, a));
  if (!a.target.empty()) return RemoteCopy(ctx, src, s, a);
  CFS_ASSIGN_OR_RETURN(config::VolumeDescriptor d, CopyDescriptor(ctx, src, s, a));
  CFS_RETURN_IF_ERROR(MakeDirs(SnapshotsDir(ctx), 0755));
  if (source_region != ctx.config.region) return CrossRegionCopy(ctx, s, SnapshotDir(src, s.id), d, a);
  snapshot::CreateResult r;
  CFS_RETURN_IF_ERROR(snapshot::CreateCowVolume(ctx.backing, SnapshotDir(src, s.id), SnapshotsDir(ctx), d, nullptr, &r));
  if (ctx.json) {
    *ctx.out << nlohmann::json{{"DBClusterSnapshot", CopyJson(d, s)}}.dump(2) << "\n";
  } else {
    *ctx.out << fmt::format("copied snapshot {} to {} in region {} ({} chunks shared){}\n", s.id, d.id, d.region,
                            r.stats.chunks_linked,
                            d.storage_encrypted ? ", encrypted with " + d.kms_key_arn : ", not encrypted");
  }
  return Status::Ok();
}

}  // namespace cfs::cli
