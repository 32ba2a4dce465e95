#include "snapshot/snapshot.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <random>

#include <fmt/format.h>

#include "common/atomic_file.h"
#include "common/encoding.h"
#include "common/log.h"

namespace cfs::snapshot {
namespace {

int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string StagingName(const std::string& id) {
  std::random_device rd;
  return fmt::format(".tmp-{}-{}-{:08x}", id, ::getpid(), rd());
}

void RemoveAll(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec) log::Warn("could not remove {}: {}", path, ec.message());
}

const config::LineageEntry* LastSnapshotEntry(const config::VolumeDescriptor& d) {
  for (auto it = d.lineage.rbegin(); it != d.lineage.rend(); ++it) {
    if (it->relation == kRelManualSnapshot || it->relation == kRelAutomatedSnapshot) return &*it;
  }
  return nullptr;
}

// The O(1) pause: tree/ copied inside it, the data path told to preserve
// chunks for the snapshot, the chunks linked after it (store/chunk_cow.h).
// With `refresh`, `staging` holds an earlier snapshot, brought to the
// instant in place (tree/ and objects/).
Status CopyLive(store::Backing* b, const std::string& src_dir, const std::string& staging, const LiveHooks& live,
                CreateResult* r, bool refresh = false) {
  CopyOptions opt;
  opt.sync = false;
  Status made = b->MkdirAt(AT_FDCWD, staging + "/objects", 0700);
  if (!made.ok() && !(refresh && made.sys_errno() == EEXIST)) return made;
  CFS_ASSIGN_OR_RETURN(int objects, b->OpenAt(AT_FDCWD, staging + "/objects", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  // tree/ is copied before the pause and only caught up inside it.
  LiveTreeCopy tree(b, src_dir, staging, /*reuse=*/refresh);
  Status s = tree.Precopy(&r->stats);
  if (!s.ok()) {
    (void)b->Close(objects);
    return s;
  }
  int64_t t0 = NowUs();
  live.freeze();
  int64_t frozen = NowUs();
  s = tree.CatchUp(&r->stats);
  if (IsHardLinkChange(s)) {  // hard links changed: the whole tree again, inside the pause
    log::Info("snapshot: {}; copying tree/ again inside the pause", s.message());
    RemoveAll(staging + "/tree");
    r->stats.tree_entries = 0;
    s = CopyVolumeTree(b, src_dir, staging, opt, &r->stats);
  }
  if (s.ok()) s = live.data->BeginSnapshotLinks(objects, refresh);
  int64_t copied = NowUs();
  live.thaw();
  int64_t t1 = NowUs();
  r->pause_us = t1 - t0;
  r->freeze_us = frozen - t0;
  r->tree_us = copied - frozen;
  if (s.ok()) {
    Result<uint64_t> linked = live.data->FinishSnapshotLinks();
    if (linked.ok()) r->stats.chunks_linked = *linked;
    s = linked.status();
  }
  r->link_us = NowUs() - t1;
  (void)b->Close(objects);
  return s;
}

// A copy is thousands of files (chunk files, inode files, directories):
// one syncfs (files, directories and the journal of the host file system)
// where the backing has it, else one fsync each.
Status SyncCopy(store::Backing* b, const std::string& staging) {
  CFS_ASSIGN_OR_RETURN(int fd, b->OpenAt(AT_FDCWD, staging, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  Status s = b->SyncFilesystem(fd);
  (void)b->Close(fd);
  if (s.code() == Code::kUnimplemented) return SyncVolumeCopy(b, staging, true);
  return s;
}

// After `built` (the staging folder's contents): moves `staging` into
// place as `<parent_dir>/<id>`, durably; on any failure removes it.
Status Publish(Status built, const std::string& staging, const std::string& parent_dir, const std::string& id) {
  const std::string final_dir = parent_dir + "/" + id;
  Status s = built;
  if (s.ok()) s = FsyncDir(staging);
  if (s.ok() && ::renameat2(AT_FDCWD, staging.c_str(), AT_FDCWD, final_dir.c_str(), RENAME_NOREPLACE) != 0) {
    s = errno == EEXIST || errno == ENOTEMPTY ? AlreadyExists(fmt::format("{} already exists in {}", id, parent_dir))
                                              : Status::FromErrno(errno, "rename into " + final_dir);
  }
  if (s.ok()) s = FsyncDir(parent_dir);
  if (!s.ok()) RemoveAll(staging);
  return s;
}

// With `refresh` (`live` with `data` only), `staging` holds an earlier
// snapshot (CopyLive).
Status BuildStaged(store::Backing* b, const std::string& src_dir, const std::string& staging,
                   const config::VolumeDescriptor& d, const LiveHooks* live, CreateResult* r, bool refresh = false) {
  if (live && live->data) {
    CFS_RETURN_IF_ERROR(CopyLive(b, src_dir, staging, *live, r, refresh));
    CFS_RETURN_IF_ERROR(SyncCopy(b, staging));
    return config::WriteVolumeDescriptor(staging, d);
  }
  CopyOptions opt;
  opt.sync = false;
  opt.tolerate_vanished_chunks = live != nullptr;
  int64_t t0 = NowUs();
  if (live) live->freeze();
  Status s = CopyVolumeCow(b, src_dir, staging, opt, &r->stats);
  if (live) live->thaw();
  r->pause_us = NowUs() - t0;
  CFS_RETURN_IF_ERROR(s);
  CFS_RETURN_IF_ERROR(SyncCopy(b, staging));
  return config::WriteVolumeDescriptor(staging, d);
}

}  // namespace

Status CreateCowVolume(store::Backing* b, const std::string& src_dir, const std::string& parent_dir,
                       const config::VolumeDescriptor& d, const LiveHooks* live, CreateResult* result) {
  CreateResult local;
  CreateResult* r = result ? result : &local;
  int64_t t0 = NowUs();
  const std::string final_dir = parent_dir + "/" + d.id;
  std::error_code ec;
  if (std::filesystem::exists(final_dir, ec)) {
    return AlreadyExists(fmt::format("{} already exists in {}", d.id, parent_dir));
  }
  CleanStaleStaging(parent_dir);
  const std::string staging = parent_dir + "/" + StagingName(d.id);
  if (::mkdir(staging.c_str(), 0700) != 0) return Status::FromErrno(errno, "mkdir " + staging);
  CFS_RETURN_IF_ERROR(Publish(BuildStaged(b, src_dir, staging, d, live, r), staging, parent_dir, d.id));
  r->total_us = NowUs() - t0;
  return Status::Ok();
}

Status RefreshCowVolume(store::Backing* b, const std::string& src_dir, const std::string& parent_dir,
                        const config::VolumeDescriptor& d, const LiveHooks& live, CreateResult* result) {
  if (!live.data) return InvalidArgument("a snapshot is refreshed only from a mounted volume");
  CreateResult local;
  CreateResult* r = result ? result : &local;
  const std::string final_dir = parent_dir + "/" + d.id;
  std::error_code ec;
  if (!std::filesystem::exists(final_dir, ec)) return CreateCowVolume(b, src_dir, parent_dir, d, &live, r);
  int64_t t0 = NowUs();
  CleanStaleStaging(parent_dir);
  const std::string staging = parent_dir + "/" + StagingName(d.id);
  if (::renameat2(AT_FDCWD, final_dir.c_str(), AT_FDCWD, staging.c_str(), RENAME_NOREPLACE) != 0) {
    return Status::FromErrno(errno, "rename " + final_dir);
  }
  CFS_RETURN_IF_ERROR(
      Publish(BuildStaged(b, src_dir, staging, d, &live, r, /*refresh=*/true), staging, parent_dir, d.id));
  r->total_us = NowUs() - t0;
  return Status::Ok();
}

Status DeleteVolume(const std::string& parent_dir, const std::string& id) {
  const std::string dir = parent_dir + "/" + id;
  const std::string doomed = parent_dir + "/" + StagingName("delete-" + id);
  if (::rename(dir.c_str(), doomed.c_str()) != 0) {
    if (errno == ENOENT) return NotFound(fmt::format("{} not found in {}", id, parent_dir));
    return Status::FromErrno(errno, "rename " + dir);
  }
  CFS_RETURN_IF_ERROR(FsyncDir(parent_dir));
  std::error_code ec;
  std::filesystem::remove_all(doomed, ec);
  if (ec) return Status::FromErrno(ec.value(), "remove " + doomed);
  return Status::Ok();
}

void CleanStaleStaging(const std::string& parent_dir) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(parent_dir, ec)) {
    std::string name = e.path().filename();
    if (name.rfind(".tmp-", 0) != 0) continue;
    // .tmp-<id>-<pid>-<random>: the pid is the second-to-last field.
    size_t last = name.rfind('-');
    if (last == std::string::npos || last == 0) continue;
    size_t prev = name.rfind('-', last - 1);
    if (prev == std::string::npos) continue;
    pid_t pid = static_cast<pid_t>(std::strtol(name.substr(prev + 1, last - prev - 1).c_str(), nullptr, 10));
    if (pid <= 0) continue;
    if (pid != ::getpid() && ::kill(pid, 0) != 0 && errno == ESRCH) {
      log::Info("removing leftover staging folder {}", name);
      RemoveAll(e.path());
    }
  }
}

Result<VolumeUsage> MeasureUsage(const std::string& dir) {
  VolumeUsage u;
  std::error_code ec;
  auto it = std::filesystem::recursive_directory_iterator(dir + "/objects", ec);
  if (ec) return Status::FromErrno(ec.value(), "read " + dir + "/objects");
  for (const auto& e : it) {
    struct stat st;
    if (::lstat(e.path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    uint64_t bytes = static_cast<uint64_t>(st.st_blocks) * 512;
    ++u.chunk_files;
    if (st.st_nlink > 1) u.shared_bytes += bytes;
    else u.exclusive_bytes += bytes;
  }
  return u;
}

std::string DataKeyContextArn(const config::VolumeDescriptor& d) {
  if (d.kind == config::VolumeKind::kCluster) return d.arn;
  // A snapshot copy (copy_snapshot.h) has its own blob, made for its own ARN.
  for (auto it = d.lineage.rbegin(); it != d.lineage.rend(); ++it) {
    if (it->relation == kRelCopied) return d.arn;
    if (it->relation == kRelManualSnapshot || it->relation == kRelAutomatedSnapshot) break;
  }
  const config::LineageEntry* e = LastSnapshotEntry(d);
  return e ? e->arn : d.arn;
}

std::string SnapshotType(const config::VolumeDescriptor& d) {
  const config::LineageEntry* e = LastSnapshotEntry(d);
  return e && e->relation == kRelAutomatedSnapshot ? "automated" : "manual";
}

std::string SnapshotSourceArn(const config::VolumeDescriptor& d) {
  const config::LineageEntry* e = LastSnapshotEntry(d);
  return e ? e->arn : "";
}

}  // namespace cfs::snapshot
