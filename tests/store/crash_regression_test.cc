// Focused reproductions of data-path crash bugs found by the sweeps: each
// interrupts one FileData operation at every one of its backing writes.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <string>

#include "store_fixture.h"
#include "support/fault_backing.h"
#include "support/test_util.h"

namespace cfs::test {
namespace {

constexpr uint64_t kB = 4096;

// One volume with file f0 prepared by `setup` and synced, a FaultBacking in
// front; `Interrupt(k)` runs `op` with the power cut (Keep: a killed daemon)
// just before its kth backing write, then reopens and recovers.
class InterruptedOp {
 public:
  using Step = std::function<Status(store::FileData*)>;
  InterruptedOp(bool encrypted, Step setup, Step op) : vol_(encrypted, 16), fault_(&posix_), setup_(setup), op_(op) {}

  // Number of backing writes `op` makes (a dry run on its own volume).
  static uint64_t CountWrites(bool encrypted, const Step& setup, const Step& op) {
    InterruptedOp dry(encrypted, setup, op);
    if (!dry.Prepare()) return 0;
    dry.fault_.ResetCounts();
    if (!op(dry.file_.get()).ok()) return 0;
    return dry.fault_.calls(OpKind::kWrite);
  }

  // Runs op with a Keep cut before its kth write; reopens, recovers and
  // returns the reopened file (null on failure, with a gtest failure).
  std::shared_ptr<store::FileData> Interrupt(uint64_t k, PowerCutMode mode = PowerCutMode::kKeep) {
    if (!Prepare()) return nullptr;
    fault_.ArmPowerCut(OpKind::kWrite, k, mode, k);
    EXPECT_FALSE(op_(file_.get()).ok()) << "the op completed although the power went off at its write " << k;
    file_.reset();
    store_.reset();
    auto ds = vol_.Open(&posix_);
    EXPECT_TRUE(ds.ok()) << ds.status().ToString();
    if (!ds.ok()) return nullptr;
    reopened_ = std::move(ds).value();
    auto rec = reopened_->RecoverTornBlocks();
    EXPECT_TRUE(rec.ok()) << rec.status().ToString();
    repaired_ = rec.ok() ? *rec : 0;
    auto f = vol_.OpenFile(&posix_, reopened_.get(), 0);
    EXPECT_TRUE(f.ok()) << f.status().ToString();
    return f.ok() ? *f : nullptr;
  }
  uint64_t repaired() const { return repaired_; }

 private:
  bool Prepare() {
    auto ds = vol_.Open(&fault_);
    if (!ds.ok()) return false;
    store_ = std::move(ds).value();
    auto f = vol_.CreateFile(&fault_, store_.get(), 0);
    if (!f.ok()) return false;
    file_ = *f;
    return setup_(file_.get()).ok() && file_->Sync(false).ok();
  }

  StoreVolume vol_;
  store::PosixBacking posix_;
  FaultBacking fault_;
  Step setup_, op_;
  std::unique_ptr<store::DataStore> store_, reopened_;
  std::shared_ptr<store::FileData> file_;
  uint64_t repaired_ = 0;
};

Status WriteAt(store::FileData* f, uint64_t off, const Bytes& d) {
  auto n = f->Write(off, ByteView(d.data(), d.size()));
  return n.ok() ? Status::Ok() : n.status();
}

// A killed daemon leaves an interrupted write into a hole old (zeros) or
// new; recovery must not turn it into noise. Recovery re-tags every block
// whose slots fail, even where the allocation map says hole (the slot was
// written, the data and map bit not yet): the hole then decrypts to noise.
TEST(DataPathCrashRegression, RecoveryKeepsAHoleWhoseInterruptedWriteNeverCompleted) {
  const Bytes first = Pattern(kB, 1), fresh = Pattern(kB, 2);
  auto setup = [&](store::FileData* f) {
    CFS_RETURN_IF_ERROR(WriteAt(f, 0, first));
    return f->Truncate(4 * kB);  // blocks 1..3: holes inside the file
  };
  auto op = [&](store::FileData* f) { return WriteAt(f, kB, fresh); };
  uint64_t writes = InterruptedOp::CountWrites(true, setup, op);
  ASSERT_GT(writes, 0u);
  for (uint64_t k = 1; k <= writes; ++k) {
    InterruptedOp run(true, setup, op);
    auto f = run.Interrupt(k);
    ASSERT_NE(f, nullptr);
    Bytes got(kB);
    auto n = f->Read(kB, kB, got.data());
    ASSERT_TRUE(n.ok()) << "write " << k << ": " << n.status().ToString();
    EXPECT_TRUE(got == Bytes(kB, 0) || got == fresh)
        << "cut before write " << k << " of " << writes << ": block 1 is neither the hole nor the new data after "
        << "recovery (" << run.repaired() << " blocks re-tagged although nothing was torn)";
  }
}

// Growing a file exposes zeros (POSIX). An extending write interrupted
// after its blocks but before the inode size leaves written blocks past
// EOF; a later grow (Truncate up) makes them visible.
TEST(DataPathCrashRegression, GrowAfterInterruptedExtendingWriteExposesOnlyZeros) {
  for (bool encrypted : {false, true}) {
    const Bytes base = Pattern(10000, 1), ext = Pattern(2 * kB, 2);
    auto setup = [&](store::FileData* f) { return WriteAt(f, 0, base); };
    auto op = [&](store::FileData* f) { return WriteAt(f, 4 * kB, ext); };
    uint64_t writes = InterruptedOp::CountWrites(encrypted, setup, op);
    ASSERT_GT(writes, 0u);
    for (uint64_t k = 1; k <= writes; ++k) {
      InterruptedOp run(encrypted, setup, op);
      auto f = run.Interrupt(k);
      ASSERT_NE(f, nullptr);
      if (f->size() != base.size()) continue;  // the write took effect: nothing to grow over
      ASSERT_TRUE(f->Truncate(8 * kB).ok());
      Bytes got(8 * kB - base.size());
      ASSERT_TRUE(f->Read(base.size(), got.size(), got.data()).ok());
      EXPECT_TRUE(std::all_of(got.begin(), got.end(), [](uint8_t x) { return x == 0; }))
          << (encrypted ? "encrypted" : "plain") << ", cut before write " << k << " of " << writes
          << ": growing from " << base.size() << " exposed bytes of a write that never completed";
    }
  }
}

// The same without any crash: an extending write fails (EIO on the inode
// size write), the daemon carries on, and a later grow exposes the data of
// the failed write.
TEST(DataPathCrashRegression, GrowAfterFailedExtendingWriteInSameSessionExposesOnlyZeros) {
  StoreVolume vol(true, 16);
  store::PosixBacking posix;
  FaultBacking fault(&posix);
  auto ds = vol.Open(&fault);
  ASSERT_TRUE(ds.ok());
  auto f = vol.CreateFile(&fault, ds->get(), 0);
  ASSERT_TRUE(f.ok());
  // Find the number of writes of the extending write, then fail its last
  // one (the inode size, written after the blocks).
  Bytes ext = Pattern(2 * kB, 2);
  uint64_t writes = 0;
  {
    StoreVolume dry_vol(true, 16);
    FaultBacking dry(&posix);
    auto dds = dry_vol.Open(&dry);
    ASSERT_TRUE(dds.ok());
    auto df = dry_vol.CreateFile(&dry, dds->get(), 0);
    ASSERT_TRUE(df.ok());
    dry.ResetCounts();
    ASSERT_TRUE(WriteAt(df->get(), 4 * kB, ext).ok());
    writes = dry.calls(OpKind::kWrite);
  }
  fault.ResetCounts();
  fault.FailNth(OpKind::kWrite, writes);
  ASSERT_FALSE(WriteAt(f->get(), 4 * kB, ext).ok());
  ASSERT_EQ((*f)->size(), 0u);
  ASSERT_TRUE((*f)->Truncate(8 * kB).ok());
  Bytes got(8 * kB);
  ASSERT_TRUE((*f)->Read(0, got.size(), got.data()).ok());
  EXPECT_TRUE(std::all_of(got.begin(), got.end(), [](uint8_t x) { return x == 0; }))
      << "a file grown from 0 to 8 blocks shows the data of a write that returned EIO";
}

// A copy-on-write break (a write to a chunk shared with a snapshot) whose
// fsync fails transiently: the write fails; retried, it must succeed, the
// data must read back after a Sync, and the snapshot's chunk must be
// untouched.
TEST(DataPathCrashRegression, CowBreakRetriedAfterFailedFsyncKeepsDataAndSnapshot) {
  const Bytes a = Pattern(3 * kB, 1), b = Pattern(kB, 2);
  struct Setup {
    StoreVolume vol{true, 16};
    store::PosixBacking posix;
    FaultBacking fault{&posix};
    std::unique_ptr<store::DataStore> ds;
    std::shared_ptr<store::FileData> f;
    std::string snap;
    Bytes snap_bytes;
  };
  auto prepare = [&](Setup& s) {
    auto ds = s.vol.Open(&s.fault);
    ASSERT_TRUE(ds.ok());
    s.ds = std::move(ds).value();
    auto f = s.vol.CreateFile(&s.fault, s.ds.get(), 0);
    ASSERT_TRUE(f.ok());
    s.f = *f;
    ASSERT_TRUE(WriteAt(s.f.get(), 0, a).ok());
    ASSERT_TRUE(s.f->Sync(false).ok());
    s.snap = s.vol.path() + "/snap0";
    s.ds->BeginWriteBarrier();
    ASSERT_EQ(link(s.vol.ChunkPath(s.f->id(), 0).c_str(), s.snap.c_str()), 0);
    s.ds->BumpCowEpoch();
    s.ds->EndWriteBarrier();
    s.snap_bytes = ReadHostFile(s.snap);
    s.fault.ResetCounts();
  };
  uint64_t fsyncs = 0;
  {
    Setup dry;
    prepare(dry);
    ASSERT_TRUE(WriteAt(dry.f.get(), 0, b).ok());
    fsyncs = dry.fault.calls(OpKind::kFsync);
  }
  ASSERT_GT(fsyncs, 0u);
  for (uint64_t k = 1; k <= fsyncs; ++k) {
    Setup s;
    prepare(s);
    s.fault.FailNth(OpKind::kFsync, k);
    Status first = WriteAt(s.f.get(), 0, b);
    Status retried = first.ok() ? first : WriteAt(s.f.get(), 0, b);
    ASSERT_TRUE(retried.ok()) << "fsync " << k << ": retried write: " << retried.ToString();
    ASSERT_TRUE(s.f->Sync(false).ok());
    Bytes got(kB);
    ASSERT_TRUE(s.f->Read(0, kB, got.data()).ok());
    EXPECT_EQ(got, b) << "fsync " << k << " of " << fsyncs << " failed (first attempt "
                      << (first.ok() ? "OK" : first.ToString()) << "): block 0 lost the retried write";
    EXPECT_TRUE(ReadHostFile(s.snap) == s.snap_bytes)
        << "fsync " << k << " (" << s.fault.last_fault() << "): the retried write went into the snapshot's chunk";
  }
}

// fsyncgate: after a failed fsync Linux may drop the dirty pages and report
// success on the next fsync. A second Sync after a failed one must then
// either fail too or the data must really be there: never "OK" for data
// that is gone.
TEST(DataPathCrashRegression, SyncRetriedAfterFailedSyncNeverReportsLostDataDurable) {
  for (bool encrypted : {false, true}) {
    StoreVolume vol(encrypted, 16);
    store::PosixBacking posix;
    FaultOptions options;
    options.fsync_error_drops_unsynced = true;
    FaultBacking fault(&posix, options);
    auto ds = vol.Open(&fault);
    ASSERT_TRUE(ds.ok());
    auto f = vol.CreateFile(&fault, ds->get(), 0);
    ASSERT_TRUE(f.ok());
    const Bytes old_data = Pattern(2 * kB, 1), new_data = Pattern(2 * kB, 2);
    ASSERT_TRUE(WriteAt(f->get(), 0, old_data).ok());
    ASSERT_TRUE((*f)->Sync(false).ok());
    ASSERT_TRUE(WriteAt(f->get(), 0, new_data).ok());
    fault.FailNth(OpKind::kFsync, 1);
    ASSERT_FALSE((*f)->Sync(false).ok()) << "the injected fsync failure was not reported";
    Status retry = (*f)->Sync(false);
    if (!retry.ok()) continue;  // still failing: honest
    Bytes got(2 * kB);
    ASSERT_TRUE((*f)->Read(0, got.size(), got.data()).ok());
    EXPECT_EQ(got, new_data) << (encrypted ? "encrypted" : "plain")
                             << ": the retried Sync returned OK but the written data was lost";
  }
}

}  // namespace
}  // namespace cfs::test
