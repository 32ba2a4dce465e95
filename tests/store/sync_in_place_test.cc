// A fully written chunk whose changes since its last full fdatasync only
// overwrote written blocks is made durable by Backing::SyncOverwrites
// (write-back and a disk flush, no metadata); anything that may allocate or
// free host blocks -- a first write of a block, growth, a punch, a
// copy-on-write break -- makes the next sync a full one, and a chunk still
// being filled always syncs in full. FaultBacking's model keeps hole
// fills unsynced across a SyncOverwrites, so a wrong choice loses data at
// the power cut below.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/falloc.h>
#include <unistd.h>

#include "fault_file_fixture.h"

namespace cfs::test {
namespace {

constexpr uint64_t kChunk = 16 * 4096;  // FaultFileTest's chunk

class SyncInPlaceTest : public FaultFileTest {
 protected:
  uint64_t InPlace() const { return ds_->counters().chunk_syncs_in_place.load(); }
  uint64_t Full() const { return ds_->counters().chunk_syncs_full.load(); }
  void WriteSync(uint64_t off, size_t len, uint8_t fill) {
    ASSERT_TRUE(f_->Write(off, Bytes(len, fill)).ok());
    ASSERT_TRUE(f_->Sync(true).ok());
  }
  void ExpectSyncKinds(uint64_t in_place, uint64_t full, const char* what) {
    EXPECT_EQ(InPlace(), in_place) << what;
    EXPECT_EQ(Full(), full) << what;
  }
  // One step of a scenario: a synced write, then the sync counts so far.
  void Step(uint64_t off, size_t len, uint8_t fill, uint64_t in_place, uint64_t full, const char* what) {
    WriteSync(off, len, fill);
    ExpectSyncKinds(in_place, full, what);
  }
};

TEST_P(SyncInPlaceTest, OverwritesOfAWrittenChunkSkipTheMetadata) {
  Step(0, kChunk, 0x11, 0, 1, "new blocks: full sync");
  Step(8192, 8192, 0x22, 1, 1, "an overwrite: in place");
  EXPECT_EQ(fb_.unsynced_files(), 0u) << "the overwrite is durable";
  Step(100, 10, 0x33, 2, 1, "a sub-block write (read-modify-write of a written block): in place");
  EXPECT_EQ(fb_.unsynced_files(), 0u);
}

TEST_P(SyncInPlaceTest, AChunkStillBeingFilledSyncsInFull) {
  WriteSync(0, 8192, 0x11);  // blocks 0-1; the rest of the chunk is host holes
  Step(0, 4096, 0x22, 0, 2, "an overwrite in a partly written chunk: full (a log's head)");
  Step(2 * 4096, kChunk - 2 * 4096, 0x33, 0, 3, "the rest of the chunk written");
  Step(9 * 4096, 4096, 0x44, 1, 3, "now an overwrite of a written chunk");
  EXPECT_EQ(fb_.unsynced_files(), 0u);
}

TEST_P(SyncInPlaceTest, APunchAndTheNextWriteOfThePunchedBlockSyncInFull) {
  WriteSync(0, kChunk, 0x11);
  ASSERT_TRUE(f_->Fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 5 * 4096, 4096).ok());
  ASSERT_TRUE(f_->Sync(true).ok());
  ExpectSyncKinds(0, 2, "a punch frees host blocks");
  Step(5 * 4096, 4096, 0x22, 0, 3, "the punched block written again");
  Step(5 * 4096, 4096, 0x33, 1, 3, "then an overwrite");
  EXPECT_EQ(fb_.unsynced_files(), 0u);
}

TEST_P(SyncInPlaceTest, AnInPlaceSyncSurvivesAPowerCut) {
  WriteSync(0, kChunk, 0x11);
  WriteSync(3 * 4096, 4096, 0x22);
  ASSERT_EQ(InPlace(), 1u);
  ASSERT_TRUE(f_->Write(6 * 4096, Bytes(4096, 0x33)).ok());  // never synced
  fb_.SimulatePowerCut(PowerCutMode::kDrop, 1);
  f_.reset();
  ds_.reset();
  auto ds = vol_->Open(&posix_);
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  auto f = vol_->OpenFile(&posix_, ds->get(), 0);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  Bytes got(kChunk);
  auto n = (*f)->Read(0, got.size(), got.data());
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  ASSERT_EQ(*n, kChunk);
  EXPECT_EQ(got[3 * 4096], 0x22) << "the in-place sync's block";
  EXPECT_EQ(got[6 * 4096], 0x11) << "the unsynced overwrite is gone: the old block";
  EXPECT_EQ(got[0], 0x11);
  f->reset();
  EXPECT_TRUE((*ds)->CloseClean().ok());
}

TEST_P(SyncInPlaceTest, ACopyOnWriteBreakMakesTheNextSyncFull) {
  WriteSync(0, kChunk, 0x11);
  ds_->BeginWriteBarrier();
  ASSERT_EQ(link(vol_->ChunkPath(f_->id(), 0).c_str(), (vol_->path() + "/snapchunk").c_str()), 0);
  ds_->BumpCowEpoch();
  ds_->EndWriteBarrier();
  WriteSync(0, 4096, 0x22);
  ASSERT_EQ(ds_->counters().cow_breaks.load(), 1u);
  ExpectSyncKinds(0, 2, "the copy's blocks are new allocations");
  Step(0, 4096, 0x33, 1, 2, "the copy, once synced, is overwritten in place");
}

INSTANTIATE_TEST_SUITE_P(Both, SyncInPlaceTest, ::testing::Bool(), EncryptedName);

// A backing that does not overwrite in place gets an fdatasync every time.
TEST(SyncInPlaceOffTest, ABackingThatSaysNoAlwaysFdatasyncs) {
  store::PosixBacking posix;
  FaultOptions no;
  no.overwrites_in_place = false;
  FaultBacking fb(&posix, no);
  StoreVolume vol(true, 16);
  auto ds = vol.Open(&fb);
  ASSERT_TRUE(ds.ok());
  auto f = vol.CreateFile(&fb, ds->get(), 0);
  ASSERT_TRUE(f.ok());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE((*f)->Write(0, Bytes(kChunk, uint8_t(i))).ok());
    ASSERT_TRUE((*f)->Sync(true).ok());
  }
  EXPECT_EQ((*ds)->counters().chunk_syncs_in_place.load(), 0u);
  EXPECT_EQ((*ds)->counters().chunk_syncs_full.load(), 3u);
  f->reset();
  EXPECT_TRUE((*ds)->CloseClean().ok());
}

}  // namespace
}  // namespace cfs::test
