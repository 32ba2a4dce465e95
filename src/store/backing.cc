// PosixBacking: the Backing interface as plain Linux syscalls.
// errno is read once, right after the failing syscall, into a Status.
// Thread safety: stateless; every method may be called from any thread.
#include "store/backing.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>

namespace cfs::store {
namespace {

// Retries `call` while it fails with EINTR; returns its last result (errno
// is left as the call set it).
template <typename F>
auto RetryEintr(F call) {
  decltype(call()) r;
  do {
    r = call();
  } while (r == -1 && errno == EINTR);
  return r;
}

Status Err(int err, const char* syscall, const std::string& what) {
  std::string msg(syscall);
  if (!what.empty()) {
    msg += ' ';
    msg += what;
  }
  return Status::FromErrno(err, msg);
}

std::string FdName(int fd) { return "fd " + std::to_string(fd); }

// "/proc/self/fd/N": lets the kernel resolve an O_PATH fd for the syscalls
// that refuse O_PATH fds (fchmod, futimens, f*xattr).
std::string ProcPath(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

// True if `fd` was opened with O_PATH. A failing fcntl is reported as
// "not O_PATH" so that the fd syscall itself reports the error (EBADF).
bool IsOPath(int fd) {
  int fl = fcntl(fd, F_GETFL);
  return fl != -1 && (fl & O_PATH) != 0;
}

}  // namespace

// Every fd is opened O_CLOEXEC: the daemon forks helpers (fusermount3) and
// must not leak backing fds into them.
Result<int> PosixBacking::OpenAt(int dirfd, const std::string& name, int flags, mode_t mode) {
  int fd = RetryEintr([&] { return openat(dirfd, name.c_str(), flags | O_CLOEXEC, mode); });
  if (fd == -1) return Err(errno, "openat", name);
  return fd;
}

Status PosixBacking::Close(int fd) {
  // Linux releases the fd even when close fails with EINTR: never retry.
  if (close(fd) == -1 && errno != EINTR) return Err(errno, "close", FdName(fd));
  return Status::Ok();
}

Result<size_t> PosixBacking::PRead(int fd, void* buf, size_t count, off_t offset) {
  size_t done = 0;
  auto* p = static_cast<char*>(buf);
  while (done < count) {
    ssize_t n = RetryEintr([&] { return pread(fd, p + done, count - done, offset + off_t(done)); });
    if (n == -1) return Err(errno, "pread", FdName(fd));
    if (n == 0) break;  // end of file
    done += size_t(n);
  }
  return done;
}

Status PosixBacking::PWrite(int fd, const void* buf, size_t count, off_t offset) {
  size_t done = 0;
  const auto* p = static_cast<const char*>(buf);
  while (done < count) {
    ssize_t n = RetryEintr([&] { return pwrite(fd, p + done, count - done, offset + off_t(done)); });
    if (n == -1) return Err(errno, "pwrite", FdName(fd));
    if (n == 0) return Err(EIO, "pwrite (wrote nothing)", FdName(fd));
    done += size_t(n);
  }
  return Status::Ok();
}

Status PosixBacking::Fsync(int fd, bool datasync) {
  int r = RetryEintr([&] { return datasync ? fdatasync(fd) : fsync(fd); });
  if (r == -1) return Err(errno, datasync ? "fdatasync" : "fsync", FdName(fd));
  return Status::Ok();
}

Status PosixBacking::Ftruncate(int fd, off_t length) {
  if (RetryEintr([&] { return ftruncate(fd, length); }) == -1) return Err(errno, "ftruncate", FdName(fd));
  return Status::Ok();
}

Status PosixBacking::Fallocate(int fd, int mode, off_t offset, off_t length) {
  if (RetryEintr([&] { return fallocate(fd, mode, offset, length); }) == -1) {
    return Err(errno, "fallocate", FdName(fd));
  }
  return Status::Ok();
}

Result<struct stat> PosixBacking::Fstat(int fd) {
  struct stat st {};
  if (fstat(fd, &st) == -1) return Err(errno, "fstat", FdName(fd));
  return st;
}

Result<off_t> PosixBacking::Lseek(int fd, off_t offset, int whence) {
  off_t r = lseek(fd, offset, whence);
  if (r == off_t(-1)) return Err(errno, "lseek", FdName(fd));
  return r;
}

Result<struct stat> PosixBacking::FstatAt(int dirfd, const std::string& name, int flags) {
  struct stat st {};
  if (fstatat(dirfd, name.c_str(), &st, flags) == -1) return Err(errno, "fstatat", name);
  return st;
}

Status PosixBacking::MkdirAt(int dirfd, const std::string& name, mode_t mode) {
  if (RetryEintr([&] { return mkdirat(dirfd, name.c_str(), mode); }) == -1) return Err(errno, "mkdirat", name);
  return Status::Ok();
}

Status PosixBacking::UnlinkAt(int dirfd, const std::string& name, int flags) {
  if (RetryEintr([&] { return unlinkat(dirfd, name.c_str(), flags); }) == -1) {
    return Err(errno, "unlinkat", name);
  }
  return Status::Ok();
}

Status PosixBacking::RenameAt(int olddirfd, const std::string& oldname, int newdirfd,
                              const std::string& newname, unsigned int flags) {
  int r = RetryEintr([&] { return renameat2(olddirfd, oldname.c_str(), newdirfd, newname.c_str(), flags); });
  if (r == -1) return Err(errno, "renameat2", oldname + " -> " + newname);
  return Status::Ok();
}

Status PosixBacking::LinkAt(int olddirfd, const std::string& oldname, int newdirfd, const std::string& newname,
                            int flags) {
  int r = RetryEintr([&] { return linkat(olddirfd, oldname.c_str(), newdirfd, newname.c_str(), flags); });
  if (r == -1) return Err(errno, "linkat", oldname + " -> " + newname);
  return Status::Ok();
}

Status PosixBacking::SymlinkAt(const std::string& target, int dirfd, const std::string& name) {
  if (RetryEintr([&] { return symlinkat(target.c_str(), dirfd, name.c_str()); }) == -1) {
    return Err(errno, "symlinkat", name);
  }
  return Status::Ok();
}

Result<std::string> PosixBacking::ReadlinkAt(int dirfd, const std::string& name) {
  std::string buf(256, '\0');
  for (;;) {
    ssize_t n = readlinkat(dirfd, name.c_str(), buf.data(), buf.size());
    if (n == -1) return Err(errno, "readlinkat", name);
    if (size_t(n) < buf.size()) {
      buf.resize(size_t(n));
      return buf;
    }
    buf.resize(buf.size() * 2);  // possibly truncated: ask again with more room
  }
}

Status PosixBacking::MknodAt(int dirfd, const std::string& name, mode_t mode, dev_t dev) {
  if (RetryEintr([&] { return mknodat(dirfd, name.c_str(), mode, dev); }) == -1) {
    return Err(errno, "mknodat", name);
  }
  return Status::Ok();
}

Result<std::vector<std::string>> PosixBacking::ListDir(int dirfd) {
  // A fresh open file description, so that the caller's fd offset is
  // untouched and concurrent listings do not share a readdir position.
  int fd = RetryEintr([&] { return openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC); });
  if (fd == -1) return Err(errno, "openat . in", FdName(dirfd));
  DIR* dir = fdopendir(fd);
  if (dir == nullptr) {
    int err = errno;
    close(fd);
    return Err(err, "fdopendir", FdName(dirfd));
  }
  std::vector<std::string> names;
  for (;;) {
    errno = 0;
    struct dirent* e = readdir(dir);
    if (e == nullptr) {
      int err = errno;
      closedir(dir);
      if (err != 0) return Err(err, "readdir", FdName(dirfd));
      return names;
    }
    std::string_view n(e->d_name);
    if (n == "." || n == "..") continue;
    names.emplace_back(n);
  }
}

Result<struct statvfs> PosixBacking::Fstatvfs(int fd) {
  struct statvfs sv {};
  if (RetryEintr([&] { return fstatvfs(fd, &sv); }) == -1) return Err(errno, "fstatvfs", FdName(fd));
  return sv;
}

Status PosixBacking::SyncFilesystem(int fd) {
  if (RetryEintr([&] { return syncfs(fd); }) == -1) return Err(errno, "syncfs", FdName(fd));
  return Status::Ok();
}

void PosixBacking::StartWriteback(int fd) {
  // Errors are ignored here on purpose: a page that fails to write stays
  // dirty or records the error for the file's next fdatasync, which reports it.
  (void)RetryEintr([&] { return sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE); });
}

Status PosixBacking::SyncOverwrites(int fd, int flush_fd) {
  // One call writes back every dirty page of the file (all submitted before
  // the first wait) and reports a writeback error like fdatasync would.
  constexpr unsigned kAll = SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER;
  if (RetryEintr([&] { return sync_file_range(fd, 0, 0, kAll); }) == -1) {
    return Err(errno, "sync_file_range", FdName(fd));
  }
  // An fdatasync of a file with nothing to write still flushes the device
  // cache on ext4 (with or without a journal).
  return Fsync(flush_fd, true);
}

Status PosixBacking::Fchmod(int fd, mode_t mode) {
  int r = IsOPath(fd) ? chmod(ProcPath(fd).c_str(), mode) : fchmod(fd, mode);
  if (r == -1) return Err(errno, "fchmod", FdName(fd));
  return Status::Ok();
}

Status PosixBacking::Fchown(int fd, uid_t uid, gid_t gid) {
  // AT_EMPTY_PATH works for O_PATH fds and ordinary fds alike.
  if (fchownat(fd, "", uid, gid, AT_EMPTY_PATH) == -1) return Err(errno, "fchownat", FdName(fd));
  return Status::Ok();
}

Status PosixBacking::FchownAt(int dirfd, const std::string& name, uid_t uid, gid_t gid, int flags) {
  if (fchownat(dirfd, name.c_str(), uid, gid, flags) == -1) return Err(errno, "fchownat", name);
  return Status::Ok();
}

Status PosixBacking::Futimens(int fd, const struct timespec times[2]) {
  int r = IsOPath(fd) ? utimensat(AT_FDCWD, ProcPath(fd).c_str(), times, 0) : futimens(fd, times);
  if (r == -1) return Err(errno, "futimens", FdName(fd));
  return Status::Ok();
}

Status PosixBacking::UtimensAt(int dirfd, const std::string& name, const struct timespec times[2], int flags) {
  if (utimensat(dirfd, name.c_str(), times, flags) == -1) return Err(errno, "utimensat", name);
  return Status::Ok();
}

Result<size_t> PosixBacking::Fgetxattr(int fd, const std::string& name, void* value, size_t size) {
  ssize_t n = IsOPath(fd) ? getxattr(ProcPath(fd).c_str(), name.c_str(), value, size)
                          : fgetxattr(fd, name.c_str(), value, size);
  if (n == -1) return Err(errno, "getxattr", FdName(fd));
  return size_t(n);
}

Status PosixBacking::Fsetxattr(int fd, const std::string& name, const void* value, size_t size, int flags) {
  int r = IsOPath(fd) ? setxattr(ProcPath(fd).c_str(), name.c_str(), value, size, flags)
                      : fsetxattr(fd, name.c_str(), value, size, flags);
  if (r == -1) return Err(errno, "setxattr", FdName(fd));
  return Status::Ok();
}

Result<size_t> PosixBacking::Flistxattr(int fd, char* list, size_t size) {
  ssize_t n = IsOPath(fd) ? listxattr(ProcPath(fd).c_str(), list, size) : flistxattr(fd, list, size);
  if (n == -1) return Err(errno, "listxattr", FdName(fd));
  return size_t(n);
}

Status PosixBacking::Fremovexattr(int fd, const std::string& name) {
  int r = IsOPath(fd) ? removexattr(ProcPath(fd).c_str(), name.c_str()) : fremovexattr(fd, name.c_str());
  if (r == -1) return Err(errno, "removexattr", FdName(fd));
  return Status::Ok();
}

}  // namespace cfs::store
