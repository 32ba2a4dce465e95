#include "keymgr/audit_log.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "crypto/mac.h"

namespace cfs::keymgr {
namespace {

constexpr size_t kMaxLine = 64 * 1024;

// The last line (without its newline) of the file open as `fd`; empty if none.
Result<std::string> LastLine(int fd) {
  off_t end = ::lseek(fd, 0, SEEK_END);
  if (end < 0) return Status::FromErrno(errno, "seek audit log");
  if (end == 0) return std::string();
  size_t want = static_cast<size_t>(std::min<off_t>(end, kMaxLine));
  std::string tail(want, '\0');
  ssize_t n = ::pread(fd, tail.data(), want, end - static_cast<off_t>(want));
  if (n != static_cast<ssize_t>(want)) return Status::FromErrno(errno ? errno : EIO, "read audit log");
  if (tail.back() != '\n') return DataLoss("audit log does not end with a newline (truncated?)");
  tail.pop_back();
  size_t nl = tail.rfind('\n');
  return nl == std::string::npos ? tail : tail.substr(nl + 1);
}

std::string NowUtc() {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03d}Z", fmt::gmtime(std::chrono::system_clock::to_time_t(now)), ms);
}

}  // namespace

Status AuditLog::Append(const AuditEvent& event) {
  int fd = ::open(path_.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return Status::FromErrno(errno, "open audit log " + path_);
  Status s;
  if (::flock(fd, LOCK_EX) != 0) s = Status::FromErrno(errno, "lock audit log");
  std::string prev;
  if (s.ok()) {
    Result<std::string> last = LastLine(fd);
    if (last.ok()) prev = std::move(*last);
    else s = last.status();
  }
  if (s.ok()) {
    std::string prev_hash = prev.empty() ? std::string(64, '0') : HexEncode(crypto::Sha256(AsBytes(prev)));
    nlohmann::json line{{"time", NowUtc()}, {"operation", event.operation}, {"caller_uid", event.caller_uid},
                        {"key_arn", event.key_arn}, {"encryption_context", event.encryption_context},
                        {"outcome", event.outcome}, {"request_id", event.request_id}, {"prev_hash", prev_hash}};
    std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    if (::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
      s = Status::FromErrno(errno ? errno : EIO, "append audit log " + path_);
    } else if (::fdatasync(fd) != 0) {
      s = Status::FromErrno(errno, "fdatasync audit log " + path_);
    }
  }
  ::close(fd);
  return s;
}

}  // namespace cfs::keymgr
