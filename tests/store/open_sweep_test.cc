// Sweeps over the start of a volume's life: DataStore::Open of a new or an
// existing volume, and file creation, with every backing call failing in
// turn or the power cut before every mutating call. Whatever happens, the
// next open must work and every file that was created and synced must read.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "store_fixture.h"
#include "support/fault_backing.h"
#include "support/test_util.h"
#include "sweep_run.h"

namespace cfs::test {
namespace {

constexpr uint64_t kB = 4096;

class OpenSweepTest : public ::testing::TestWithParam<bool> {};  // param: encrypted

// DataStore::Open that fails after it started building its state (here:
// the Nth backing call fails, N = 1..8) must return the error. Run in a
// child process (death-test style) so that a crash is reported as this
// test's failure without killing the rest of the binary.
TEST(DataPathOpenRegression, OpenThatFailsMidwayReturnsAnErrorInsteadOfCrashing) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  for (uint64_t n = 1; n <= 8; ++n) {
    EXPECT_EXIT(
        {
          StoreVolume vol(true, 16);
          store::PosixBacking posix;
          FaultBacking fault(&posix);
          fault.FailNth(OpKind::kAny, n);
          auto ds = vol.Open(&fault);
          std::exit(ds.ok() || fault.faults_injected() == 1 ? 0 : 1);
        },
        ::testing::ExitedWithCode(0), "")
        << "DataStore::Open with backing call " << n << " failing";
  }
}

// New volume: Open, create f0, write and sync one block, with the Nth call
// of any kind failing. Then a plain reopen must succeed; if the sequence
// succeeded, f0 holds the block.
TEST_P(OpenSweepTest, NewVolumeOpenAndCreateWithNthCallFailing) {
  const Bytes data = Pattern(kB + 100, 5);
  SweepReport report(std::string("NewVolumeOpenAndCreate/") + (GetParam() ? "Encrypted" : "Plain"));
  for (uint64_t n = 1; n < 2000; ++n) {
    StoreVolume vol(GetParam(), 16);
    store::PosixBacking posix;
    FaultBacking fault(&posix);
    fault.FailNth(OpKind::kAny, n);
    bool completed = false;
    {
      auto ds = vol.Open(&fault);
      if (ds.ok()) {
        auto f = vol.CreateFile(&fault, ds->get(), 0);
        if (f.ok()) {
          auto w = (*f)->Write(0, ByteView(data.data(), data.size()));
          completed = w.ok() && (*f)->Sync(false).ok();
        }
      }
    }
    if (fault.faults_injected() == 0) {
      EXPECT_TRUE(completed) << "failed without an injected fault";
      break;
    }
    std::string problem;
    auto ds = vol.Open(&posix);
    if (!ds.ok()) {
      problem = "[reopen] " + ds.status().ToString();
    } else if (completed) {
      auto f = vol.OpenFile(&posix, ds->get(), 0);
      Bytes back(data.size());
      if (!f.ok()) {
        problem = "[open] " + f.status().ToString();
      } else if (auto r = (*f)->Read(0, back.size(), back.data()); !r.ok() || back != data) {
        problem = "[content] f0 after a completed write and sync";
      }
    }
    report.Add("N=" + std::to_string(n) + " (" + fault.last_fault() + ")", problem);
  }
  EXPECT_GT(report.runs(), 3u);
}

// Existing volume with synced data, closed cleanly or not: the power is cut
// before each mutating call of Open (dirty-log header, ...), in every mode.
// The next open must work and the data must be intact.
TEST_P(OpenSweepTest, ExistingVolumeSurvivesPowerCutDuringOpen) {
  const Bytes data = Pattern(3 * kB, 6);
  SweepReport report(std::string("ExistingVolumeOpen/") + (GetParam() ? "Encrypted" : "Plain"));
  for (bool clean : {true, false}) {
    for (uint64_t n = 1; n < 200; ++n) {
      bool reached = false;
      for (PowerCutMode mode : {PowerCutMode::kDrop, PowerCutMode::kKeep, PowerCutMode::kTear}) {
        StoreVolume vol(GetParam(), 16);
        store::PosixBacking posix;
        {
          auto ds = vol.Open(&posix);
          ASSERT_TRUE(ds.ok());
          auto f = vol.CreateFile(&posix, ds->get(), 0);
          ASSERT_TRUE(f.ok());
          ASSERT_TRUE((*f)->Write(0, ByteView(data.data(), data.size())).ok());
          ASSERT_TRUE((*f)->Sync(false).ok());
          if (clean) {
            ASSERT_TRUE((*ds)->CloseClean().ok());
          }
        }
        FaultBacking fault(&posix);
        fault.ArmPowerCut(OpKind::kMutation, n, mode, n);
        {
          auto ds = vol.Open(&fault);
          if (ds.ok() && !fault.powered_off()) {
            auto r = (*ds)->RecoverTornBlocks();
            (void)r;
          }
        }
        reached = fault.powered_off();
        if (!reached) break;
        std::string problem;
        auto ds = vol.Open(&posix);
        if (!ds.ok()) {
          problem = "[reopen] " + ds.status().ToString();
        } else {
          auto rec = (*ds)->RecoverTornBlocks();
          auto f = vol.OpenFile(&posix, ds->get(), 0);
          Bytes back(data.size());
          if (!rec.ok()) {
            problem = "[recover] " + rec.status().ToString();
          } else if (!f.ok()) {
            problem = "[open] " + f.status().ToString();
          } else if (auto r = (*f)->Read(0, back.size(), back.data()); !r.ok() || back != data) {
            problem = "[synced-lost] f0 differs after a cut during open";
          }
        }
        report.Add(std::string(clean ? "clean" : "unclean") + " volume, cut before mutating call " +
                       std::to_string(n) + " " + PowerCutModeName(mode),
                   problem);
      }
      if (!reached) break;
    }
  }
  EXPECT_GT(report.runs(), 0u);
}

// A file whose inode file was created but never synced (the fs layer
// creates it with O_CREAT and InitInodeFile, and fsyncs later): after a
// power cut the name survives with an empty inode file (the classic
// zero-length file after a crash on ext4). It must open as an empty file,
// never be an EIO file forever (G12: no file unreadable because of cipherfs
// metadata); docs/format/chunks.md section 1.
TEST_P(OpenSweepTest, FileCreatedButNeverSyncedIsNotEioAfterPowerCut) {
  StoreVolume vol(GetParam(), 16);
  store::PosixBacking posix;
  FaultBacking fault(&posix);
  {
    auto ds = vol.Open(&fault);
    ASSERT_TRUE(ds.ok());
    auto fd = fault.OpenAt(vol.dirfd(), "tree/f0", O_RDWR | O_CREAT | O_EXCL, 0600);
    ASSERT_TRUE(fd.ok());
    ASSERT_TRUE((*ds)->InitInodeFile(*fd).ok());
    (void)fault.Close(*fd);
    fault.SimulatePowerCut(PowerCutMode::kDrop, 1);
  }
  auto ds = vol.Open(&posix);
  ASSERT_TRUE(ds.ok());
  auto f = vol.OpenFile(&posix, ds->get(), 0);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ((*f)->size(), 0u);
}

// PostgreSQL's checkpointer (and initdb) fsync a file through a new open
// after the writer closed it: that sync must cover the earlier open's
// chunks, chunk directory entries and size.
TEST_P(OpenSweepTest, DataWrittenByAClosedOpenSurvivesPowerCutAfterSyncThroughANewOpen) {
  StoreVolume vol(GetParam(), 16);
  store::PosixBacking posix;
  FaultBacking fault(&posix);
  Bytes data(3 * 16 * 4096 + 777);
  for (size_t i = 0; i < data.size(); ++i) data[i] = uint8_t(i * 131 + 7);
  {
    auto ds = vol.Open(&fault);
    ASSERT_TRUE(ds.ok()) << ds.status().ToString();
    {
      auto f = vol.CreateFile(&fault, ds->get(), 0);
      ASSERT_TRUE(f.ok()) << f.status().ToString();
      ASSERT_TRUE((*f)->Sync(false).ok());  // the empty file is durable
      auto w = (*f)->Write(100, data);
      ASSERT_TRUE(w.ok()) << w.status().ToString();
    }  // closed without a sync
    auto f = vol.OpenFile(&fault, ds->get(), 0);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    ASSERT_TRUE((*f)->Sync(true).ok());
    fault.SimulatePowerCut(PowerCutMode::kDrop, 1);
  }
  auto ds = vol.Open(&posix);
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  ASSERT_TRUE((*ds)->RecoverTornBlocks().ok());
  auto f = vol.OpenFile(&posix, ds->get(), 0);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  ASSERT_EQ((*f)->size(), data.size() + 100);
  Bytes got(data.size());
  auto n = (*f)->Read(100, got.size(), got.data());
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  ASSERT_EQ(*n, got.size());
  EXPECT_TRUE(got == data) << "data synced through a second open was lost in the power cut";
}

INSTANTIATE_TEST_SUITE_P(Store, OpenSweepTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Encrypted" : "Plain"; });

}  // namespace
}  // namespace cfs::test
