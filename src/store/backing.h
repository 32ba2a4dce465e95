// Backing: every syscall cipherfs makes on the backing directory goes
// through this one interface, so tests can fail the Nth call, and simulate a
// power cut (drop, keep or tear at 512-byte sectors every write not yet
// fsynced) -- see tests' FaultBacking.
//
// Contract (all implementations):
// - Paths are single names relative to a directory fd (the *at() family);
//   `dirfd` may be AT_FDCWD only in tools and tests.
// - PRead returns fewer bytes than asked only at end of file; the caller
//   treats missing bytes as zeros where the format allows it.
// - PWrite writes everything or fails; no partial success is reported.
// - Errors carry the exact errno (Status::sys_errno()).
// Thread safety: all methods may be called concurrently from any thread.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <string>
#include <vector>

#include "common/result.h"

namespace cfs::store {

class Backing {
 public:
  virtual ~Backing() = default;

  // Files.
  virtual Result<int> OpenAt(int dirfd, const std::string& name, int flags, mode_t mode = 0) = 0;
  virtual Status Close(int fd) = 0;
  virtual Result<size_t> PRead(int fd, void* buf, size_t count, off_t offset) = 0;
  virtual Status PWrite(int fd, const void* buf, size_t count, off_t offset) = 0;
  virtual Status Fsync(int fd, bool datasync) = 0;
  virtual Status Ftruncate(int fd, off_t length) = 0;
  virtual Status Fallocate(int fd, int mode, off_t offset, off_t length) = 0;
  virtual Result<struct stat> Fstat(int fd) = 0;
  virtual Result<off_t> Lseek(int fd, off_t offset, int whence) = 0;

  // Namespace.
  virtual Result<struct stat> FstatAt(int dirfd, const std::string& name, int flags) = 0;
  virtual Status MkdirAt(int dirfd, const std::string& name, mode_t mode) = 0;
  virtual Status UnlinkAt(int dirfd, const std::string& name, int flags) = 0;
  virtual Status RenameAt(int olddirfd, const std::string& oldname, int newdirfd,
                          const std::string& newname, unsigned int flags) = 0;
  virtual Status LinkAt(int olddirfd, const std::string& oldname, int newdirfd,
                        const std::string& newname, int flags) = 0;
  virtual Status SymlinkAt(const std::string& target, int dirfd, const std::string& name) = 0;
  virtual Result<std::string> ReadlinkAt(int dirfd, const std::string& name) = 0;
  virtual Status MknodAt(int dirfd, const std::string& name, mode_t mode, dev_t dev) = 0;
  // Names in a directory, without "." and "..".
  virtual Result<std::vector<std::string>> ListDir(int dirfd) = 0;
  virtual Result<struct statvfs> Fstatvfs(int fd) = 0;
  // Makes every write and namespace change on the filesystem holding `fd`
  // durable, in one pass (syncfs(2)): a batched alternative to an Fsync per
  // file for bulk writers (cross-region copies). Ok when durable; the
  // writeback error otherwise. The default answers Unimplemented, and
  // callers then Fsync file by file: an implementation that tracks
  // durability per file (tests' FaultBacking) stays exact without it.
  virtual Status SyncFilesystem(int /*fd*/) { return Unimplemented("syncfs not supported by this backing"); }
  // Starts writing a file's dirty pages to the device without waiting
  // (sync_file_range(SYNC_FILE_RANGE_WRITE)): a hint that makes no promise
  // of durability, so the Fsync that follows waits for less. The default
  // does nothing (tests' FaultBacking: durability stays Fsync's alone).
  virtual void StartWriteback(int /*fd*/) {}
  // Whether, on the filesystem holding `fd`, a write over a range that is
  // allocated and written (no hole, no unwritten extent) lands in place, so
  // that writing the page back and flushing the device's cache make it
  // durable without the file's metadata (ext4 without data=journal or dax;
  // docs/format/chunks.md 2.6). The default says no.
  virtual bool OverwritesInPlace(int /*fd*/) { return false; }
  // Makes durable every write to `fd` since its last Fsync, on the promise
  // (checked by the caller) that each one overwrote an allocated, written
  // range of a file on an OverwritesInPlace filesystem: writes the file's
  // dirty pages back and waits (sync_file_range), then flushes the device
  // cache through `flush_fd`, an unchanging file of the same filesystem.
  // The file's times are not written -- on ext4 without a journal the inode
  // write that fdatasync adds for them is a second round trip to the disk.
  // The default is Fsync(fd, true).
  virtual Status SyncOverwrites(int fd, int /*flush_fd*/) { return Fsync(fd, true); }

  // Attributes (on an fd, which may be O_PATH; implementations use
  // /proc/self/fd for what the kernel does not allow on O_PATH fds).
  virtual Status Fchmod(int fd, mode_t mode) = 0;
  virtual Status Fchown(int fd, uid_t uid, gid_t gid) = 0;
  virtual Status FchownAt(int dirfd, const std::string& name, uid_t uid, gid_t gid, int flags) = 0;
  virtual Status Futimens(int fd, const struct timespec times[2]) = 0;
  virtual Status UtimensAt(int dirfd, const std::string& name, const struct timespec times[2], int flags) = 0;
  virtual Result<size_t> Fgetxattr(int fd, const std::string& name, void* value, size_t size) = 0;
  virtual Status Fsetxattr(int fd, const std::string& name, const void* value, size_t size, int flags) = 0;
  virtual Result<size_t> Flistxattr(int fd, char* list, size_t size) = 0;
  virtual Status Fremovexattr(int fd, const std::string& name) = 0;
};

// The real implementation: plain syscalls, errno captured once.
class PosixBacking final : public Backing {
 public:
  Result<int> OpenAt(int dirfd, const std::string& name, int flags, mode_t mode) override;
  Status Close(int fd) override;
  Result<size_t> PRead(int fd, void* buf, size_t count, off_t offset) override;
  Status PWrite(int fd, const void* buf, size_t count, off_t offset) override;
  Status Fsync(int fd, bool datasync) override;
  Status Ftruncate(int fd, off_t length) override;
  Status Fallocate(int fd, int mode, off_t offset, off_t length) override;
  Result<struct stat> Fstat(int fd) override;
  Result<off_t> Lseek(int fd, off_t offset, int whence) override;
  Result<struct stat> FstatAt(int dirfd, const std::string& name, int flags) override;
  Status MkdirAt(int dirfd, const std::string& name, mode_t mode) override;
  Status UnlinkAt(int dirfd, const std::string& name, int flags) override;
  Status RenameAt(int olddirfd, const std::string& oldname, int newdirfd, const std::string& newname,
                  unsigned int flags) override;
  Status LinkAt(int olddirfd, const std::string& oldname, int newdirfd, const std::string& newname,
                int flags) override;
  Status SymlinkAt(const std::string& target, int dirfd, const std::string& name) override;
  Result<std::string> ReadlinkAt(int dirfd, const std::string& name) override;
  Status MknodAt(int dirfd, const std::string& name, mode_t mode, dev_t dev) override;
  Result<std::vector<std::string>> ListDir(int dirfd) override;
  Result<struct statvfs> Fstatvfs(int fd) override;
  Status SyncFilesystem(int fd) override;
  void StartWriteback(int fd) override;
  bool OverwritesInPlace(int fd) override;  // backing_in_place.cc
  Status SyncOverwrites(int fd, int flush_fd) override;
  Status Fchmod(int fd, mode_t mode) override;
  Status Fchown(int fd, uid_t uid, gid_t gid) override;
  Status FchownAt(int dirfd, const std::string& name, uid_t uid, gid_t gid, int flags) override;
  Status Futimens(int fd, const struct timespec times[2]) override;
  Status UtimensAt(int dirfd, const std::string& name, const struct timespec times[2], int flags) override;
  Result<size_t> Fgetxattr(int fd, const std::string& name, void* value, size_t size) override;
  Status Fsetxattr(int fd, const std::string& name, const void* value, size_t size, int flags) override;
  Result<size_t> Flistxattr(int fd, char* list, size_t size) override;
  Status Fremovexattr(int fd, const std::string& name) override;
};

}  // namespace cfs::store
