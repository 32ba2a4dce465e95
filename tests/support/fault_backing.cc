// FaultBacking: see fault_backing.h. The shadow state (pre-images of
// unsynced changes) is read and restored with raw syscalls on a private fd
// per host file, so that it neither counts as a call nor can be failed.
#include "support/fault_backing.h"

#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <random>

namespace cfs::test {
namespace {

constexpr off_t kSector = 512;

bool IsMutation(OpKind kind) {
  switch (kind) {
    case OpKind::kWrite: case OpKind::kFsync: case OpKind::kTruncate: case OpKind::kFallocate:
    case OpKind::kRename: case OpKind::kLink: case OpKind::kUnlink: case OpKind::kMkdir:
    case OpKind::kSymlink: case OpKind::kMknod: case OpKind::kAttr:
      return true;
    default:
      return false;
  }
}

// The shadow state must never silently diverge from the real file: a failed
// capture or undo is a broken test harness, not a test result.
[[noreturn]] void Die(const char* what, int err) {
  std::fprintf(stderr, "FaultBacking: %s failed: errno %d\n", what, err);
  std::abort();
}

off_t SizeOf(int fd) {
  struct stat st {};
  if (fstat(fd, &st) != 0) Die("fstat of shadow fd", errno);
  return st.st_size;
}

void ReadAll(int fd, uint8_t* p, size_t n, off_t off) {
  while (n > 0) {
    ssize_t r = pread(fd, p, n, off);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) Die("pread of pre-image", r < 0 ? errno : EIO);
    p += r;
    n -= size_t(r);
    off += r;
  }
}

void WriteAll(int fd, const uint8_t* p, size_t n, off_t off) {
  while (n > 0) {
    ssize_t r = pwrite(fd, p, n, off);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) Die("pwrite of undo", r < 0 ? errno : EIO);
    p += r;
    n -= size_t(r);
    off += r;
  }
}

void TruncateTo(int fd, off_t size) {
  if (ftruncate(fd, size) != 0) Die("ftruncate of undo", errno);
}

std::vector<uint8_t> ReadRange(int fd, off_t begin, off_t end) {
  std::vector<uint8_t> v(end > begin ? size_t(end - begin) : 0);
  if (!v.empty()) ReadAll(fd, v.data(), v.size(), begin);
  return v;
}

Status PowerOff(const char* what) {
  return Status(Code::kIoError, std::string("power is off (simulated cut): ") + what, EIO);
}

}  // namespace

const char* OpKindName(OpKind kind) {
  static const char* const kNames[] = {"any",    "mutation", "open",    "close", "read",     "write",
                                       "fsync",  "truncate", "fallocate", "rename", "link",  "unlink",
                                       "mkdir",  "symlink",  "mknod",   "metaread", "attr"};
  static_assert(sizeof(kNames) / sizeof(kNames[0]) == size_t(OpKind::kCount_));
  return kNames[size_t(kind)];
}

const char* PowerCutModeName(PowerCutMode mode) {
  switch (mode) {
    case PowerCutMode::kDrop: return "drop";
    case PowerCutMode::kKeep: return "keep";
    case PowerCutMode::kTear: return "tear";
  }
  return "?";
}

FaultBacking::FaultBacking(store::Backing* inner, FaultOptions options) : inner_(inner), options_(options) {}

FaultBacking::~FaultBacking() {
  for (auto& [key, shadow] : shadows_) close(shadow.fd);
}

void FaultBacking::FailNth(OpKind kind, uint64_t n, int err, bool then_all_fail) {
  std::lock_guard<std::mutex> lock(mu_);
  fail_ = {kind, n};
  fail_errno_ = err;
  fail_then_all_ = then_all_fail;
}

void FaultBacking::ClearFaults() {
  std::lock_guard<std::mutex> lock(mu_);
  fail_ = {};
  disk_dead_ = false;
}

uint64_t FaultBacking::faults_injected() const {
  std::lock_guard<std::mutex> lock(mu_);
  return faults_injected_;
}

std::string FaultBacking::last_fault() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_fault_;
}

OpKind FaultBacking::last_fault_kind() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_fault_kind_;
}

void FaultBacking::ArmPowerCut(OpKind kind, uint64_t n, PowerCutMode mode, uint64_t seed) {
  std::lock_guard<std::mutex> lock(mu_);
  cut_ = {kind, n};
  cut_mode_ = mode;
  cut_seed_ = seed;
}

PowerCutStats FaultBacking::SimulatePowerCut(PowerCutMode mode, uint64_t seed) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!off_) CutLocked(mode, seed);
  return last_cut_;
}

bool FaultBacking::powered_off() const {
  std::lock_guard<std::mutex> lock(mu_);
  return off_;
}

PowerCutStats FaultBacking::last_power_cut() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_cut_;
}

size_t FaultBacking::unsynced_files() const {
  std::lock_guard<std::mutex> lock(mu_);
  return shadows_.size();
}

uint64_t FaultBacking::calls(OpKind kind) const {
  std::lock_guard<std::mutex> lock(mu_);
  return counts_[size_t(kind)];
}

void FaultBacking::ResetCounts() {
  std::lock_guard<std::mutex> lock(mu_);
  counts_.fill(0);
}

bool FaultBacking::MatchesLocked(OpKind want, OpKind kind) const {
  return want == OpKind::kAny || want == kind || (want == OpKind::kMutation && IsMutation(kind));
}

Status FaultBacking::EnterLocked(OpKind kind, const char* what, int fd) {
  if (off_) return PowerOff(what);
  ++counts_[size_t(kind)];
  ++counts_[size_t(OpKind::kAny)];
  if (IsMutation(kind)) ++counts_[size_t(OpKind::kMutation)];
  std::string where = std::string("injected fault: ") + what + " fd " + std::to_string(fd);
  if (disk_dead_) {
    ++faults_injected_;
    last_fault_ = std::string(OpKindName(kind)) + " " + what + " fd " + std::to_string(fd);
    last_fault_kind_ = kind;
    return Status::FromErrno(fail_errno_, where);
  }
  if (cut_.remaining > 0 && MatchesLocked(cut_.kind, kind) && --cut_.remaining == 0) {
    CutLocked(cut_mode_, cut_seed_);
    return PowerOff(what);
  }
  if (fail_.remaining > 0 && MatchesLocked(fail_.kind, kind) && --fail_.remaining == 0) {
    ++faults_injected_;
    last_fault_ = std::string(OpKindName(kind)) + " " + what + " fd " + std::to_string(fd);
    last_fault_kind_ = kind;
    disk_dead_ = fail_then_all_;
    if (kind == OpKind::kFsync && options_.fsync_error_drops_unsynced) DropUnsyncedLocked(fd);
    return Status::FromErrno(fail_errno_, where);
  }
  return Status::Ok();
}

Status FaultBacking::Enter(OpKind kind, const char* what, int fd) {
  std::lock_guard<std::mutex> lock(mu_);
  return EnterLocked(kind, what, fd);
}

Result<FaultBacking::Shadow*> FaultBacking::ShadowOfLocked(int fd) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return Status::FromErrno(errno, "FaultBacking: fstat");
  if (!S_ISREG(st.st_mode)) return static_cast<Shadow*>(nullptr);  // not tracked
  Shadow& shadow = shadows_[{st.st_dev, st.st_ino}];
  if (shadow.fd < 0) {
    std::string proc = "/proc/self/fd/" + std::to_string(fd);
    shadow.fd = open(proc.c_str(), O_RDWR | O_CLOEXEC);
    if (shadow.fd < 0) Die("re-open of a written file through /proc/self/fd", errno);
  }
  return &shadow;
}

// Records a change before it is made, with its pre-image: kWrite and
// kFallocate save [offset, offset+length) below the old size, kTruncate
// saves [new_size, old size). Returns null for files that are not tracked
// (not regular files).
Result<FaultBacking::Change*> FaultBacking::RecordLocked(int fd, Change::Type type, off_t offset, off_t length,
                                                         off_t new_size) {
  CFS_ASSIGN_OR_RETURN(Shadow * shadow, ShadowOfLocked(fd));
  if (shadow == nullptr) return static_cast<Change*>(nullptr);
  Change c{type};
  c.offset = offset;
  c.length = length;
  c.old_size = SizeOf(shadow->fd);
  c.new_size = new_size;
  if (type == Change::Type::kTruncate) {
    c.old_bytes = ReadRange(shadow->fd, new_size, c.old_size);
  } else {
    c.old_bytes = ReadRange(shadow->fd, offset, std::min(offset + length, c.old_size));
  }
  if (type == Change::Type::kWrite) {
    c.new_size = std::max(c.old_size, offset + length);
    off_t hole = lseek(shadow->fd, offset, SEEK_HOLE);
    c.fills_hole = offset + length > c.old_size || hole == -1 || hole < offset + length;
  }
  shadow->changes.push_back(std::move(c));
  return &shadow->changes.back();
}

// Host size after a change, for changes whose effect on the size only the
// kernel knows (fallocate, a failed write).
void FaultBacking::UpdateNewSizeLocked(int fd, Change* change) {
  struct stat st {};
  if (change != nullptr && fstat(fd, &st) == 0) change->new_size = st.st_size;
}

void FaultBacking::MarkDurableLocked(int fd) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return;
  auto it = shadows_.find({st.st_dev, st.st_ino});
  if (it == shadows_.end()) return;
  close(it->second.fd);
  shadows_.erase(it);
}

void FaultBacking::MarkOverwritesDurableLocked(int fd) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return;
  auto it = shadows_.find({st.st_dev, st.st_ino});
  if (it == shadows_.end()) return;
  auto& changes = it->second.changes;
  changes.erase(std::remove_if(changes.begin(), changes.end(),
                               [](const Change& c) { return c.type == Change::Type::kWrite && !c.fills_hole; }),
                changes.end());
  if (changes.empty()) MarkDurableLocked(fd);
}

void FaultBacking::DropUnsyncedLocked(int fd) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return;
  auto it = shadows_.find({st.st_dev, st.st_ino});
  if (it == shadows_.end()) return;
  std::mt19937_64 unused(0);
  PowerCutStats stats;
  off_t size = SizeOf(it->second.fd);
  for (auto c = it->second.changes.rbegin(); c != it->second.changes.rend(); ++c) {
    if (c->type == Change::Type::kWrite) {
      UndoWrite(it->second.fd, *c, PowerCutMode::kDrop, unused, &size, &stats);
    } else {
      UndoRange(it->second.fd, *c, PowerCutMode::kDrop, unused, &size, &stats);
    }
  }
  close(it->second.fd);
  shadows_.erase(it);
}

void FaultBacking::CutLocked(PowerCutMode mode, uint64_t seed) {
  off_ = true;
  std::mt19937_64 rng(seed);
  PowerCutStats stats;
  for (auto& [key, shadow] : shadows_) {
    ++stats.files;
    off_t size = SizeOf(shadow.fd);
    for (auto it = shadow.changes.rbegin(); it != shadow.changes.rend(); ++it) {
      if (it->type == Change::Type::kWrite) {
        UndoWrite(shadow.fd, *it, mode, rng, &size, &stats);
      } else {
        UndoRange(shadow.fd, *it, mode, rng, &size, &stats);
      }
    }
    close(shadow.fd);
  }
  shadows_.clear();
  last_cut_ = stats;
}

// Restores the pre-image of [lo, hi) (clipped to the current size `size`):
// old bytes below the change's old size, zeros above it.
void FaultBacking::RestoreRange(int fd, const Change& c, off_t lo, off_t hi, off_t size) {
  hi = std::min(hi, size);
  if (lo >= hi) return;
  std::vector<uint8_t> bytes(size_t(hi - lo), 0);
  for (off_t pos = lo; pos < hi && pos < c.old_size; ++pos) bytes[size_t(pos - lo)] = c.old_bytes[size_t(pos - c.offset)];
  WriteAll(fd, bytes.data(), bytes.size(), lo);
}

// Undoes an unsynced write: Drop rolls every sector back, Keep none, Tear
// each sector independently. Undoing changes newest first leaves every
// sector at some prefix of its history, as a real disk would.
void FaultBacking::UndoWrite(int fd, const Change& c, PowerCutMode mode, std::mt19937_64& rng, off_t* size,
                             PowerCutStats* stats) {
  ++stats->writes;
  bool all_rolled_back = true;
  off_t end = c.offset + c.length;
  for (off_t sector = c.offset / kSector * kSector; sector < end; sector += kSector) {
    bool roll_back = mode == PowerCutMode::kDrop || (mode == PowerCutMode::kTear && (rng() & 1) != 0);
    if (!roll_back) {
      ++stats->sectors_kept;
      all_rolled_back = false;
      continue;
    }
    ++stats->sectors_rolled_back;
    RestoreRange(fd, c, std::max(sector, c.offset), std::min(sector + kSector, end), *size);
  }
  if (all_rolled_back && c.new_size > c.old_size && *size == c.new_size) {
    TruncateTo(fd, c.old_size);
    *size = c.old_size;
  }
}

// Undoes an unsynced truncate or fallocate as a whole (Tear: at random).
void FaultBacking::UndoRange(int fd, const Change& c, PowerCutMode mode, std::mt19937_64& rng, off_t* size,
                             PowerCutStats* stats) {
  bool undo = mode == PowerCutMode::kDrop || (mode == PowerCutMode::kTear && (rng() & 1) != 0);
  if (!undo) {
    ++stats->size_changes_kept;
    return;
  }
  ++stats->size_changes_undone;
  if (c.type == Change::Type::kTruncate) {
    TruncateTo(fd, c.old_size);
    *size = c.old_size;
    if (!c.old_bytes.empty()) WriteAll(fd, c.old_bytes.data(), c.old_bytes.size(), c.new_size);
    return;
  }
  RestoreRange(fd, c, c.offset, c.offset + c.length, *size);
  if (c.new_size > c.old_size && *size == c.new_size) {
    TruncateTo(fd, c.old_size);
    *size = c.old_size;
  }
}

}  // namespace cfs::test
