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

Status BuildInStaging(store::Backing* b, const VolumeCopyJob& job, const std::string& staging,
                      const config::VolumeDescriptor& d, const TransferOptions& options, VolumeCopyReport* r) {
  const std::string volume = staging + "/volume";
  CFS_RETURN_IF_ERROR(MkdirOk(volume));
  CFS_RETURN_IF_ERROR(MkdirOk(volume + "/objects"));
  CFS_RETURN_IF_ERROR(RemoveTree(volume + "/tree"));  // small: copied again on every run
  CopyOptions copt;
  CFS_RETURN_IF_ERROR(CopyVolumeTree(b, job.source_dir, volume, copt, nullptr));
  CFS_ASSIGN_OR_RETURN(auto receiver, LocalReceiver::Open(b, volume, staging + "/manifest"));
  CFS_ASSIGN_OR_RETURN(std::vector<ChunkFile> all, ListChunkFiles(b, job.source_dir));
  std::vector<ChunkFile> todo;
  for (auto& c : all) {
    auto it = receiver->done().find(c.rel);
    if (it != receiver->done().end() && it->second == c.size) {
      ++r->transfer.chunks_skipped;
    } else {
      todo.push_back(std::move(c));
    }
  }
  if (r->transfer.chunks_skipped > 0) {
    log::Info("copy {}: resuming, {} chunk(s) already moved, {} to go", job.id, r->transfer.chunks_skipped,
              todo.size());
  }
  uint64_t skipped = r->transfer.chunks_skipped;
  CFS_RETURN_IF_ERROR(TransferChunks(b, job.source_dir, todo, receiver.get(), options, &r->transfer));
  r->transfer.chunks_skipped = skipped;
  CFS_RETURN_IF_ERROR(config::WriteVolumeDescriptor(volume, d));
  CFS_RETURN_IF_ERROR(SyncVolumeCopy(b, volume, false));
  return FsyncDir(staging);
}

}  // namespace

std::string CopyStagingDir(const std::string& parent_dir, const std::string& id) {
  return parent_dir + "/.copy-" + id;
}

Status CopyVolumeResumable(store::Backing* b, const VolumeCopyJob& job, const config::VolumeDescriptor& d,
                           const TransferOptions& options, VolumeCopyReport* report) {
  VolumeCopyReport local;
  VolumeCopyReport* r = report ? report : &local;
  int64_t t0 = NowUs();
  const std::string final_dir = job.parent_dir + "/" + job.id;
  std::error_code ec;
  if (std::filesystem::exists(final_dir, ec)) {
    return AlreadyExists(fmt::format("{} already exists in {}", job.id, job.parent_dir));
  }
  const std::string staging = CopyStagingDir(job.parent_dir, job.id);
  CFS_RETURN_IF_ERROR(MkdirOk(staging));
  CFS_ASSIGN_OR_RETURN(FileLock lock, FileLock::TryAcquire(staging + "/lock", FileLock::Mode::kExclusive));
  CFS_RETURN_IF_ERROR(ClaimStaging(staging, job, &r->resumed));
  CFS_RETURN_IF_ERROR(BuildInStaging(b, job, staging, d, options, r));
  const std::string volume = staging + "/volume";
  if (::renameat2(AT_FDCWD, volume.c_str(), AT_FDCWD, final_dir.c_str(), RENAME_NOREPLACE) != 0) {
    if (errno == EEXIST || errno == ENOTEMPTY) {
      return AlreadyExists(fmt::format("{} already exists in {}", job.id, job.parent_dir));
    }
    return Status::FromErrno(errno, "rename into " + final_dir);
  }
  CFS_RETURN_IF_ERROR(FsyncDir(job.parent_dir));
  Status rm = RemoveTree(staging);
  if (!rm.ok()) log::Warn("copy {}: could not remove {}: {}", job.id, staging, rm.ToString());
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
