#include "common/status.h"

#include <cerrno>
#include <cstring>

namespace cfs {

std::string_view CodeName(Code code) {
  switch (code) {
    case Code::kOk: return "OK";
    case Code::kInvalidArgument: return "InvalidArgument";
    case Code::kNotFound: return "NotFound";
    case Code::kAlreadyExists: return "AlreadyExists";
    case Code::kFailedPrecondition: return "FailedPrecondition";
    case Code::kPermissionDenied: return "PermissionDenied";
    case Code::kDataLoss: return "DataLoss";
    case Code::kUnavailable: return "Unavailable";
    case Code::kIoError: return "IoError";
    case Code::kUnimplemented: return "Unimplemented";
    case Code::kInternal: return "Internal";
  }
  return "Unknown";
}

Status::Status(Code code, std::string message, int sys_errno) {
  if (code != Code::kOk) rep_ = std::make_shared<const Rep>(Rep{code, sys_errno, std::move(message)});
}

Status Status::FromErrno(int err, std::string_view what) {
  std::string msg(what);
  msg += ": ";
  msg += std::strerror(err);
  Code code = Code::kIoError;
  switch (err) {
    case ENOENT: code = Code::kNotFound; break;
    case EEXIST: code = Code::kAlreadyExists; break;
    case EACCES:
    case EPERM: code = Code::kPermissionDenied; break;
    case EINVAL:
    case ENAMETOOLONG: code = Code::kInvalidArgument; break;
    case EBUSY:
    case EAGAIN: code = Code::kUnavailable; break;
    default: break;
  }
  return Status(code, std::move(msg), err);
}

int Status::sys_errno() const {
  if (!rep_) return 0;
  if (rep_->sys_errno != 0) return rep_->sys_errno;
  switch (rep_->code) {
    case Code::kInvalidArgument: return EINVAL;
    case Code::kNotFound: return ENOENT;
    case Code::kAlreadyExists: return EEXIST;
    case Code::kPermissionDenied: return EACCES;
    case Code::kUnavailable: return EAGAIN;
    case Code::kUnimplemented: return EOPNOTSUPP;
    default: return EIO;
  }
}

const std::string& Status::message() const {
  static const std::string kEmpty;
  return rep_ ? rep_->message : kEmpty;
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  return std::string(CodeName(code())) + ": " + rep_->message;
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  return Status(rep_->code, std::string(context) + ": " + rep_->message, rep_->sys_errno);
}

}  // namespace cfs
