#include "snapshot/backup_policy.h"

#include <time.h>

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

#include "common/atomic_file.h"

namespace cfs::snapshot {
namespace {

constexpr int64_t kDay = 86400;

bool ParseInt(std::string_view s, int* out) {
  if (s.empty() || s.size() > 9) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

// "hh:mm" -> minutes after midnight, or -1.
int ParseClock(std::string_view s) {
  int h = 0, m = 0;
  if (s.size() != 5 || s[2] != ':' || !ParseInt(s.substr(0, 2), &h) || !ParseInt(s.substr(3, 2), &m)) return -1;
  if (h > 23 || m > 59) return -1;
  return h * 60 + m;
}

}  // namespace

Result<BackupWindow> ParseBackupWindow(std::string_view text) {
  size_t dash = text.find('-');
  int start = dash == std::string_view::npos ? -1 : ParseClock(text.substr(0, dash));
  int end = dash == std::string_view::npos ? -1 : ParseClock(text.substr(dash + 1));
  if (start < 0 || end < 0) {
    return InvalidArgument(fmt::format("backup window '{}' is not hh:mm-hh:mm (UTC, 24 h), e.g. 03:00-03:30", text));
  }
  BackupWindow w{start, end};
  if (start == end || w.LengthMinutes() < kMinWindowMinutes) {
    return InvalidArgument(fmt::format("backup window '{}' is shorter than {} minutes", text, kMinWindowMinutes));
  }
  return w;
}

std::string FormatBackupWindow(const BackupWindow& w) {
  return fmt::format("{:02}:{:02}-{:02}:{:02}", w.start_min / 60, w.start_min % 60, w.end_min / 60, w.end_min % 60);
}

Status ValidateRetention(int days, bool storage_encrypted) {
  if (days < 0 || days > kMaxRetentionDays) {
    return InvalidArgument(fmt::format("backup retention period {} is outside 1-{} days", days, kMaxRetentionDays));
  }
  if (days == 0 && storage_encrypted) {
    return FailedPrecondition(
        "an encrypted cluster keeps automated backups (DESIGN rule 7: the way back from a lost key is a "
        "restore); use a retention period of 1-35 days");
  }
  return Status::Ok();
}

BackupWindow DefaultBackupWindow(std::string_view cluster_id) {
  uint32_t h = 2166136261u;  // FNV-1a
  for (char c : cluster_id) h = (h ^ static_cast<uint8_t>(c)) * 16777619u;
  int start = static_cast<int>(h % 16) * 30;  // 00:00 .. 07:30
  return BackupWindow{start, start + 30};
}

std::string FormatBackupPolicy(const BackupPolicy& p) {
  return fmt::format("retention_days: {}\nwindow: {}\n", p.retention_days, FormatBackupWindow(p.window));
}

Result<BackupPolicy> ParseBackupPolicy(std::string_view text, const std::string& file_name) {
  BackupPolicy p;
  bool have_days = false, have_window = false;
  int line_no = 0;
  while (!text.empty()) {
    ++line_no;
    size_t nl = text.find('\n');
    if (nl == std::string_view::npos) return DataLoss(fmt::format("{}: line {} is not terminated", file_name, line_no));
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl + 1);
    auto bad = [&](std::string_view what) {
      return DataLoss(fmt::format("{}: line {}: {}", file_name, line_no, what));
    };
    if (line.rfind("retention_days: ", 0) == 0 && !have_days) {
      if (!ParseInt(line.substr(16), &p.retention_days) || p.retention_days > kMaxRetentionDays) {
        return bad("retention_days is not 0-35");
      }
      have_days = true;
    } else if (line.rfind("window: ", 0) == 0 && !have_window) {
      Result<BackupWindow> w = ParseBackupWindow(line.substr(8));
      if (!w.ok()) return bad("window is not hh:mm-hh:mm of at least 30 minutes");
      p.window = *w;
      have_window = true;
    } else {
      return bad("unexpected or repeated key");
    }
  }
  if (!have_days || !have_window) return DataLoss(fmt::format("{}: retention_days or window missing", file_name));
  return p;
}

Result<BackupPolicy> ReadBackupPolicy(const std::string& cluster_dir, std::string_view cluster_id) {
  const std::string path = cluster_dir + "/" + kBackupPolicyFile;
  Result<std::string> text = ReadSmallFile(path, kMaxPolicyFileSize);
  if (!text.ok() && text.status().code() == Code::kNotFound) {
    BackupPolicy p;
    p.window = DefaultBackupWindow(cluster_id);
    return p;
  }
  CFS_RETURN_IF_ERROR(text.status());
  return ParseBackupPolicy(*text, path);
}

Status WriteBackupPolicy(const std::string& cluster_dir, const BackupPolicy& p) {
  return WriteFileAtomically(cluster_dir + "/" + kBackupPolicyFile, FormatBackupPolicy(p), 0644);
}

int64_t LastWindowStart(const BackupWindow& w, int64_t now) {
  int64_t day = now - ((now % kDay) + kDay) % kDay;
  int64_t start = day + int64_t{w.start_min} * 60;
  return start <= now ? start : start - kDay;
}

bool InBackupWindow(const BackupWindow& w, int64_t now) {
  return now < LastWindowStart(w, now) + int64_t{w.LengthMinutes()} * 60;
}

bool BackupDue(const BackupPolicy& p, const std::vector<AutomatedBackup>& existing, int64_t now) {
  if (p.retention_days == 0) return false;
  int64_t latest = INT64_MIN;
  for (const auto& b : existing) latest = std::max(latest, b.created);
  if (InBackupWindow(p.window, now) && latest < LastWindowStart(p.window, now)) return true;
  return latest < now - kDay - int64_t{p.window.LengthMinutes()} * 60;
}

std::vector<std::string> ExpiredBackups(const BackupPolicy& p, std::vector<AutomatedBackup> existing, int64_t now) {
  std::sort(existing.begin(), existing.end(), [](const auto& a, const auto& b) { return a.created < b.created; });
  std::vector<std::string> out;
  for (const auto& b : existing) {
    if (p.retention_days == 0 || b.created <= now - int64_t{p.retention_days} * kDay) out.push_back(b.id);
  }
  return out;
}

std::string AutomatedSnapshotId(std::string_view cluster_id, int64_t now, const std::vector<AutomatedBackup>& taken) {
  time_t t = static_cast<time_t>(now);
  struct tm tm {};
  ::gmtime_r(&t, &tm);
  std::string stamp = fmt::format("{:04}-{:02}-{:02}-{:02}-{:02}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                                  tm.tm_hour, tm.tm_min);
  std::string name(cluster_id.substr(0, 63 - 5 - 1 - stamp.size() - 3));  // room for "-N"
  while (!name.empty() && name.back() == '-') name.pop_back();
  std::string base = fmt::format("auto-{}-{}", name, stamp);
  auto used = [&](const std::string& id) {
    return std::any_of(taken.begin(), taken.end(), [&](const auto& b) { return b.id == id; });
  };
  std::string id = base;
  for (int n = 2; used(id) && n < 100; ++n) id = fmt::format("{}-{}", base, n);
  return id;
}

Result<int64_t> ParseRfc3339Utc(std::string_view s) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, se = 0;
  bool shape = s.size() == 20 && s[4] == '-' && s[7] == '-' && s[10] == 'T' && s[13] == ':' && s[16] == ':' &&
               s[19] == 'Z';
  if (!shape || !ParseInt(s.substr(0, 4), &y) || !ParseInt(s.substr(5, 2), &mo) || !ParseInt(s.substr(8, 2), &d) ||
      !ParseInt(s.substr(11, 2), &h) || !ParseInt(s.substr(14, 2), &mi) || !ParseInt(s.substr(17, 2), &se) ||
      mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) {
    return InvalidArgument(fmt::format("'{}' is not an RFC 3339 UTC time like 2026-01-02T03:04:05Z", s));
  }
  struct tm tm {};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = se;
  return static_cast<int64_t>(::timegm(&tm));
}

}  // namespace cfs::snapshot
