#include "snapshot/copy_snapshot.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>

#include <fmt/format.h>

#include "common/atomic_file.h"
#include "common/log.h"
#include "snapshot/volume_copy.h"

namespace cfs::snapshot {
namespace {

int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Status MkdirOk(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) return Status::FromErrno(errno, "mkdir " + path);
  return Status::Ok();
}

Status RemoveTree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec) return Status::FromErrno(ec.value(), "remove " + path);
  return Status::Ok();
}

// Claims the staging folder for `job`: a new one, or one of the same job.
Status ClaimStaging(const std::string& staging, const VolumeCopyJob& job, bool* resumed) {
  Result<std::string> existing = ReadSmallFile(staging + "/job", 64 * 1024);
  if (existing.ok()) {
    if (*existing != job.job_text) {
      return FailedPrecondition(fmt::format("an interrupted copy to {} of another source is in {}; rerun that "
                                            "copy, or remove it with --abort",
                                            job.id, staging));
    }
    *resumed = true;
    return Status::Ok();
  }
  if (existing.status().code() != Code::kNotFound) return existing.status();
  return WriteFileAtomically(staging + "/job", job.job_text, 0600);
}

}  // namespace

std::string CopyStagingDir(const std::string& parent_dir, const std::string& id) {
  return parent_dir + "/.copy-" + id;
}

Result<std::unique_ptr<CopyStaging>> CopyStaging::Open(store::Backing* b, const VolumeCopyJob& job) {
  const std::string final_dir = job.parent_dir + "/" + job.id;
  std::error_code ec;
  if (std::filesystem::exists(final_dir, ec)) {
    return AlreadyExists(fmt::format("{} already exists in {}", job.id, job.parent_dir));
  }
  const std::string staging = CopyStagingDir(job.parent_dir, job.id);
  CFS_RETURN_IF_ERROR(MkdirOk(staging));
  CFS_ASSIGN_OR_RETURN(FileLock lock, FileLock::TryAcquire(staging + "/lock", FileLock::Mode::kExclusive));
  std::unique_ptr<CopyStaging> c(new CopyStaging(b, job, std::move(lock)));
  c->staging_ = staging;
  c->volume_ = staging + "/volume";
  CFS_RETURN_IF_ERROR(ClaimStaging(staging, job, &c->resumed_));
  CFS_RETURN_IF_ERROR(MkdirOk(c->volume_));
  CFS_RETURN_IF_ERROR(MkdirOk(c->volume_ + "/objects"));
  CFS_RETURN_IF_ERROR(RemoveTree(c->volume_ + "/tree"));  // small: sent again on every run
  CFS_ASSIGN_OR_RETURN(c->receiver_, LocalReceiver::Open(b, c->volume_, staging + "/manifest"));
  return c;
}

Status CopyStaging::Commit(const config::VolumeDescriptor& d) {
  CFS_RETURN_IF_ERROR(receiver_->Finish());
  CFS_RETURN_IF_ERROR(config::WriteVolumeDescriptor(volume_, d));
  CFS_RETURN_IF_ERROR(SyncReceivedVolume(b_, volume_));
  CFS_RETURN_IF_ERROR(FsyncDir(staging_));
  const std::string final_dir = job_.parent_dir + "/" + job_.id;
  if (::renameat2(AT_FDCWD, volume_.c_str(), AT_FDCWD, final_dir.c_str(), RENAME_NOREPLACE) != 0) {
    if (errno == EEXIST || errno == ENOTEMPTY) {
      return AlreadyExists(fmt::format("{} already exists in {}", job_.id, job_.parent_dir));
    }
    return Status::FromErrno(errno, "rename into " + final_dir);
  }
  CFS_RETURN_IF_ERROR(FsyncDir(job_.parent_dir));
  Status rm = RemoveTree(staging_);
  if (!rm.ok()) log::Warn("copy {}: could not remove {}: {}", job_.id, staging_, rm.ToString());
  return Status::Ok();
}

Status CopyVolumeResumable(store::Backing* b, const VolumeCopyJob& job, const config::VolumeDescriptor& d,
                           const TransferOptions& options, VolumeCopyReport* report) {
  VolumeCopyReport local;
  VolumeCopyReport* r = report ? report : &local;
  int64_t t0 = NowUs();
  CFS_ASSIGN_OR_RETURN(std::unique_ptr<CopyStaging> st, CopyStaging::Open(b, job));
  r->resumed = st->resumed();
  CopyOptions copt;
  copt.sync = false;  // SyncReceivedVolume at Commit
  CFS_RETURN_IF_ERROR(CopyVolumeTree(b, job.source_dir, st->volume_dir(), copt, nullptr));
  CFS_ASSIGN_OR_RETURN(std::vector<ChunkFile> all, ListChunkFiles(b, job.source_dir));
  std::vector<ChunkFile> todo = ChunksToSend(std::move(all), st->receiver()->done(), &r->transfer.chunks_skipped);
  if (r->transfer.chunks_skipped > 0) {
    log::Info("copy {}: resuming, {} chunk(s) already moved, {} to go", job.id, r->transfer.chunks_skipped,
              todo.size());
  }
  uint64_t skipped = r->transfer.chunks_skipped;
  CFS_RETURN_IF_ERROR(TransferChunks(b, job.source_dir, todo, st->receiver(), options, &r->transfer));
  r->transfer.chunks_skipped = skipped;
  CFS_RETURN_IF_ERROR(st->Commit(d));
  r->total_us = NowUs() - t0;
  return Status::Ok();
}

Status AbortVolumeCopy(const std::string& parent_dir, const std::string& id) {
  const std::string staging = CopyStagingDir(parent_dir, id);
  std::error_code ec;
  if (!std::filesystem::exists(staging, ec)) {
    return NotFound(fmt::format("no interrupted copy to {} in {}", id, parent_dir));
  }
  CFS_ASSIGN_OR_RETURN(FileLock lock, FileLock::TryAcquire(staging + "/lock", FileLock::Mode::kExclusive));
  return RemoveTree(staging);
}

}  // namespace cfs::snapshot
