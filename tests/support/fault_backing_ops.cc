// FaultBacking's Backing methods: count, maybe fail, record the pre-image of
// content changes, forward. Mutating calls hold mu_ from the check to the end
// of the forwarded call, so a pre-image is never raced by another write.
#include <fcntl.h>
#include <linux/falloc.h>
#include <unistd.h>

#include "support/fault_backing.h"

namespace cfs::test {

using Lock = std::lock_guard<std::mutex>;

Result<int> FaultBacking::OpenAt(int dirfd, const std::string& name, int flags, mode_t mode) {
  Lock lock(mu_);
  CFS_RETURN_IF_ERROR(EnterLocked(OpKind::kOpen, "openat", dirfd));
  // O_TRUNC of an existing file is a content change: open, then truncate
  // through the tracking path so that a power cut can undo it.
  bool trunc = (flags & O_TRUNC) != 0 && (flags & O_ACCMODE) != O_RDONLY;
  CFS_ASSIGN_OR_RETURN(int fd, inner_->OpenAt(dirfd, name, trunc ? flags & ~O_TRUNC : flags, mode));
  if (trunc) {
    auto change = RecordLocked(fd, Change::Type::kTruncate, 0, 0, 0);
    Status s = change.ok() ? inner_->Ftruncate(fd, 0) : change.status();
    if (!s.ok()) {
      (void)inner_->Close(fd);
      return s;
    }
  }
  return fd;
}

Status FaultBacking::Close(int fd) {
  Status s = Enter(OpKind::kClose, "close", fd);
  Status closed = inner_->Close(fd);  // the fd is released even when "failing"
  return s.ok() ? closed : s;
}

Result<size_t> FaultBacking::PRead(int fd, void* buf, size_t count, off_t offset) {
  CFS_RETURN_IF_ERROR(Enter(OpKind::kRead, "pread", fd));
  return inner_->PRead(fd, buf, count, offset);
}

Status FaultBacking::PWrite(int fd, const void* buf, size_t count, off_t offset) {
  Lock lock(mu_);
  CFS_RETURN_IF_ERROR(EnterLocked(OpKind::kWrite, "pwrite", fd));
  CFS_ASSIGN_OR_RETURN(Change * change, RecordLocked(fd, Change::Type::kWrite, offset, off_t(count), 0));
  Status s = inner_->PWrite(fd, buf, count, offset);
  if (!s.ok()) UpdateNewSizeLocked(fd, change);
  return s;
}

void FaultBacking::SetFsyncHook(std::function<void()> hook) {
  Lock lock(mu_);
  fsync_hook_ = std::move(hook);
}

Status FaultBacking::Fsync(int fd, bool datasync) {
  RunFsyncHook();
  Lock lock(mu_);
  CFS_RETURN_IF_ERROR(EnterLocked(OpKind::kFsync, datasync ? "fdatasync" : "fsync", fd));
  if (options_.real_fsync) {
    CFS_RETURN_IF_ERROR(inner_->Fsync(fd, datasync));
  } else if (fcntl(fd, F_GETFD) == -1) {
    return Status::FromErrno(errno, "fsync");
  }
  MarkDurableLocked(fd);
  return Status::Ok();
}

void FaultBacking::RunFsyncHook() {
  std::function<void()> hook;
  {
    Lock lock(mu_);
    hook = fsync_hook_;
  }
  if (hook) hook();
}

bool FaultBacking::OverwritesInPlace(int /*fd*/) { return options_.overwrites_in_place; }

Status FaultBacking::SyncOverwrites(int fd, int flush_fd) {
  RunFsyncHook();
  Lock lock(mu_);
  CFS_RETURN_IF_ERROR(EnterLocked(OpKind::kFsync, "sync_file_range", fd));
  if (options_.real_fsync) {
    CFS_RETURN_IF_ERROR(inner_->SyncOverwrites(fd, flush_fd));
  } else if (fcntl(fd, F_GETFD) == -1 || fcntl(flush_fd, F_GETFD) == -1) {
    return Status::FromErrno(errno, "sync_file_range");
  }
  if (!options_.overwrites_in_place) return Status(Code::kInternal, "SyncOverwrites on a backing that said no", EIO);
  MarkOverwritesDurableLocked(fd);
  return Status::Ok();
}

Status FaultBacking::Ftruncate(int fd, off_t length) {
  Lock lock(mu_);
  CFS_RETURN_IF_ERROR(EnterLocked(OpKind::kTruncate, "ftruncate", fd));
  if (length < 0) return inner_->Ftruncate(fd, length);  // EINVAL, nothing to record
  CFS_ASSIGN_OR_RETURN(Change * change, RecordLocked(fd, Change::Type::kTruncate, 0, 0, length));
  Status s = inner_->Ftruncate(fd, length);
  if (!s.ok()) UpdateNewSizeLocked(fd, change);
  return s;
}

Status FaultBacking::Fallocate(int fd, int mode, off_t offset, off_t length) {
  Lock lock(mu_);
  CFS_RETURN_IF_ERROR(EnterLocked(OpKind::kFallocate, "fallocate", fd));
  const int content = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE;
  if ((mode & ~(content | FALLOC_FL_KEEP_SIZE)) != 0 || (mode & content) == content) {
    return Status(Code::kUnimplemented, "FaultBacking: fallocate mode not simulated", EOPNOTSUPP);
  }
  CFS_ASSIGN_OR_RETURN(Change * change, RecordLocked(fd, Change::Type::kFallocate, offset,
                                                    (mode & content) != 0 ? length : 0, 0));
  Status s = inner_->Fallocate(fd, mode, offset, length);
  UpdateNewSizeLocked(fd, change);
  return s;
}

Result<struct stat> FaultBacking::Fstat(int fd) {
  CFS_RETURN_IF_ERROR(Enter(OpKind::kMetaRead, "fstat", fd));
  return inner_->Fstat(fd);
}

Result<off_t> FaultBacking::Lseek(int fd, off_t offset, int whence) {
  CFS_RETURN_IF_ERROR(Enter(OpKind::kMetaRead, "lseek", fd));
  return inner_->Lseek(fd, offset, whence);
}

Result<struct stat> FaultBacking::FstatAt(int dirfd, const std::string& name, int flags) {
  CFS_RETURN_IF_ERROR(Enter(OpKind::kMetaRead, "fstatat", dirfd));
  return inner_->FstatAt(dirfd, name, flags);
}

Status FaultBacking::MkdirAt(int dirfd, const std::string& name, mode_t mode) {
  Lock lock(mu_);
  CFS_RETURN_IF_ERROR(EnterLocked(OpKind::kMkdir, "mkdirat", dirfd));
  return inner_->MkdirAt(dirfd, name, mode);
}

Status FaultBacking::UnlinkAt(int dirfd, const std::string& name, int flags) {
  Lock lock(mu_);
  CFS_RETURN_IF_ERROR(EnterLocked(OpKind::kUnlink, "unlinkat", dirfd));
  return inner_->UnlinkAt(dirfd, name, flags);
}

Status FaultBacking::RenameAt(int olddirfd, const std::string& oldname, int newdirfd,
                              const std::string& newname, unsigned int flags) {
  Lock lock(mu_);
  CFS_RETURN_IF_ERROR(EnterLocked(OpKind::kRename, "renameat2", olddirfd));
  return inner_->RenameAt(olddirfd, oldname, newdirfd, newname, flags);
}

Status FaultBacking::LinkAt(int olddirfd, const std::string& oldname, int newdirfd, const std::string& newname,
                            int flags) {
  Lock lock(mu_);
  CFS_RETURN_IF_ERROR(EnterLocked(OpKind::kLink, "linkat", olddirfd));
  return inner_->LinkAt(olddirfd, oldname, newdirfd, newname, flags);
}

Status FaultBacking::SymlinkAt(const std::string& target, int dirfd, const std::string& name) {
  Lock lock(mu_);
  CFS_RETURN_IF_ERROR(EnterLocked(OpKind::kSymlink, "symlinkat", dirfd));
  return inner_->SymlinkAt(target, dirfd, name);
}

Result<std::string> FaultBacking::ReadlinkAt(int dirfd, const std::string& name) {
  CFS_RETURN_IF_ERROR(Enter(OpKind::kMetaRead, "readlinkat", dirfd));
  return inner_->ReadlinkAt(dirfd, name);
}

Status FaultBacking::MknodAt(int dirfd, const std::string& name, mode_t mode, dev_t dev) {
  Lock lock(mu_);
  CFS_RETURN_IF_ERROR(EnterLocked(OpKind::kMknod, "mknodat", dirfd));
  return inner_->MknodAt(dirfd, name, mode, dev);
}

Result<std::vector<std::string>> FaultBacking::ListDir(int dirfd) {
  CFS_RETURN_IF_ERROR(Enter(OpKind::kMetaRead, "listdir", dirfd));
  return inner_->ListDir(dirfd);
}

Result<struct statvfs> FaultBacking::Fstatvfs(int fd) {
  CFS_RETURN_IF_ERROR(Enter(OpKind::kMetaRead, "fstatvfs", fd));
  return inner_->Fstatvfs(fd);
}

Status FaultBacking::Fchmod(int fd, mode_t mode) {
  Lock lock(mu_);
  CFS_RETURN_IF_ERROR(EnterLocked(OpKind::kAttr, "fchmod", fd));
  return inner_->Fchmod(fd, mode);
}

Status FaultBacking::Fchown(int fd, uid_t uid, gid_t gid) {
  Lock lock(mu_);
  CFS_RETURN_IF_ERROR(EnterLocked(OpKind::kAttr, "fchown", fd));
  return inner_->Fchown(fd, uid, gid);
}

Status FaultBacking::FchownAt(int dirfd, const std::string& name, uid_t uid, gid_t gid, int flags) {
  Lock lock(mu_);
  CFS_RETURN_IF_ERROR(EnterLocked(OpKind::kAttr, "fchownat", dirfd));
  return inner_->FchownAt(dirfd, name, uid, gid, flags);
}

Status FaultBacking::Futimens(int fd, const struct timespec times[2]) {
  Lock lock(mu_);
  CFS_RETURN_IF_ERROR(EnterLocked(OpKind::kAttr, "futimens", fd));
  return inner_->Futimens(fd, times);
}

Status FaultBacking::UtimensAt(int dirfd, const std::string& name, const struct timespec times[2], int flags) {
  Lock lock(mu_);
  CFS_RETURN_IF_ERROR(EnterLocked(OpKind::kAttr, "utimensat", dirfd));
  return inner_->UtimensAt(dirfd, name, times, flags);
}

Result<size_t> FaultBacking::Fgetxattr(int fd, const std::string& name, void* value, size_t size) {
  CFS_RETURN_IF_ERROR(Enter(OpKind::kMetaRead, "getxattr", fd));
  return inner_->Fgetxattr(fd, name, value, size);
}

Status FaultBacking::Fsetxattr(int fd, const std::string& name, const void* value, size_t size, int flags) {
  Lock lock(mu_);
  CFS_RETURN_IF_ERROR(EnterLocked(OpKind::kAttr, "setxattr", fd));
  return inner_->Fsetxattr(fd, name, value, size, flags);
}

Result<size_t> FaultBacking::Flistxattr(int fd, char* list, size_t size) {
  CFS_RETURN_IF_ERROR(Enter(OpKind::kMetaRead, "listxattr", fd));
  return inner_->Flistxattr(fd, list, size);
}

Status FaultBacking::Fremovexattr(int fd, const std::string& name) {
  Lock lock(mu_);
  CFS_RETURN_IF_ERROR(EnterLocked(OpKind::kAttr, "removexattr", fd));
  return inner_->Fremovexattr(fd, name);
}

}  // namespace cfs::test
