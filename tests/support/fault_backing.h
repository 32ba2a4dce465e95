// FaultBacking: a Backing decorator for tests (never linked into src/). It
// forwards every call to an inner fd-based Backing (PosixBacking) and can
//  - fail the Nth call of a kind with an injected errno, once or for good
//    ("the disk died");
//  - simulate a power cut: it remembers, per host file (st_dev, st_ino),
//    every write, truncate and fallocate not yet made durable by an Fsync of
//    that file, with the pre-image needed to undo it, and on a cut drops,
//    keeps or tears (per 512-byte sector) those changes; afterwards every
//    call fails, as on a machine that is off;
//  - count calls per kind, so that a sweep knows how many points to try.
// Namespace operations are durable at once; see docs/crash-testing.md for
// what is and is not simulated.
//
// Thread safety: all methods may be called concurrently. Mutating calls are
// serialized by one mutex (a test layer: simplicity over speed).
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "store/backing.h"

namespace cfs::test {

// Kinds of Backing calls, for counting and for choosing the call to fail.
enum class OpKind {
  kAny = 0,   // matches every call
  kMutation,  // matches write, fsync, truncate, fallocate, rename, link, unlink, mkdir, symlink, mknod, attr
  kOpen,      // OpenAt
  kClose,     // Close
  kRead,      // PRead
  kWrite,     // PWrite
  kFsync,     // Fsync (file or directory, data or full)
  kTruncate,  // Ftruncate
  kFallocate, // Fallocate
  kRename,    // RenameAt
  kLink,      // LinkAt
  kUnlink,    // UnlinkAt
  kMkdir,     // MkdirAt
  kSymlink,   // SymlinkAt
  kMknod,     // MknodAt
  kMetaRead,  // Fstat, FstatAt, Lseek, Fstatvfs, ReadlinkAt, ListDir, Fgetxattr, Flistxattr
  kAttr,      // Fchmod, Fchown, FchownAt, Futimens, UtimensAt, Fsetxattr, Fremovexattr
  kCount_,    // number of kinds (not a kind)
};
const char* OpKindName(OpKind kind);

enum class PowerCutMode {
  kDrop,  // undo every change not made durable by Fsync
  kKeep,  // keep every change (what a killed daemon leaves: the page cache survives)
  kTear,  // each unsynced write: every 512-byte sector kept or rolled back at
          // random; each truncate/fallocate kept or undone at random
};
const char* PowerCutModeName(PowerCutMode mode);

struct FaultOptions {
  // Forward Fsync to the inner backing. Off by default: durability is
  // simulated here, and the host never really loses power in a test, so
  // real fsyncs would only slow the sweeps down (the fd is still checked).
  bool real_fsync = false;
  // An injected fsync failure also drops that file's unsynced changes, as
  // Linux may after a writeback error (the pages are marked clean and the
  // next fsync succeeds): the data is gone although the caller wrote it.
  bool fsync_error_drops_unsynced = false;
  // What OverwritesInPlace answers. SyncOverwrites makes durable only the
  // writes over ranges that had no hole; hole fills, growth, truncates and
  // fallocates stay unsynced (their metadata would not be written).
  bool overwrites_in_place = true;
};

// What the last power cut did (for tests to check that a tear really tore).
struct PowerCutStats {
  uint64_t files = 0;             // files with unsynced changes
  uint64_t writes = 0;            // unsynced writes seen
  uint64_t sectors_kept = 0;      // sectors of unsynced writes that kept new data
  uint64_t sectors_rolled_back = 0;
  uint64_t size_changes_kept = 0;  // truncates / fallocates kept
  uint64_t size_changes_undone = 0;
};

class FaultBacking final : public store::Backing {
 public:
  // `inner` must outlive this object and be fd-based (its fds are real
  // kernel fds: the shadow state re-opens them through /proc/self/fd).
  explicit FaultBacking(store::Backing* inner, FaultOptions options = {});
  ~FaultBacking() override;
  FaultBacking(const FaultBacking&) = delete;
  FaultBacking& operator=(const FaultBacking&) = delete;

  // --- Fault injection ---
  // The `n`th call (1-based, counted from now) matching `kind` fails with
  // `err` without reaching the inner backing; with `then_all_fail`, every
  // later call of any kind fails too (Close still releases the fd).
  void FailNth(OpKind kind, uint64_t n, int err = EIO, bool then_all_fail = false);
  void ClearFaults();
  // Number of calls failed by injection so far.
  uint64_t faults_injected() const;
  // "<kind> <syscall> fd N" of the last injected fault ("" if none).
  std::string last_fault() const;
  OpKind last_fault_kind() const;

  // --- Power cut ---
  // Now: applies `mode` (random choices from `seed`) to every unsynced
  // change, then refuses every further call. Returns what it did.
  PowerCutStats SimulatePowerCut(PowerCutMode mode, uint64_t seed);
  // Later: the power goes off just before the `n`th call matching `kind`
  // (counted from now); that call and all later ones fail.
  void ArmPowerCut(OpKind kind, uint64_t n, PowerCutMode mode, uint64_t seed);
  bool powered_off() const;
  PowerCutStats last_power_cut() const;
  // Number of host files with changes not yet fsynced.
  size_t unsynced_files() const;

  // Runs at the start of every Fsync, before its fault check and outside
  // the lock (another thread's calls go on): holds a sync in flight while a
  // test acts. Empty: none.
  void SetFsyncHook(std::function<void()> hook);

  // --- Counting ---
  // Calls of `kind` since construction or ResetCounts (kAny: all calls).
  uint64_t calls(OpKind kind) const;
  void ResetCounts();

  // --- Backing ---
  Result<int> OpenAt(int dirfd, const std::string& name, int flags, mode_t mode) override;
  Status Close(int fd) override;
  Result<size_t> PRead(int fd, void* buf, size_t count, off_t offset) override;
  Status PWrite(int fd, const void* buf, size_t count, off_t offset) override;
  Status Fsync(int fd, bool datasync) override;
  bool OverwritesInPlace(int fd) override;
  Status SyncOverwrites(int fd, int flush_fd) override;  // counted as kFsync
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
  Status Fchmod(int fd, mode_t mode) override;
  Status Fchown(int fd, uid_t uid, gid_t gid) override;
  Status FchownAt(int dirfd, const std::string& name, uid_t uid, gid_t gid, int flags) override;
  Status Futimens(int fd, const struct timespec times[2]) override;
  Status UtimensAt(int dirfd, const std::string& name, const struct timespec times[2], int flags) override;
  Result<size_t> Fgetxattr(int fd, const std::string& name, void* value, size_t size) override;
  Status Fsetxattr(int fd, const std::string& name, const void* value, size_t size, int flags) override;
  Result<size_t> Flistxattr(int fd, char* list, size_t size) override;
  Status Fremovexattr(int fd, const std::string& name) override;

 private:
  // One change not yet durable, with what is needed to undo it.
  struct Change {
    enum class Type { kWrite, kTruncate, kFallocate } type;
    off_t offset = 0;    // written / punched range (kWrite, kFallocate)
    off_t length = 0;
    off_t old_size = 0;  // host size before and after the change
    off_t new_size = 0;
    bool fills_hole = false;  // kWrite: the range had a hole or ran past the end
    std::vector<uint8_t> old_bytes;  // pre-image: [offset, min(end, old_size)),
                                     // for kTruncate [new_size, old_size)
  };
  struct Shadow {
    int fd = -1;  // our own O_RDWR fd of the inode: capture and undo
    std::vector<Change> changes;  // oldest first
  };
  using FileKey = std::pair<dev_t, ino_t>;
  struct Armed {
    OpKind kind = OpKind::kAny;
    uint64_t remaining = 0;  // 0: not armed
  };

  // Counts the call and decides its fate: OK to forward, or the injected
  // error / "power is off" status. Requires mu_.
  Status EnterLocked(OpKind kind, const char* what, int fd);
  // Same, taking mu_ for the check only (read-only calls).
  Status Enter(OpKind kind, const char* what, int fd);
  bool MatchesLocked(OpKind want, OpKind kind) const;
  void RunFsyncHook();  // outside mu_
  // The shadow of the file behind `fd`, created on first use; null if the
  // fd is not a regular file. Requires mu_.
  Result<Shadow*> ShadowOfLocked(int fd);
  Result<Change*> RecordLocked(int fd, Change::Type type, off_t offset, off_t length, off_t new_size);
  void UpdateNewSizeLocked(int fd, Change* change);
  // Fsync succeeded: the file behind `fd` has no unsynced change left.
  void MarkDurableLocked(int fd);
  // SyncOverwrites succeeded: the unsynced writes of the file behind `fd`
  // that filled no hole are durable; the rest stays unsynced (undoing an
  // older hole fill also loses a later overwrite of it, as on a disk).
  void MarkOverwritesDurableLocked(int fd);
  // Undoes the unsynced changes of the file behind `fd` (as a Drop cut of
  // that file alone).
  void DropUnsyncedLocked(int fd);
  void CutLocked(PowerCutMode mode, uint64_t seed);
  static void RestoreRange(int fd, const Change& c, off_t lo, off_t hi, off_t size);
  static void UndoWrite(int fd, const Change& c, PowerCutMode mode, std::mt19937_64& rng, off_t* size,
                        PowerCutStats* stats);
  static void UndoRange(int fd, const Change& c, PowerCutMode mode, std::mt19937_64& rng, off_t* size,
                        PowerCutStats* stats);

  store::Backing* const inner_;
  const FaultOptions options_;
  mutable std::mutex mu_;
  std::function<void()> fsync_hook_;  // guarded by mu_
  // Everything below is guarded by mu_.
  std::array<uint64_t, size_t(OpKind::kCount_)> counts_{};
  Armed fail_;
  int fail_errno_ = EIO;
  bool fail_then_all_ = false;
  bool disk_dead_ = false;
  uint64_t faults_injected_ = 0;
  std::string last_fault_;
  OpKind last_fault_kind_ = OpKind::kAny;
  Armed cut_;
  PowerCutMode cut_mode_ = PowerCutMode::kDrop;
  uint64_t cut_seed_ = 0;
  bool off_ = false;
  PowerCutStats last_cut_;
  std::map<FileKey, Shadow> shadows_;
};

}  // namespace cfs::test
