#include "cli/transcode_commands.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <random>

#include <fmt/format.h>

#include "cli/cluster_commands.h"
#include "cli/exit_codes.h"
#include "cli/snapshot_commands.h"
#include "common/atomic_file.h"
#include "common/log.h"
#include "snapshot/backup_policy.h"
#include "snapshot/snapshot.h"
#include "snapshot/volume_transcode.h"

namespace cfs::cli {
namespace {

std::atomic<bool> g_interrupted{false};

void OnSignal(int) { g_interrupted.store(true); }

// SIGINT, SIGTERM and SIGHUP set g_interrupted while in scope.
class InterruptScope {
 public:
  InterruptScope() {
    g_interrupted.store(false);
    struct sigaction sa {};
    sa.sa_handler = OnSignal;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < 3; ++i) ::sigaction(kSignals[i], &sa, &old_[i]);
  }
  ~InterruptScope() {
    for (int i = 0; i < 3; ++i) ::sigaction(kSignals[i], &old_[i], nullptr);
  }

 private:
  static constexpr int kSignals[3] = {SIGINT, SIGTERM, SIGHUP};
  struct sigaction old_[3];
};

// Progress on stderr: a redrawn bar on a terminal, else a line every 2 s.
class Progress {
 public:
  explicit Progress(std::string what) : what_(std::move(what)), tty_(::isatty(2) == 1) {}
  void Update(uint64_t done, uint64_t total) {
    auto now = std::chrono::steady_clock::now();
    bool last = done >= total;
    if (!last && now - shown_ < (tty_ ? std::chrono::milliseconds(100) : std::chrono::milliseconds(2000))) return;
    shown_ = now;
    int pct = total ? static_cast<int>(done * 100 / total) : 100;
    std::string sizes = fmt::format("{:.1f}/{:.1f} MiB", done / 1048576.0, total / 1048576.0);
    if (tty_) {
      std::string bar(pct / 4, '#');
      bar.resize(25, '.');
      std::fprintf(stderr, "\r%s [%s] %3d%% %s", what_.c_str(), bar.c_str(), pct, sizes.c_str());
    } else {
      std::fprintf(stderr, "%s: %d%% %s\n", what_.c_str(), pct, sizes.c_str());
    }
    std::fflush(stderr);
    drawn_ = tty_;
  }
  ~Progress() {
    if (drawn_) std::fputc('\n', stderr);
  }

 private:
  std::string what_;
  bool tty_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point shown_{};
};

std::string StagingPath(const std::string& parent, const std::string& name) {
  std::random_device rd;
  return fmt::format("{}/.tmp-{}-{}-{:08x}", parent, name, ::getpid(), rd());
}

void RemoveAll(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec) log::Warn("could not remove a staging folder: {}", ec.message());
}

// Runs the transcode into `staging` (created here) with progress and
// interruption; `finish` installs it. On any failure `staging` is removed.
Status TranscodeInto(Context& ctx, const std::string& staging, const std::string& src_dir,
                     const SecretBytes* src_key, const SecretBytes* dst_key, uint32_t chunk_blocks,
                     const std::string& what, const std::function<Status()>& finish) {
  if (::mkdir(staging.c_str(), 0700) != 0) return Status::FromErrno(errno, "mkdir " + staging);
  InterruptScope interrupts;
  Status s = [&]() -> Status {
    Progress progress(what);
    snapshot::TranscodeOptions o;
    o.chunk_blocks = chunk_blocks;
    o.progress = [&progress](uint64_t done, uint64_t total) { progress.Update(done, total); };
    o.cancel = &g_interrupted;
    return snapshot::TranscodeVolume(ctx.backing, src_dir, src_key, staging, dst_key, o, nullptr);
  }();
  if (s.ok() && g_interrupted.load()) s = Status(Code::kUnavailable, "interrupted", EINTR);
  if (s.ok()) s = finish();
  if (!s.ok()) {
    RemoveAll(staging);
    if (s.sys_errno() == EINTR) return Status(Code::kUnavailable, what + " interrupted; nothing was left behind", EINTR);
  }
  return s;
}

// `to` must be absent (its parent existing) or an empty directory.
Status CheckExportTarget(const std::string& to) {
  struct stat st;
  if (::lstat(to.c_str(), &st) != 0) {
    if (errno != ENOENT) return Status::FromErrno(errno, "stat " + to);
    std::string parent = std::filesystem::path(to).parent_path();
    if (!parent.empty() && !std::filesystem::is_directory(parent)) {
      return NotFound(fmt::format("the parent of {} does not exist; create it first", to));
    }
    return Status::Ok();
  }
  std::error_code ec;
  if (!S_ISDIR(st.st_mode) || !std::filesystem::is_empty(to, ec)) {
    return AlreadyExists(fmt::format("{} exists and is not an empty directory; export into a new or empty one", to));
  }
  return Status::Ok();
}

}  // namespace

Status ClusterExport(Context& ctx, const ExportArgs& args) {
  CFS_ASSIGN_OR_RETURN(config::VolumeDescriptor c, LoadCluster(ctx, args.id));
  std::string to = std::filesystem::absolute(args.to).lexically_normal().string();
  while (to.size() > 1 && to.back() == '/') to.pop_back();
  CFS_RETURN_IF_ERROR(CheckExportTarget(to));
  Result<FileLock> lock = FileLock::TryAcquire(ClusterDir(ctx, c.id) + "/mount.lock", FileLock::Mode::kExclusive);
  if (!lock.ok() && lock.status().code() == Code::kUnavailable) {
    return Status(Code::kUnavailable,
                  fmt::format("cluster {} is mounted; unmount it first, or export a clone of it (cipherfs cluster "
                              "clone)", c.id), EBUSY);
  }
  CFS_RETURN_IF_ERROR(lock.status());
  SecretBytes key;
  if (c.storage_encrypted) {
    CFS_ASSIGN_OR_RETURN(auto kms, ctx.open_kms(ctx.config.region));
    CFS_ASSIGN_OR_RETURN(keymgr::DecryptResult r,
                         kms->Decrypt(c.wrapped_data_key, ClusterEncryptionContext(snapshot::DataKeyContextArn(c)),
                                      c.kms_key_arn));
    key = std::move(r.plaintext);
  }
  std::filesystem::path target(to);
  std::string parent = target.parent_path().string();
  std::string staging = StagingPath(parent, target.filename().string());
  log::Info("exporting cluster {} (plaintext copy out)", c.id);
  CFS_RETURN_IF_ERROR(TranscodeInto(
      ctx, staging, ClusterDir(ctx, c.id), c.storage_encrypted ? &key : nullptr, nullptr, c.chunk_blocks,
      "export " + c.id, [&]() -> Status {
        CFS_RETURN_IF_ERROR(FsyncDir(staging));
        // rename(2) replaces an empty directory atomically; an absent target is simply created.
        if (::rename(staging.c_str(), to.c_str()) != 0) {
          if (errno == ENOTEMPTY || errno == EEXIST || errno == ENOTDIR) {
            return AlreadyExists(fmt::format("{} was filled meanwhile; nothing was exported", to));
          }
          return Status::FromErrno(errno, "rename into " + to);
        }
        return FsyncDir(parent);
      }));
  *ctx.out << fmt::format("exported cluster {} to {} (plaintext)\n", c.id, to);
  return Status::Ok();
}

Status RestoreEncrypting(Context& ctx, const config::VolumeDescriptor& s, const std::string& id,
                         const std::string& key) {
  config::VolumeDescriptor d = s;
  d.kind = config::VolumeKind::kCluster;
  d.id = id;
  d.arn = ClusterArn(ctx, id);
  d.status = "available";
  d.created_at = config::NowRfc3339();
  d.lineage.push_back({snapshot::kRelRestored, s.arn, d.created_at});
  CFS_ASSIGN_OR_RETURN(auto kms, ctx.open_kms(ctx.config.region));
  CFS_ASSIGN_OR_RETURN(auto dk, kms->GenerateDataKey(key, ClusterEncryptionContext(d.arn), 32));
  d.storage_encrypted = true;
  d.kms_key_arn = dk.key_arn;
  d.wrapped_data_key = dk.ciphertext_blob;
  d.cipher = std::string(config::kCipherAes256Gcm);
  CFS_RETURN_IF_ERROR(MakeDirs(ClustersDir(ctx), 0755));
  snapshot::CleanStaleStaging(ClustersDir(ctx));
  const std::string staging = StagingPath(ClustersDir(ctx), id);
  auto t0 = std::chrono::steady_clock::now();
  CFS_RETURN_IF_ERROR(TranscodeInto(
      ctx, staging, SnapshotDir(ctx, s.id), nullptr, &dk.plaintext, s.chunk_blocks, "encrypt " + id,
      [&]() -> Status {
        CFS_RETURN_IF_ERROR(config::WriteVolumeDescriptor(staging, d));
        snapshot::BackupPolicy p;
        p.window = snapshot::DefaultBackupWindow(id);
        CFS_RETURN_IF_ERROR(snapshot::WriteBackupPolicy(staging, p));
        CFS_RETURN_IF_ERROR(FsyncDir(staging));
        const std::string final_dir = ClusterDir(ctx, id);
        if (::renameat2(AT_FDCWD, staging.c_str(), AT_FDCWD, final_dir.c_str(), RENAME_NOREPLACE) != 0) {
          if (errno == EEXIST || errno == ENOTEMPTY) {
            return AlreadyExists(fmt::format("cluster {} already exists in region {}", id, ctx.config.region));
          }
          return Status::FromErrno(errno, "rename into " + final_dir);
        }
        return FsyncDir(ClustersDir(ctx));
      }));
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  if (ctx.json) {
    *ctx.out << nlohmann::json{{"DBCluster", ClusterJson(d)}}.dump(2) << "\n";
  } else {
    *ctx.out << fmt::format("created cluster {} from unencrypted snapshot {} in {} ms, every block encrypted with "
                            "{}\n", d.id, s.id, ms, d.kms_key_arn);
  }
  return Status::Ok();
}

}  // namespace cfs::cli
