// One fsx model-checking thread: its own files, its own model, its region of
// the shared file. A mismatch or an unexpected error prints the op log tail
// and the first differing offset, then ends the process with exit code 1.
// Thread safety: a Worker is used by one thread; OpCounts is atomic.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "fsx_common.h"

namespace fsx {

enum Op {
  kWrite, kRead, kTruncate, kFallocate, kPunch, kMmapRead, kMmapWrite, kRename, kRenameOver,
  kLink, kUnlinkLink, kFsync, kFdatasync, kReopen, kStat, kDirectWrite, kDirectRead,
  kSharedWrite, kSharedRead, kSharedPunch, kOpCount
};

struct OpCounts {
  std::atomic<uint64_t> n[kOpCount] = {};
  std::string Summary() const;
};

class Worker {
 public:
  Worker(const Options& opt, unsigned id, OpCounts* counts);
  ~Worker();
  // Runs `ops` random operations, then verifies every file in full and
  // removes them (unless --keep). Exits the process on a failure.
  void Run(uint64_t ops);

 private:
  struct File {
    std::vector<std::string> names;  // all hard links; names[0] used for reopen
    std::vector<uint8_t> data;       // the model: size == data.size()
    int fd = -1;
    int dfd = -1;                    // O_DIRECT descriptor, opened lazily
  };

  Op PickOp();
  void DoOp(Op op);
  void DoWrite(File& f);
  void DoRead(File& f);
  void DoTruncate(File& f);
  void DoFallocate(File& f, bool punch);
  void DoMmapRead(File& f);
  void DoMmapWrite(File& f);
  void DoRename(File& f, bool over);
  void DoLink(File& f);
  void DoUnlinkLink(File& f);
  void DoReopen(File& f);
  void DoStat(File& f);
  void DoDirect(File& f, bool write);
  void DoShared(Op op);
  void VerifyAll();

  uint64_t PickLen();
  uint64_t PickOff(uint64_t size);
  std::string Fresh(const char* kind);
  std::string Path(const std::string& name) const { return opt_.dir + "/" + name; }
  void Log(const std::string& entry);
  // Compares what was read with the model; fails on the first difference.
  void Compare(const std::string& what, uint64_t off, const uint8_t* got, size_t got_len,
               const uint8_t* want, size_t want_len);
  [[noreturn]] void Fail(const std::string& msg);
  void Check(bool ok, const std::string& what);  // ok == false: Fail with errno

  const Options& opt_;
  const unsigned id_;
  OpCounts* counts_;
  Rng rng_;
  std::vector<File> files_;
  uint64_t next_name_ = 0;
  uint64_t opno_ = 0;
  std::deque<std::string> log_;
  std::vector<uint8_t> buf_;
  uint8_t* abuf_ = nullptr;  // 4096-aligned buffer for O_DIRECT
  // The shared file: this thread's region [shared_base_, +opt_.shared_region).
  int shared_fd_ = -1;
  uint64_t shared_base_ = 0;
  std::vector<uint8_t> shared_model_;
};

}  // namespace fsx
