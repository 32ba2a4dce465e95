// I/O-error sweeps over the data path: for every N, the scripted workload
// runs on a fresh volume whose Nth backing call of one kind fails; the run
// stops at the first FileData error (as a database stops at a failed
// write or fsync), the store is abandoned without a clean close, and the
// reopened volume must open, read every block without EIO, and hold
// exactly what completed, each block of the failed operation old or new.
#include <gtest/gtest.h>

#include <cerrno>
#include <string>

#include "sweep_run.h"

namespace cfs::test {
namespace {

struct ErrorCase {
  const char* name;
  bool encrypted;
  OpKind kind;
  int err;
  bool dead_disk;  // every call after the Nth fails too
  bool drop_pages = false;  // a failed fsync loses the file's unsynced data (Linux)
  int retries = 0;          // the failed op is retried (transient error) and the workload goes on
};

class ErrorSweepTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(ErrorSweepTest, EveryNthCallFailsCleanly) {
  const ErrorCase& c = GetParam();
  const std::vector<Op> ops = ScriptedWorkload();
  SweepReport report(c.name);
  for (uint64_t n = 1; n <= 5000; ++n) {
    SweepConfig config{c.encrypted};
    config.fault_options.fsync_error_drops_unsynced = c.drop_pages;
    SweepRun run(config);
    ASSERT_TRUE(run.Setup());
    run.fault().FailNth(c.kind, n, c.err, c.dead_disk);
    int failed = run.Run(ops, /*check_sync_errors=*/true, c.retries);
    if (run.fault().faults_injected() == 0) {
      EXPECT_EQ(failed, -1) << "op " << failed << " (" << Describe(ops[size_t(failed)])
                            << ") failed without an injected fault";
      break;  // n is past the last call of this kind
    }
    auto op_name = [&](int i) { return i < 0 ? std::string("none") : std::to_string(i) + " " + Describe(ops[size_t(i)]); };
    std::string ctx = "N=" + std::to_string(n) + " (" + run.fault().last_fault() + ") in op " + op_name(run.fault_op()) +
                      ", failed op " + op_name(failed);
    std::string problem = run.sync_problem();
    // Without lost pages nothing written is lost (the page cache survives);
    // with them, the file may be anywhere since its last good fsync.
    Expect expect = c.drop_pages ? Expect::kDrop : Expect::kKeep;
    if (problem.empty()) problem = run.ReopenAndCheck({/*check_before_recovery=*/true, expect});
    report.Add(ctx, problem);
  }
  EXPECT_GT(report.runs(), 0u) << "the workload made no " << OpKindName(c.kind)
                               << " call: the sweep tested nothing";
}

const ErrorCase kCases[] = {
    {"EncWriteEio", true, OpKind::kWrite, EIO, false},
    {"EncWriteEnospc", true, OpKind::kWrite, ENOSPC, false},
    {"EncFsyncEio", true, OpKind::kFsync, EIO, false},
    {"EncTruncateEio", true, OpKind::kTruncate, EIO, false},
    {"EncFallocateEio", true, OpKind::kFallocate, EIO, false},
    {"EncRenameEio", true, OpKind::kRename, EIO, false},
    {"EncOpenEmfile", true, OpKind::kOpen, EMFILE, false},
    {"EncMutationDeadDisk", true, OpKind::kMutation, EIO, true},
    {"EncFsyncEioLosesPages", true, OpKind::kFsync, EIO, false, true},
    // Retried after the transient error, the operation must succeed and the
    // run go on to the end: whatever the failed attempt left in memory or
    // on disk must not spoil later operations (checked exactly at the end).
    {"EncWriteEioRetried", true, OpKind::kWrite, EIO, false, false, 2},
    {"EncFsyncEioRetried", true, OpKind::kFsync, EIO, false, false, 2},
    {"EncMutationEioRetried", true, OpKind::kMutation, EIO, false, false, 2},
    {"PlainWriteEio", false, OpKind::kWrite, EIO, false},
    {"PlainFsyncEio", false, OpKind::kFsync, EIO, false},
    {"PlainAnyEio", false, OpKind::kAny, EIO, false},
    {"PlainAnyEioRetried", false, OpKind::kAny, EIO, false, false, 2},
};

INSTANTIATE_TEST_SUITE_P(Store, ErrorSweepTest, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace cfs::test
