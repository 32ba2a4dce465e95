// SweepRun: one iteration of a crash sweep. A fresh volume, a DataStore
// opened through a FaultBacking, files created and synced; then a workload
// runs until its first failure (injected fault or power cut), the store is
// abandoned as a killed daemon leaves it, and the volume is reopened with a
// PosixBacking and checked against the Tracker (crash_model.h).
// Thread safety: single-threaded.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "crash_model.h"
#include "store/backing.h"
#include "store/data_store.h"
#include "store_fixture.h"
#include "support/fault_backing.h"

namespace cfs::test {

struct SweepConfig {
  bool encrypted = true;
  uint32_t chunk_blocks = 16;
  int files = 2;
  FaultOptions fault_options;
};

class SweepRun {
 public:
  explicit SweepRun(const SweepConfig& config);
  ~SweepRun();

  // Opens the store through the FaultBacking and creates the files; then
  // resets the call counts so that faults count from the workload's start.
  // False (with a gtest failure) if that did not work.
  bool Setup();
  FaultBacking& fault() { return fault_; }
  const Tracker& tracker() const { return tracker_; }

  // Runs `ops` until one fails. Returns the index of the failed op, or -1.
  // `check_sync_errors`: a Sync during which a fault was injected must not
  // return OK (its data may not be durable: errors are never dropped).
  // `retries`: a failing op is run again up to that many times before it
  // counts as failed (an application retrying after a transient error).
  int Run(const std::vector<Op>& ops, bool check_sync_errors, int retries = 0);

  struct Verify {
    // Checked before RecoverTornBlocks (none: only after).
    bool check_before_recovery = true;
    Expect expect = Expect::kKeep;
    // RecoverTornBlocks must find nothing to repair.
    bool expect_no_repairs = true;
    // Finally grow every file and check that the new range reads zeros.
    bool check_past_eof = true;
  };
  // Abandons the store (no CloseClean), reopens with PosixBacking, checks
  // every file; then recovers, checks again, closes cleanly, reopens and
  // checks that recovery's result is stable and that growing each file
  // exposes zeros. Returns the first problem ("[category] detail") or "".
  std::string ReopenAndCheck(const Verify& verify);
  // Index of the op during which the first fault was injected, or -1.
  int fault_op() const { return fault_op_; }
  // Set by Run when a Sync swallowed an injected fault ("" otherwise).
  const std::string& sync_problem() const { return sync_problem_; }
  // Blocks RecoverTornBlocks repaired in the last ReopenAndCheck.
  uint64_t repaired() const { return repaired_; }

 private:
  std::string CheckAll(store::DataStore* ds, Expect expect, const std::string& when);
  // Op::Type::kSnapshot: hard-links the file's chunk files into snap/ behind
  // the write barrier and bumps the cow epoch (raw syscalls: a snapshot is
  // not what is being crash-tested here).
  Status TakeSnapshot(int file);
  std::string CheckGrowReadsZeros(store::FileData* file);

  SweepConfig config_;
  StoreVolume volume_;
  store::PosixBacking posix_;
  FaultBacking fault_;
  std::unique_ptr<store::DataStore> store_;
  std::vector<std::shared_ptr<store::FileData>> files_;
  Tracker tracker_;
  int snapshots_ = 0;
  uint64_t repaired_ = 0;
  std::string sync_problem_;
  int fault_op_ = -1;
};

// Collects the outcome of every run of a sweep, so that one bug does not
// hide the others: at the end, one gtest failure listing the failed runs
// per problem category with a few examples each (context + problem).
class SweepReport {
 public:
  explicit SweepReport(std::string name) : name_(std::move(name)) {}
  ~SweepReport();
  // `problem` "" means the run passed.
  void Add(const std::string& context, const std::string& problem);
  uint64_t runs() const { return runs_; }
  uint64_t failed() const { return failed_; }

 private:
  std::string name_;
  uint64_t runs_ = 0, failed_ = 0;
  std::map<std::string, std::vector<std::string>> by_category_;
  std::map<std::string, uint64_t> counts_;
};

// Expect for a power cut of `mode` on a volume.
Expect ExpectFor(PowerCutMode mode, bool encrypted);

}  // namespace cfs::test
