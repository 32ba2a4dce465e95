// Crash behaviour: the two-slot order, unclean detection, torn-block
// recovery of logged chunks (and EIO outside the log), header rebuild,
// generation rollover, copy-on-write breaks, dirty-log group commit and
// compaction.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <thread>

#include "store/data_store.h"
#include "store/data_store_test_util.h"

namespace cfs::store {
namespace {

using testing::RandomData;
using testing::ReadAll;
using testing::StoreFixture;

class RecoveryTest : public StoreFixture {
 protected:
  uint64_t SlotsOff(uint32_t b) const { return 4096 + uint64_t{b} * kPair; }
  static constexpr size_t kSlot = 128, kPair = 2 * kSlot;  // chunks.md 2.2
  uint64_t DataOff(uint32_t b) const { return DataOffset() + uint64_t{b} * 4096; }
};
INSTANTIATE_TEST_SUITE_P(Encryption, RecoveryTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "Encrypted" : "Plain"; });

TEST_P(RecoveryTest, UncleanAfterCrashCleanAfterCloseClean) {
  EXPECT_FALSE(store_->unclean());
  auto f = NewFile("a");
  ASSERT_TRUE(f->Write(0, Bytes(100, 1)).ok());
  Crash();
  OpenStore();
  EXPECT_TRUE(store_->unclean());
  auto r = store_->RecoverTornBlocks();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, 0u);
  Reopen();
  EXPECT_FALSE(store_->unclean());
}

// Killed after the new slot was written but before the data: the old slot
// still matches the old data, so the old block reads back without recovery.
TEST_P(RecoveryTest, SlotWithoutDataReadsOldBlock) {
  auto f = NewFile("a");
  ASSERT_TRUE(f->Write(0, Bytes(4096, 0xAA)).ok());
  std::string path = ChunkPath(f->id(), 0);
  Bytes old_data = ReadAt(path, DataOff(0), 4096);
  ASSERT_TRUE(f->Write(0, Bytes(4096, 0xBB)).ok());
  Crash();
  WriteAt(path, DataOff(0), old_data);  // the data write never happened
  OpenStore();
  f = OpenFile("a");
  EXPECT_EQ(ReadAll(*f), Bytes(4096, 0xAA));
}

// Data written but its slot lost (power cut persisted only the data page):
// no slot verifies. In a logged chunk after an unclean shutdown the block is
// re-tagged (a torn page, not EIO); everywhere else it is EIO.
TEST_P(RecoveryTest, DataWithoutSlotIsRetaggedOnlyInLoggedChunks) {
  auto f = NewFile("a");
  auto g = NewFile("b");
  ASSERT_TRUE(f->Write(0, Bytes(2 * 4096, 0xAA)).ok());
  ASSERT_TRUE(g->Write(0, Bytes(2 * 4096, 0xAA)).ok());
  const std::string fpath = ChunkPath(f->id(), 0), gpath = ChunkPath(g->id(), 0);
  Reopen();  // clean: nothing logged
  f = OpenFile("a");
  g = OpenFile("b");
  Bytes f_slots = ReadAt(fpath, SlotsOff(1), kPair), g_slots = ReadAt(gpath, SlotsOff(1), kPair);
  ASSERT_TRUE(f->Write(4096, Bytes(4096, 0xBB)).ok());  // f's chunk 0 gets logged
  ASSERT_TRUE(g->Write(4096, Bytes(4096, 0xBB)).ok());
  ASSERT_TRUE(g->Sync(true).ok());
  Crash();
  WriteAt(fpath, SlotsOff(1), f_slots);  // the slot write was lost
  OpenStore();
  ASSERT_TRUE(store_->unclean());
  auto r = store_->RecoverTornBlocks();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, 1u);
  EXPECT_EQ(store_->counters().torn_blocks_repaired.load(), 1u);
  f = OpenFile("a");
  Bytes got = ReadAll(*f);
  ASSERT_EQ(got.size(), 2 * 4096u);
  EXPECT_EQ(Bytes(got.begin(), got.begin() + 4096), Bytes(4096, 0xAA));
  if (!encrypted()) {
    EXPECT_EQ(Bytes(got.begin() + 4096, got.end()), Bytes(4096, 0xBB));
  }
  // The same damage in a chunk that is not in the log stays EIO.
  Reopen();
  g = OpenFile("b");
  WriteAt(gpath, SlotsOff(1), g_slots);
  Reopen();
  g = OpenFile("b");
  Bytes buf(4096);
  auto n = g->Read(4096, 4096, buf.data());
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().sys_errno(), EIO);
}

TEST_P(RecoveryTest, NeverWrittenSlotsBecomeHoleAndBadHeaderIsRebuilt) {
  auto f = NewFile("a");
  ASSERT_TRUE(f->Write(0, Bytes(3 * 4096, 0x5C)).ok());
  std::string path = ChunkPath(f->id(), 0);
  Crash();
  WriteAt(path, SlotsOff(2), Bytes(kPair, 0));  // block 2: map says written, no slot
  WriteAt(path, 100, Bytes(1, 0xFF));        // header MAC fails
  OpenStore();
  ASSERT_TRUE(store_->unclean());
  auto r = store_->RecoverTornBlocks();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, 0u);
  f = OpenFile("a");
  Bytes want(3 * 4096, 0x5C);
  std::fill(want.begin() + 2 * 4096, want.end(), 0);
  EXPECT_EQ(ReadAll(*f), want);
  EXPECT_EQ(f->AllocatedBytes(), 2 * 4096u);
}

TEST_P(RecoveryTest, BadHeaderOutsideLogIsEio) {
  auto f = NewFile("a");
  ASSERT_TRUE(f->Write(0, Bytes(4096, 0x5C)).ok());
  std::string path = ChunkPath(f->id(), 0);
  Reopen();
  WriteAt(path, 100, Bytes(1, 0xFF));
  f = OpenFile("a");
  Bytes buf(4096);
  auto n = f->Read(0, 4096, buf.data());
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().sys_errno(), EIO);
}

TEST_P(RecoveryTest, GenerationRolloverKeepsOldBlocksReadable) {
  files_.clear();
  store_.reset();
  options_.generation_shift = 2;  // a new key generation every 4 block writes
  OpenStore();
  auto f = NewFile("a");
  ASSERT_TRUE(f->Write(0, Bytes(4096, 0x01)).ok());  // block 0: seq 1, generation 0
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(f->Write(4096, Bytes(4096, uint8_t(i))).ok());
  std::string path = ChunkPath(f->id(), 0);
  Bytes slots = ReadAt(path, SlotsOff(1), kPair);
  uint64_t seq0 = GetU64(slots.data() + 32), seq1 = GetU64(slots.data() + kSlot + 32);
  uint64_t newest = std::max(seq0, seq1);
  EXPECT_EQ(newest, 41u);
  uint32_t gen = GetU32(slots.data() + (seq1 > seq0 ? kSlot : 0) + 28);
  EXPECT_EQ(gen, newest >> 2);
  Reopen();
  f = OpenFile("a");
  Bytes want(2 * 4096, 0x01);
  std::fill(want.begin() + 4096, want.end(), 39);
  EXPECT_EQ(ReadAll(*f), want);
  // The counter resumes from the tag table after a reopen.
  ASSERT_TRUE(f->Write(0, Bytes(4096, 0x02)).ok());
  Bytes s0 = ReadAt(path, SlotsOff(0), kPair);
  EXPECT_EQ(std::max(GetU64(s0.data() + 32), GetU64(s0.data() + kSlot + 32)), 42u);
}

TEST_P(RecoveryTest, CopyOnWriteBreakLeavesSnapshotLinkUnchanged) {
  auto f = NewFile("a");
  ASSERT_TRUE(f->Write(0, Bytes(2 * 4096, 0x11)).ok());
  ASSERT_TRUE(f->Sync(true).ok());
  std::string path = ChunkPath(f->id(), 0), snap = dir_ + "/snapchunk";
  store_->BeginWriteBarrier();
  ASSERT_EQ(link(path.c_str(), snap.c_str()), 0);
  store_->BumpCowEpoch();
  store_->EndWriteBarrier();
  Bytes before = ReadAt(snap, 0, DataOffset() + 2 * 4096);
  ASSERT_TRUE(f->Write(100, Bytes(10, 0x22)).ok());
  EXPECT_EQ(store_->counters().cow_breaks.load(), 1u);
  EXPECT_EQ(ReadAt(snap, 0, DataOffset() + 2 * 4096), before);
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_nlink, 1u);
  ASSERT_TRUE(f->Write(200, Bytes(10, 0x33)).ok());
  EXPECT_EQ(store_->counters().cow_breaks.load(), 1u);
  Bytes want(2 * 4096, 0x11);
  std::fill(want.begin() + 100, want.begin() + 110, 0x22);
  std::fill(want.begin() + 200, want.begin() + 210, 0x33);
  EXPECT_EQ(ReadAll(*f), want);
}

TEST_P(RecoveryTest, WriteBarrierBlocksWriters) {
  auto f = NewFile("a");
  store_->BeginWriteBarrier();
  std::atomic<bool> done{false};
  std::thread w([&] {
    EXPECT_TRUE(f->Write(0, Bytes(10, 1)).ok());
    done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(done.load());
  store_->EndWriteBarrier();
  w.join();
  EXPECT_TRUE(done.load());
}

TEST_P(RecoveryTest, SequentialWriterCommitsLogOncePerWindow) {
  auto f = NewFile("a");
  Bytes chunk(16 * 4096, 7);
  for (int c = 0; c < 16; ++c) ASSERT_TRUE(f->Write(uint64_t(c) * chunk.size(), chunk).ok());
  EXPECT_EQ(store_->counters().dirty_log_commits.load(), 1u);
  ASSERT_TRUE(f->Write(16 * chunk.size(), chunk).ok());
  EXPECT_EQ(store_->counters().dirty_log_commits.load(), 2u);
}

TEST_P(RecoveryTest, ConcurrentWritersShareLogCommits) {
  auto f = NewFile("a");
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 8; ++i) {  // 64 distinct windows
        uint64_t chunk = uint64_t(i * 8 + t) * 16;
        EXPECT_TRUE(f->Write(chunk * 16 * 4096, Bytes(4096, 1)).ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  uint64_t commits = store_->counters().dirty_log_commits.load();
  EXPECT_GE(commits, 1u);
  EXPECT_LE(commits, 64u);
  std::printf("64 log records in %llu commits\n", static_cast<unsigned long long>(commits));
}

TEST_P(RecoveryTest, CompactionKeepsOnlyDirtyChunks) {
  files_.clear();
  store_.reset();
  options_.dirty_log_compact_records = 4;
  OpenStore();
  auto f = NewFile("a");
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(f->Write(uint64_t(i) * 16 * 16 * 4096, Bytes(4096, 1)).ok());
  ASSERT_TRUE(f->Sync(true).ok());  // all clean: compaction drops everything
  struct stat st;
  ASSERT_EQ(stat((dir_ + "/dirty.log").c_str(), &st), 0);
  EXPECT_LE(st.st_size, 4096);  // header only
  // A chunk written after the compaction is logged again: after a crash
  // that lost its slot write, recovery makes the never-tagged block a hole
  // (outside the log it would be EIO: the map says written).
  std::string path = ChunkPath(f->id(), 0);
  ASSERT_TRUE(f->Write(4096, Bytes(4096, 2)).ok());
  ASSERT_EQ(stat((dir_ + "/dirty.log").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 4096 + 64);
  Crash();
  WriteAt(path, SlotsOff(1), Bytes(kPair, 0));
  OpenStore();
  auto r = store_->RecoverTornBlocks();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, 0u);
  f = OpenFile("a");
  Bytes buf(4096, 0xFF);
  auto n = f->Read(4096, 4096, buf.data());
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(buf, Bytes(4096, 0));
}

}  // namespace
}  // namespace cfs::store
