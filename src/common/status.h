// Status: the error vocabulary of cipherfs (LevelDB/Abseil style).
// A Status is cheap when OK (no allocation) and carries a code, an optional
// exact errno for the FUSE adapter, and a one-line message for humans.
// Thread safety: a Status is a value; copies are independent.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace cfs {

enum class Code {
  kOk = 0,
  kInvalidArgument,    // the caller's input is wrong (bad flag, bad name)
  kNotFound,           // a named thing does not exist
  kAlreadyExists,      // a thing to create exists already
  kFailedPrecondition, // the system is not in the state the call needs
  kPermissionDenied,   // the caller may not do this
  kDataLoss,           // authentication failed / on-disk bytes are corrupt
  kUnavailable,        // transient: retry may succeed (busy, lock held)
  kIoError,            // the backing side reported an error (errno set)
  kUnimplemented,      // not supported by this build or format
  kInternal,           // a broken invariant in our own code
};

std::string_view CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(Code code, std::string message, int sys_errno = 0);

  static Status Ok() { return Status(); }
  // From errno right after a failed syscall: "<what>: <strerror>".
  static Status FromErrno(int err, std::string_view what);

  bool ok() const { return rep_ == nullptr; }
  Code code() const { return rep_ ? rep_->code : Code::kOk; }
  // The exact errno to hand to a POSIX caller; derived from code() if unset.
  int sys_errno() const;
  const std::string& message() const;
  // "CodeName: message", for logs and CLI errors.
  std::string ToString() const;
  // Returns a copy whose message is "<context>: <message>".
  Status WithContext(std::string_view context) const;

 private:
  struct Rep {
    Code code;
    int sys_errno;
    std::string message;
  };
  std::shared_ptr<const Rep> rep_;
};

inline Status InvalidArgument(std::string m) { return Status(Code::kInvalidArgument, std::move(m)); }
inline Status NotFound(std::string m) { return Status(Code::kNotFound, std::move(m)); }
inline Status AlreadyExists(std::string m) { return Status(Code::kAlreadyExists, std::move(m)); }
inline Status FailedPrecondition(std::string m) { return Status(Code::kFailedPrecondition, std::move(m)); }
inline Status PermissionDenied(std::string m) { return Status(Code::kPermissionDenied, std::move(m)); }
inline Status DataLoss(std::string m) { return Status(Code::kDataLoss, std::move(m)); }
inline Status Unavailable(std::string m) { return Status(Code::kUnavailable, std::move(m)); }
inline Status Internal(std::string m) { return Status(Code::kInternal, std::move(m)); }
inline Status Unimplemented(std::string m) { return Status(Code::kUnimplemented, std::move(m)); }

}  // namespace cfs

#define CFS_CONCAT_INNER(a, b) a##b
#define CFS_CONCAT(a, b) CFS_CONCAT_INNER(a, b)

// Returns from the calling function if `expr` (a Status) is not OK.
#define CFS_RETURN_IF_ERROR(expr)              \
  do {                                         \
    ::cfs::Status cfs_status_ = (expr);        \
    if (!cfs_status_.ok()) return cfs_status_; \
  } while (0)
