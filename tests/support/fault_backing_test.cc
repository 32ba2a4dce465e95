// Tests of FaultBacking itself, on plain files: the power-cut model (drop,
// keep, tear) and Nth-call fault injection.
#include "support/fault_backing.h"

#include <gtest/gtest.h>
#include <linux/falloc.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "support/test_util.h"

namespace cfs::test {
namespace {

using store::PosixBacking;
using Bytes = std::vector<uint8_t>;

class FaultBackingTest : public ::testing::Test {
 protected:
  int Open(const std::string& name, int flags = O_RDWR | O_CREAT) {
    auto fd = fb_.OpenAt(dir_.fd(), name, flags, 0600);
    EXPECT_TRUE(fd.ok()) << fd.status().ToString();
    return fd.ok() ? *fd : -1;
  }
  void Write(int fd, const Bytes& data, off_t off) {
    Status s = fb_.PWrite(fd, data.data(), data.size(), off);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  void Sync(int fd) { ASSERT_TRUE(fb_.Fsync(fd, false).ok()); }
  // The file's content as a fresh PosixBacking sees it (after a cut).
  Bytes Contents(const std::string& name) {
    auto fd = posix_.OpenAt(dir_.fd(), name, O_RDONLY, 0);
    EXPECT_TRUE(fd.ok()) << fd.status().ToString();
    if (!fd.ok()) return {};
    Bytes out(1 << 20);
    auto n = posix_.PRead(*fd, out.data(), out.size(), 0);
    EXPECT_TRUE(n.ok());
    out.resize(n.ok() ? *n : 0);
    EXPECT_TRUE(posix_.Close(*fd).ok());
    return out;
  }
  static Bytes Slice(const Bytes& b, size_t off, size_t n) { return Bytes(b.begin() + off, b.begin() + off + n); }
  static bool FdIsOpen(int fd) { return fcntl(fd, F_GETFD) != -1; }

  TempDir dir_{"cfs_fault"};
  PosixBacking posix_;
  FaultBacking fb_{&posix_};
};

// SyncOverwrites (write-back and a disk flush, no metadata) makes
// overwrites of allocated ranges durable, never hole fills or growth.
TEST_F(FaultBackingTest, SyncOverwritesKeepsOnlyOverwritesOfAllocatedRanges) {
  int fd = Open("f");
  int flush = Open("flush");
  Write(fd, Pattern(8192, 1), 0);
  Sync(fd);
  ASSERT_EQ(lseek(fd, 65536, SEEK_SET), 65536);  // a hole in [8192, 65536)
  Write(fd, Pattern(4096, 2), 65536);            // grows the file
  Write(fd, Pattern(4096, 3), 16384);            // fills a hole
  Write(fd, Pattern(4096, 4), 0);                // overwrites
  ASSERT_TRUE(fb_.SyncOverwrites(fd, flush).ok());
  EXPECT_EQ(fb_.unsynced_files(), 1u) << "the growth and the hole fill are not durable";
  fb_.SimulatePowerCut(PowerCutMode::kDrop, 1);
  Bytes got = Contents("f");
  ASSERT_EQ(got.size(), 8192u) << "the growth was undone";
  EXPECT_EQ(Slice(got, 0, 4096), Pattern(4096, 4)) << "the overwrite is durable";
  EXPECT_EQ(Slice(got, 4096, 4096), Slice(Pattern(8192, 1), 4096, 4096));
}

TEST_F(FaultBackingTest, SyncOverwritesOfOnlyOverwritesLeavesNothingUnsynced) {
  int fd = Open("f");
  int flush = Open("flush");
  Write(fd, Pattern(8192, 1), 0);
  Sync(fd);
  Write(fd, Pattern(100, 2), 50);
  Write(fd, Pattern(4096, 3), 4096);
  uint64_t fsyncs = fb_.calls(OpKind::kFsync);
  ASSERT_TRUE(fb_.SyncOverwrites(fd, flush).ok());
  EXPECT_EQ(fb_.calls(OpKind::kFsync), fsyncs + 1) << "counted as an fsync, for the sweeps";
  EXPECT_EQ(fb_.unsynced_files(), 0u);
}

TEST_F(FaultBackingTest, SyncedDataSurvivesDrop) {
  int fd = Open("f");
  Bytes a = Pattern(10000, 1);
  Write(fd, a, 0);
  Sync(fd);
  Write(fd, Pattern(3000, 2), 1000);
  Write(fd, Pattern(5000, 3), 9000);  // extends the file
  EXPECT_EQ(fb_.unsynced_files(), 1u);
  PowerCutStats st = fb_.SimulatePowerCut(PowerCutMode::kDrop, 1);
  EXPECT_EQ(st.writes, 2u);
  EXPECT_EQ(st.sectors_kept, 0u);
  EXPECT_EQ(Contents("f"), a);
}

TEST_F(FaultBackingTest, UnsyncedDataOfNewFileIsGoneAfterDrop) {
  int fd = Open("new");
  Write(fd, Pattern(8192, 1), 0);
  fb_.SimulatePowerCut(PowerCutMode::kDrop, 1);
  EXPECT_TRUE(Contents("new").empty());  // the name is durable, the data is not
}

TEST_F(FaultBackingTest, KeepKeepsEverything) {
  int fd = Open("f");
  Write(fd, Pattern(4096, 1), 0);
  Sync(fd);
  Bytes b = Pattern(6000, 2);
  Write(fd, b, 100);
  ASSERT_TRUE(fb_.Ftruncate(fd, 5000).ok());
  fb_.SimulatePowerCut(PowerCutMode::kKeep, 1);
  Bytes want = Pattern(4096, 1);
  want.resize(6100);
  std::copy(b.begin(), b.end(), want.begin() + 100);
  want.resize(5000);
  EXPECT_EQ(Contents("f"), want);
}

TEST_F(FaultBackingTest, TearGivesPerSectorMixOfOldAndNewOnly) {
  const uint64_t seed = TestSeed("TearGivesPerSectorMixOfOldAndNewOnly", 42);
  for (uint64_t round = 0; round < 8; ++round) {
    TempDir dir("cfs_tear");
    FaultBacking fb(&posix_);
    auto fd = fb.OpenAt(dir.fd(), "f", O_RDWR | O_CREAT, 0600);
    ASSERT_TRUE(fd.ok());
    Bytes old_data = Pattern(65536, 10 + round), new_data = Pattern(60000, 100 + round);
    ASSERT_TRUE(fb.PWrite(*fd, old_data.data(), old_data.size(), 0).ok());
    ASSERT_TRUE(fb.Fsync(*fd, true).ok());
    ASSERT_TRUE(fb.PWrite(*fd, new_data.data(), new_data.size(), 100).ok());
    PowerCutStats st = fb.SimulatePowerCut(PowerCutMode::kTear, seed + round);
    EXPECT_GT(st.sectors_kept, 0u);
    EXPECT_GT(st.sectors_rolled_back, 0u);
    Bytes want_new = old_data;
    std::copy(new_data.begin(), new_data.end(), want_new.begin() + 100);
    auto rfd = posix_.OpenAt(dir.fd(), "f", O_RDONLY, 0);
    ASSERT_TRUE(rfd.ok());
    Bytes got(old_data.size() + 1);
    auto n = posix_.PRead(*rfd, got.data(), got.size(), 0);
    ASSERT_TRUE(n.ok());
    ASSERT_EQ(*n, old_data.size());
    for (size_t s = 0; s < old_data.size(); s += 512) {
      Bytes sector = Slice(got, s, 512);
      EXPECT_TRUE(sector == Slice(old_data, s, 512) || sector == Slice(want_new, s, 512))
          << "sector " << s / 512 << " is neither old nor new (seed " << seed + round << ")";
    }
    (void)posix_.Close(*rfd);
  }
}

TEST_F(FaultBackingTest, TearOfRepeatedWritesGivesSomePrefixOfEachSectorsHistory) {
  int fd = Open("f");
  Bytes v0 = Pattern(16384, 1), v1 = Pattern(16384, 2), v2 = Pattern(16384, 3);
  Write(fd, v0, 0);
  Sync(fd);
  Write(fd, v1, 0);
  Write(fd, v2, 0);
  fb_.SimulatePowerCut(PowerCutMode::kTear, TestSeed("TearOfRepeatedWrites", 7));
  Bytes got = Contents("f");
  ASSERT_EQ(got.size(), v0.size());
  int seen[3] = {0, 0, 0};
  for (size_t s = 0; s < got.size(); s += 512) {
    Bytes sector = Slice(got, s, 512);
    int which = sector == Slice(v0, s, 512) ? 0 : sector == Slice(v1, s, 512) ? 1 : sector == Slice(v2, s, 512) ? 2 : -1;
    ASSERT_NE(which, -1) << "sector " << s / 512;
    ++seen[which];
  }
  EXPECT_GT(seen[0] + seen[1], 0);
  EXPECT_GT(seen[2], 0);
}

TEST_F(FaultBackingTest, TornExtendingWriteLeavesZerosOrNewPastOldEnd) {
  int fd = Open("f");
  Bytes a = Pattern(1000, 1), b = Pattern(8000, 2);
  Write(fd, a, 0);
  Sync(fd);
  Write(fd, b, 1000);
  PowerCutStats st = fb_.SimulatePowerCut(PowerCutMode::kTear, 3);
  Bytes got = Contents("f");
  if (st.sectors_kept == 0) {
    EXPECT_EQ(got, a);
    return;
  }
  ASSERT_EQ(got.size(), 9000u);
  EXPECT_EQ(Slice(got, 0, 1000), a);
  for (size_t s = 1024; s < 9000; s += 512) {
    size_t n = std::min<size_t>(512, 9000 - s);
    Bytes sector = Slice(got, s, n);
    EXPECT_TRUE(sector == Bytes(n, 0) || sector == Slice(b, s - 1000, n)) << "sector " << s / 512;
  }
}

TEST_F(FaultBackingTest, DropUndoesTruncatesPunchesAndOTrunc) {
  Bytes a = Pattern(20000, 1);
  for (int fd : {Open("shrink"), Open("grow"), Open("punch"), Open("otrunc")}) {
    Write(fd, a, 0);
    Sync(fd);
  }
  auto fd = fb_.OpenAt(dir_.fd(), "shrink", O_RDWR, 0);
  ASSERT_TRUE(fb_.Ftruncate(*fd, 100).ok());
  fd = fb_.OpenAt(dir_.fd(), "grow", O_RDWR, 0);
  ASSERT_TRUE(fb_.Ftruncate(*fd, 1 << 19).ok());
  fd = fb_.OpenAt(dir_.fd(), "punch", O_RDWR, 0);
  ASSERT_TRUE(fb_.Fallocate(*fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, 8192).ok());
  fd = fb_.OpenAt(dir_.fd(), "otrunc", O_RDWR | O_TRUNC, 0);
  ASSERT_TRUE(fd.ok());
  EXPECT_EQ(posix_.Fstat(*fd)->st_size, 0);
  PowerCutStats st = fb_.SimulatePowerCut(PowerCutMode::kDrop, 1);
  EXPECT_EQ(st.size_changes_undone, 4u);
  for (const char* name : {"shrink", "grow", "punch", "otrunc"}) EXPECT_EQ(Contents(name), a) << name;
}

TEST_F(FaultBackingTest, FsyncThroughAnyFdOrLinkOfTheFileMakesItDurable) {
  int fd1 = Open("f");
  int fd2 = Open("f", O_RDWR);
  ASSERT_TRUE(posix_.LinkAt(dir_.fd(), "f", dir_.fd(), "g", 0).ok());
  auto fd3 = fb_.OpenAt(dir_.fd(), "g", O_RDONLY, 0);
  ASSERT_TRUE(fd3.ok());
  int other = Open("other");
  Bytes a = Pattern(4096, 1), b = Pattern(4096, 2);
  Write(fd1, a, 0);
  Write(fd2, b, 4096);
  Write(other, a, 0);
  Sync(*fd3);
  EXPECT_EQ(fb_.unsynced_files(), 1u);  // only "other"
  fb_.SimulatePowerCut(PowerCutMode::kDrop, 1);
  Bytes want = a;
  want.insert(want.end(), b.begin(), b.end());
  EXPECT_EQ(Contents("f"), want);
  EXPECT_TRUE(Contents("other").empty());
}

TEST_F(FaultBackingTest, CutOfUnlinkedFileWithUnsyncedDataIsHarmless) {
  int fd = Open("f");
  Write(fd, Pattern(4096, 1), 0);
  ASSERT_TRUE(fb_.UnlinkAt(dir_.fd(), "f", 0).ok());
  PowerCutStats st = fb_.SimulatePowerCut(PowerCutMode::kTear, 1);
  EXPECT_EQ(st.files, 1u);
  EXPECT_EQ(posix_.FstatAt(dir_.fd(), "f", 0).status().code(), Code::kNotFound);
}

TEST_F(FaultBackingTest, AfterCutEveryCallFailsAndCloseStillReleasesFd) {
  int fd = Open("f");
  fb_.SimulatePowerCut(PowerCutMode::kKeep, 1);
  EXPECT_TRUE(fb_.powered_off());
  char c = 0;
  EXPECT_EQ(fb_.PWrite(fd, &c, 1, 0).sys_errno(), EIO);
  EXPECT_EQ(fb_.PRead(fd, &c, 1, 0).status().sys_errno(), EIO);
  EXPECT_EQ(fb_.OpenAt(dir_.fd(), "x", O_RDWR | O_CREAT, 0600).status().sys_errno(), EIO);
  EXPECT_EQ(fb_.Fsync(fd, false).sys_errno(), EIO);
  EXPECT_EQ(posix_.FstatAt(dir_.fd(), "x", 0).status().code(), Code::kNotFound);
  EXPECT_FALSE(fb_.Close(fd).ok());
  EXPECT_FALSE(FdIsOpen(fd));
}

TEST_F(FaultBackingTest, FailNthWriteFiresExactlyOnceAtN) {
  int fd = Open("f");
  fb_.ResetCounts();
  fb_.FailNth(OpKind::kWrite, 3);
  for (int i = 1; i <= 5; ++i) {
    Bytes d = Pattern(512, i);
    ASSERT_TRUE(fb_.Fsync(fd, true).ok());  // other kinds do not count
    Status s = fb_.PWrite(fd, d.data(), d.size(), off_t(i - 1) * 512);
    if (i == 3) {
      EXPECT_EQ(s.sys_errno(), EIO) << s.ToString();
      EXPECT_EQ(s.code(), Code::kIoError);
    } else {
      EXPECT_TRUE(s.ok()) << "write " << i << ": " << s.ToString();
    }
  }
  EXPECT_EQ(fb_.faults_injected(), 1u);
  EXPECT_EQ(fb_.calls(OpKind::kWrite), 5u);
  EXPECT_EQ(fb_.calls(OpKind::kFsync), 5u);
  Bytes got = Contents("f");
  ASSERT_EQ(got.size(), 2560u);
  EXPECT_EQ(Slice(got, 1024, 512), Bytes(512, 0));  // the failed write never reached the file
  EXPECT_EQ(Slice(got, 2048, 512), Pattern(512, 5));
}

TEST_F(FaultBackingTest, FsyncErrorCanDropUnsyncedPagesLikeLinux) {
  FaultOptions options;
  options.fsync_error_drops_unsynced = true;
  FaultBacking fb(&posix_, options);
  auto fd = fb.OpenAt(dir_.fd(), "f", O_RDWR | O_CREAT, 0600);
  ASSERT_TRUE(fd.ok());
  Bytes a = Pattern(4096, 1), b = Pattern(4096, 2);
  ASSERT_TRUE(fb.PWrite(*fd, a.data(), a.size(), 0).ok());
  ASSERT_TRUE(fb.Fsync(*fd, false).ok());
  ASSERT_TRUE(fb.PWrite(*fd, b.data(), b.size(), 0).ok());
  ASSERT_TRUE(fb.PWrite(*fd, b.data(), b.size(), 4096).ok());
  fb.FailNth(OpKind::kFsync, 1);
  EXPECT_EQ(fb.Fsync(*fd, true).sys_errno(), EIO);
  EXPECT_EQ(Contents("f"), a);  // the unsynced writes are gone at once
  EXPECT_TRUE(fb.Fsync(*fd, true).ok());  // and the next fsync "succeeds"
  EXPECT_EQ(fb.unsynced_files(), 0u);
}

TEST_F(FaultBackingTest, FailNthAnyWithThenAllFailIsADeadDisk) {
  int fd = Open("f");
  fb_.FailNth(OpKind::kAny, 2, ENOSPC, /*then_all_fail=*/true);
  char c = 1;
  EXPECT_TRUE(fb_.PWrite(fd, &c, 1, 0).ok());
  EXPECT_EQ(fb_.Fsync(fd, false).sys_errno(), ENOSPC);
  EXPECT_EQ(fb_.PRead(fd, &c, 1, 0).status().sys_errno(), ENOSPC);
  EXPECT_EQ(fb_.Ftruncate(fd, 0).sys_errno(), ENOSPC);
  EXPECT_FALSE(fb_.Close(fd).ok());
  EXPECT_FALSE(FdIsOpen(fd));
  EXPECT_EQ(fb_.faults_injected(), 4u);
  fb_.ClearFaults();
  EXPECT_TRUE(fb_.FstatAt(dir_.fd(), "f", 0).ok());
}

TEST_F(FaultBackingTest, FailNthMutationSkipsReads) {
  int fd = Open("f");
  fb_.FailNth(OpKind::kMutation, 2, EIO);
  char c = 1;
  EXPECT_TRUE(fb_.PWrite(fd, &c, 1, 0).ok());
  EXPECT_TRUE(fb_.PRead(fd, &c, 1, 0).ok());
  EXPECT_TRUE(fb_.Fstat(fd).ok());
  EXPECT_FALSE(fb_.RenameAt(dir_.fd(), "f", dir_.fd(), "g", 0).ok());
  EXPECT_TRUE(fb_.RenameAt(dir_.fd(), "f", dir_.fd(), "g", 0).ok());
}

TEST_F(FaultBackingTest, ArmedPowerCutHitsJustBeforeTheNthCall) {
  int fd = Open("f");
  fb_.ArmPowerCut(OpKind::kWrite, 3, PowerCutMode::kKeep, 1);
  Bytes a = Pattern(512, 1), b = Pattern(512, 2), c = Pattern(512, 3);
  Write(fd, a, 0);
  Write(fd, b, 512);
  EXPECT_EQ(fb_.PWrite(fd, c.data(), c.size(), 1024).sys_errno(), EIO);
  EXPECT_TRUE(fb_.powered_off());
  Bytes want = a;
  want.insert(want.end(), b.begin(), b.end());
  EXPECT_EQ(Contents("f"), want);
}

TEST_F(FaultBackingTest, CountsCallsPerKind) {
  int fd = Open("f");
  char c = 1;
  ASSERT_TRUE(fb_.PWrite(fd, &c, 1, 0).ok());
  ASSERT_TRUE(fb_.PRead(fd, &c, 1, 0).ok());
  ASSERT_TRUE(fb_.Fsync(fd, true).ok());
  ASSERT_TRUE(fb_.Ftruncate(fd, 10).ok());
  ASSERT_TRUE(fb_.Fallocate(fd, 0, 0, 4096).ok());
  ASSERT_TRUE(fb_.MkdirAt(dir_.fd(), "d", 0700).ok());
  ASSERT_TRUE(fb_.ListDir(dir_.fd()).ok());
  ASSERT_TRUE(fb_.Close(fd).ok());
  EXPECT_EQ(fb_.calls(OpKind::kOpen), 1u);
  EXPECT_EQ(fb_.calls(OpKind::kWrite), 1u);
  EXPECT_EQ(fb_.calls(OpKind::kRead), 1u);
  EXPECT_EQ(fb_.calls(OpKind::kFsync), 1u);
  EXPECT_EQ(fb_.calls(OpKind::kTruncate), 1u);
  EXPECT_EQ(fb_.calls(OpKind::kFallocate), 1u);
  EXPECT_EQ(fb_.calls(OpKind::kMkdir), 1u);
  EXPECT_EQ(fb_.calls(OpKind::kMetaRead), 1u);
  EXPECT_EQ(fb_.calls(OpKind::kClose), 1u);
  EXPECT_EQ(fb_.calls(OpKind::kMutation), 5u);
  EXPECT_EQ(fb_.calls(OpKind::kAny), 9u);
}

}  // namespace
}  // namespace cfs::test
