// Small-file helpers for descriptors and key stores: whole-file atomic
// replacement (temp file, fsync, rename, directory fsync) and a bounded read.
// These act on ordinary host paths (home, region and cluster folders); the
// volume's data path goes through store::Backing instead.
// Thread safety: functions are reentrant; concurrent writers of one path must
// serialize themselves (e.g. with FileLock), the last rename wins.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "common/result.h"

namespace cfs {

// Replaces `path` with `contents`, mode `mode`: writes a temporary file in the
// same directory, fsyncs it, renames it over `path` and fsyncs the directory.
// On success the new contents are durable; on failure the old file is intact
// and the temporary file is removed.
Status WriteFileAtomically(const std::string& path, std::string_view contents, mode_t mode = 0644);

// Reads a whole regular file of at most `max_size` bytes. NotFound if it does
// not exist, InvalidArgument if it is larger or not a regular file.
Result<std::string> ReadSmallFile(const std::string& path, size_t max_size);

// fsyncs a directory (after creating, renaming or removing entries in it).
Status FsyncDir(const std::string& dir);

// An exclusive or shared flock(2) on a lock file, released on destruction.
class FileLock {
 public:
  enum class Mode { kShared, kExclusive };
  // Opens (creating, mode 0600) `path` and waits for the lock.
  static Result<FileLock> Acquire(const std::string& path, Mode mode);
  // As Acquire, but Unavailable at once if another holder conflicts.
  static Result<FileLock> TryAcquire(const std::string& path, Mode mode);
  FileLock(FileLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();
  int fd() const { return fd_; }

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  static Result<FileLock> Lock(const std::string& path, Mode mode, bool wait);
  int fd_ = -1;
};

}  // namespace cfs
