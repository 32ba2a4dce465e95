#include "keymgr/root_key.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include <fmt/format.h>

#include "common/atomic_file.h"
#include "crypto/random.h"

namespace cfs::keymgr {
namespace {

std::string DirOf(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

// Writes a fresh key to a private temp file and links it into place; EEXIST
// means another process won the race, which is fine.
Status CreateRootKey(const std::string& path) {
  std::string tmp = fmt::format("{}.new.{}", path, ::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return Status::FromErrno(errno, "create root key " + tmp);
  SecretBytes key = crypto::RandomSecret(kRootKeySize);
  Status s;
  if (::fchmod(fd, 0600) != 0) s = Status::FromErrno(errno, "chmod " + tmp);
  if (s.ok() && ::write(fd, key.UnsafeData(), key.size()) != static_cast<ssize_t>(key.size())) {
    s = Status::FromErrno(errno ? errno : EIO, "write root key " + tmp);
  }
  if (s.ok() && ::fsync(fd) != 0) s = Status::FromErrno(errno, "fsync " + tmp);
  ::close(fd);
  if (s.ok() && ::link(tmp.c_str(), path.c_str()) != 0 && errno != EEXIST) {
    s = Status::FromErrno(errno, "install root key " + path);
  }
  ::unlink(tmp.c_str());
  if (!s.ok()) return s;
  return FsyncDir(DirOf(path));
}

Status CheckOwnerOnly(const std::string& path, const struct stat& st) {
  if (!S_ISREG(st.st_mode) || st.st_size != static_cast<off_t>(kRootKeySize)) {
    return DataLoss(fmt::format("root key {} is not a regular file of {} bytes; restore it from your backup",
                                path, kRootKeySize));
  }
  if (st.st_uid != ::geteuid()) {
    return PermissionDenied(fmt::format("root key {} is owned by uid {}, not by uid {} running cipherfs; "
                                        "run cipherfs as its owner",
                                        path, st.st_uid, ::geteuid()));
  }
  if ((st.st_mode & 077) != 0) {
    return PermissionDenied(fmt::format("root key {} has mode {:04o}, it must be readable by its owner only; "
                                        "run: chmod 600 {}",
                                        path, st.st_mode & 07777, path));
  }
  return Status::Ok();
}

}  // namespace

Result<SecretBytes> LoadOrCreateRootKey(const std::string& path, bool create) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 && errno == ENOENT && create) {
    CFS_RETURN_IF_ERROR(CreateRootKey(path));
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  }
  if (fd < 0) {
    if (errno == ELOOP) return PermissionDenied(fmt::format("root key {} is a symlink; refusing it", path));
    return Status::FromErrno(errno, "open root key " + path);
  }
  struct stat st;
  Status s = ::fstat(fd, &st) == 0 ? CheckOwnerOnly(path, st) : Status::FromErrno(errno, "stat " + path);
  SecretBytes key(kRootKeySize);
  if (s.ok() && ::pread(fd, key.UnsafeData(), kRootKeySize, 0) != static_cast<ssize_t>(kRootKeySize)) {
    s = DataLoss(fmt::format("root key {}: short read", path));
  }
  ::close(fd);
  if (!s.ok()) return s;
  return key;
}

}  // namespace cfs::keymgr
