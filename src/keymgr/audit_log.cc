#include "keymgr/audit_log.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "common/atomic_file.h"

namespace cfs::keymgr {
namespace {

using nlohmann::json;

constexpr size_t kMaxLogSize = 256u << 20;
constexpr char kHeadMagic[] = "cipherfs-audit-head v1";

std::string Zeros() { return std::string(64, '0'); }

std::string LineHash(std::string_view line) { return HexEncode(crypto::Sha256(AsBytes(line))); }

// The last line (without its newline) of the file open as `fd`; empty if none.
Result<std::string> LastLine(int fd) {
  off_t end = ::lseek(fd, 0, SEEK_END);
  if (end < 0) return Status::FromErrno(errno, "seek audit log");
  if (end == 0) return std::string();
  size_t want = static_cast<size_t>(std::min<off_t>(end, kMaxAuditLine));
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

std::string HeadMacInput(size_t lines, std::string_view last_hash) {
  return fmt::format("{}|{}|{}", kHeadMagic, lines, last_hash);
}

struct Head {
  size_t lines = 0;
  std::string last_hash;
  std::string mac;
};

std::optional<Head> ParseHead(std::string_view text) {
  std::vector<std::string> parts;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) return std::nullopt;
    parts.emplace_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  if (parts.size() != 4 || parts[0] != kHeadMagic || parts[2].size() != 64 || parts[3].size() != 64) {
    return std::nullopt;
  }
  Head h;
  try {
    h.lines = std::stoull(parts[1]);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  h.last_hash = parts[2];
  h.mac = parts[3];
  return h;
}

// Splits into lines; `complete` false when the text does not end in '\n'.
std::vector<std::string_view> Lines(std::string_view text, bool* complete) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) {
      out.push_back(text.substr(pos));
      *complete = false;
      return out;
    }
    out.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  *complete = true;
  return out;
}

}  // namespace

Result<AuditRecord> ParseAuditLine(std::string_view line) {
  AuditRecord r;
  try {
    if (line.size() > kMaxAuditLine) throw std::invalid_argument("line too long");
    json j = json::parse(line);
    r.time = j.at("time").get<std::string>();
    std::string type = j.at("event_type").get<std::string>();
    if (type != "AwsApiCall" && type != "AwsServiceEvent") throw std::invalid_argument("bad event_type");
    r.event.service_event = type == "AwsServiceEvent";
    r.event.operation = j.at("operation").get<std::string>();
    r.event.caller_uid = j.at("caller_uid").get<uid_t>();
    r.event.user_name = j.at("user_name").get<std::string>();
    r.event.key_arn = j.at("key_arn").get<std::string>();
    r.event.encryption_context = j.at("encryption_context").get<EncryptionContext>();
    r.event.outcome = j.at("outcome").get<std::string>();
    r.event.error_message = j.value("error_message", std::string());
    r.event.request_id = j.at("request_id").get<std::string>();
    r.prev_hash = j.at("prev_hash").get<std::string>();
    if (r.prev_hash.size() != 64 || !HexDecode(r.prev_hash)) throw std::invalid_argument("bad prev_hash");
  } catch (const std::exception& e) {
    return DataLoss(fmt::format("not an audit line ({})", e.what()));
  }
  return r;
}

AuditVerifyReport VerifyAuditText(std::string_view log_text, std::string_view head_text,
                                  const crypto::MacKey* head_key) {
  AuditVerifyReport report;
  bool complete = true;
  std::vector<std::string_view> lines = Lines(log_text, &complete);
  report.lines = lines.size();
  if (!complete) report.problems.push_back(fmt::format("line {}: cut short (no newline): truncated", lines.size()));
  std::string prev = Zeros();
  for (size_t i = 0; i < lines.size(); ++i) {
    Result<AuditRecord> r = ParseAuditLine(lines[i]);
    if (!r.ok()) {
      report.problems.push_back(fmt::format("line {}: {}", i + 1, r.status().message()));
    } else if (r->prev_hash != prev) {
      report.problems.push_back(fmt::format("line {}: prev_hash does not match line {}: a line was edited, removed "
                                            "or reordered",
                                            i + 1, i));
    }
    prev = LineHash(lines[i]);
  }
  if (head_key == nullptr) return report;
  std::optional<Head> head = ParseHead(head_text);
  if (!head) {
    if (!lines.empty()) report.problems.push_back("audit.head is missing or malformed: the log can't be checked for truncation");
    return report;
  }
  Bytes mac_bytes = HexDecode(head->mac).value_or(Bytes());
  if (!head_key->Verify(AsBytes(HeadMacInput(head->lines, head->last_hash)), mac_bytes)) {
    report.problems.push_back("audit.head does not verify under the region root key: it was edited");
    return report;
  }
  if (lines.size() < head->lines) {
    report.problems.push_back(fmt::format("the log has {} lines but {} were sealed: lines were removed from its end "
                                          "(truncated)",
                                          lines.size(), head->lines));
  } else if (head->lines > 0 && LineHash(lines[head->lines - 1]) != head->last_hash) {
    report.problems.push_back(fmt::format("line {}: differs from the sealed last line: edited or replaced", head->lines));
  } else if (lines.size() > head->lines + 1) {
    // One unsealed line is an append interrupted between the log and the head.
    report.problems.push_back(fmt::format("{} lines after the last sealed line {}: lines were added by hand",
                                          lines.size() - head->lines, head->lines));
  }
  return report;
}

AuditLog::AuditLog(std::string path, std::shared_ptr<const crypto::MacKey> head_key)
    : path_(std::move(path)), head_key_(std::move(head_key)) {}

std::string AuditLog::head_path() const {
  size_t slash = path_.rfind('/');
  return (slash == std::string::npos ? std::string() : path_.substr(0, slash + 1)) + "audit.head";
}

// A head that does not seal the last line means an append died between the
// log and the head (then the sealed line is the one before the last), or
// tampering: then appending would re-seal the damage, so refuse. A log
// without a head (written before heads existed) is counted and sealed.
Result<size_t> AuditLog::CountLines(const std::string& last_hash) const {
  Result<std::string> head_text = ReadSmallFile(head_path(), 4096);
  std::optional<Head> head = head_text.ok() ? ParseHead(*head_text) : std::nullopt;
  if (head && head->last_hash == last_hash) return head->lines;
  if (last_hash == Zeros() && !head) return size_t{0};
  CFS_ASSIGN_OR_RETURN(std::string all, ReadSmallFile(path_, kMaxLogSize));
  bool complete = true;
  std::vector<std::string_view> lines = Lines(all, &complete);
  if (!head && head_text.status().code() == Code::kNotFound) return lines.size();
  if (head && lines.size() == head->lines + 1 && (head->lines == 0 || LineHash(lines[head->lines - 1]) == head->last_hash)) {
    return lines.size();
  }
  return DataLoss(fmt::format("audit log {} does not match its sealed head (edited or truncated); nothing more is "
                              "logged until it is restored; check with: cipherfs kms audit --verify",
                              path_));
}

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
  std::string prev_hash = prev.empty() ? Zeros() : LineHash(prev);
  // Line count: from the head when it seals the current last line.
  size_t count = 0;
  if (s.ok()) {
    Result<size_t> c = CountLines(prev_hash);
    if (c.ok()) count = *c;
    else s = c.status();
  }
  std::string text;
  if (s.ok()) {
    json line{{"time", NowUtc()},
              {"event_type", event.service_event ? "AwsServiceEvent" : "AwsApiCall"},
              {"operation", event.operation},
              {"caller_uid", event.caller_uid},
              {"user_name", event.user_name},
              {"key_arn", event.key_arn},
              {"encryption_context", event.encryption_context},
              {"outcome", event.outcome},
              {"error_message", event.error_message},
              {"request_id", event.request_id},
              {"prev_hash", prev_hash}};
    text = line.dump(-1, ' ', false, json::error_handler_t::replace);
    std::string with_nl = text + "\n";
    if (::write(fd, with_nl.data(), with_nl.size()) != static_cast<ssize_t>(with_nl.size())) {
      s = Status::FromErrno(errno ? errno : EIO, "append audit log " + path_);
    } else if (::fdatasync(fd) != 0) {
      s = Status::FromErrno(errno, "fdatasync audit log " + path_);
    }
  }
  if (s.ok() && head_key_) {
    std::string last_hash = LineHash(text);
    crypto::Mac mac = head_key_->Compute(AsBytes(HeadMacInput(count + 1, last_hash)));
    s = WriteFileAtomically(head_path(), fmt::format("{}\n{}\n{}\n{}\n", kHeadMagic, count + 1, last_hash,
                                                     HexEncode(mac)),
                            0600);
  }
  ::close(fd);
  return s;
}

Result<std::string> AuditLog::ReadAll() const {
  Result<std::string> text = ReadSmallFile(path_, kMaxLogSize);
  if (!text.ok() && text.status().code() == Code::kNotFound) return std::string();
  return text;
}

Result<AuditVerifyReport> AuditLog::Verify() const {
  int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd >= 0 && ::flock(fd, LOCK_SH) != 0) {
    ::close(fd);
    return Status::FromErrno(errno, "lock audit log");
  }
  Result<std::string> text = ReadAll();
  Result<std::string> head = ReadSmallFile(head_path(), 4096);
  if (fd >= 0) ::close(fd);
  if (!text.ok()) return text.status();
  return VerifyAuditText(*text, head.ok() ? *head : std::string(), head_key_.get());
}

}  // namespace cfs::keymgr
