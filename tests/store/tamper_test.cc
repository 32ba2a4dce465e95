// Tamper tests on a real volume: bytes of chunk files and inode files are
// changed directly on disk (docs/format/chunks.md layout), the volume is
// reopened, and the read must fail with kDataLoss / EIO, never return wrong
// bytes. Run on encrypted volumes (attacks) and, where the checksums apply,
// unencrypted ones (corruption). Bits are sampled across each structure.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/falloc.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "common/encoding.h"
#include "store_fixture.h"

namespace cfs::test {
namespace {

constexpr uint32_t kChunkBlocks = 16;
constexpr uint64_t kB = 4096;
constexpr uint64_t kFileBytes = 2ull * kChunkBlocks * kB;  // two full chunks

class TamperTest : public ::testing::TestWithParam<bool> {  // param: encrypted
 protected:
  void SetUp() override {
    vol_ = std::make_unique<StoreVolume>(GetParam(), kChunkBlocks);
    auto ds = vol_->Open(&posix_);
    ASSERT_TRUE(ds.ok()) << ds.status().ToString();
    for (int i = 0; i < 2; ++i) {
      auto f = vol_->CreateFile(&posix_, ds->get(), i);
      ASSERT_TRUE(f.ok()) << f.status().ToString();
      content_[i] = Pattern(kFileBytes, 10 + uint64_t(i));
      ASSERT_TRUE((*f)->Write(0, ByteView(content_[i].data(), content_[i].size())).ok());
      ASSERT_TRUE((*f)->Sync(false).ok());
      ids_[i] = (*f)->id();
    }
    ASSERT_TRUE((*ds)->CloseClean().ok());
  }

  // Block `block` of file `i` through a freshly opened store (clean volume).
  Result<Bytes> ReadBlock(int i, uint64_t block) {
    CFS_ASSIGN_OR_RETURN(auto ds, vol_->Open(&posix_));
    EXPECT_FALSE(ds->unclean()) << "tamper tests must run on a cleanly closed volume";
    Result<Bytes> out = ReadWith(ds.get(), i, block);
    CFS_RETURN_IF_ERROR(ds->CloseClean());
    return out;
  }
  Result<Bytes> ReadWith(store::DataStore* ds, int i, uint64_t block) {
    CFS_ASSIGN_OR_RETURN(auto f, vol_->OpenFile(&posix_, ds, i));
    Bytes out(kB);
    CFS_ASSIGN_OR_RETURN(size_t n, f->Read(block * kB, kB, out.data()));
    if (n != kB) return Internal("short read");
    return out;
  }
  Bytes Expected(int i, uint64_t block) const {
    return Bytes(content_[i].begin() + long(block * kB), content_[i].begin() + long((block + 1) * kB));
  }
  // EIO (kDataLoss), never bytes.
  ::testing::AssertionResult Eio(int i, uint64_t block) {
    auto r = ReadBlock(i, block);
    if (r.ok()) {
      return ::testing::AssertionFailure() << "f" << i << " block " << block << " read "
                                           << (*r == Expected(i, block) ? "its original bytes" : "WRONG bytes");
    }
    if (r.status().code() != Code::kDataLoss || r.status().sys_errno() != EIO) {
      return ::testing::AssertionFailure() << "f" << i << " block " << block << ": " << r.status().ToString()
                                           << " (want DataLoss/EIO)";
    }
    return ::testing::AssertionSuccess();
  }
  ::testing::AssertionResult Intact(int i, uint64_t block) {
    auto r = ReadBlock(i, block);
    if (!r.ok()) return ::testing::AssertionFailure() << "f" << i << " block " << block << ": " << r.status().ToString();
    if (*r != Expected(i, block)) return ::testing::AssertionFailure() << "f" << i << " block " << block << " changed";
    return ::testing::AssertionSuccess();
  }

  std::string Chunk(int i, uint64_t c) const { return vol_->ChunkPath(ids_[i], c); }
  static uint64_t DataOff(uint64_t b) { return FmtDataOffset(kChunkBlocks) + b * kB; }
  static uint64_t SlotOff(uint64_t b, int slot) { return kFmtTagTable + b * 2 * kFmtSlotSize + uint64_t(slot) * kFmtSlotSize; }
  // The slot holding the current tag of block b (the higher seq).
  int ActiveSlot(int i, uint64_t c, uint64_t b) const {
    Bytes pair = Range(Chunk(i, c), SlotOff(b, 0), 2 * kFmtSlotSize);
    return GetU64(pair.data() + kFmtSlotSize + 32) > GetU64(pair.data() + 32) ? 1 : 0;
  }
  static Bytes Range(const std::string& path, uint64_t off, uint64_t n) {
    Bytes all = ReadHostFile(path);
    return Bytes(all.begin() + long(off), all.begin() + long(off + n));
  }
  // Copies block b of chunk (i, c) -- its slot pair and data -- over block
  // b2 of chunk (j, c2).
  void CopyBlock(int i, uint64_t c, uint64_t b, int j, uint64_t c2, uint64_t b2) {
    PatchHostFile(Chunk(j, c2), SlotOff(b2, 0), Range(Chunk(i, c), SlotOff(b, 0), 2 * kFmtSlotSize));
    PatchHostFile(Chunk(j, c2), DataOff(b2), Range(Chunk(i, c), DataOff(b), kB));
  }

  store::PosixBacking posix_;
  std::unique_ptr<StoreVolume> vol_;
  Bytes content_[2];
  store::FileId ids_[2];
};

TEST_P(TamperTest, UntamperedVolumeReadsBack) {
  for (uint64_t b : {0ull, 5ull, 15ull, 16ull, 31ull}) EXPECT_TRUE(Intact(1, b));
}

TEST_P(TamperTest, ReadFailsWhenAnyBitOfADataBlockFlips) {
  const std::string chunk = Chunk(0, 0);
  const uint64_t base = DataOff(3) * 8;
  std::vector<uint64_t> bits = {0, 1, 7, 8, 255, 256, kB * 8 - 1};
  for (uint64_t bit = 13; bit < kB * 8; bit += 331) bits.push_back(bit);
  for (uint64_t bit : bits) {
    FlipHostBit(chunk, base + bit);
    EXPECT_TRUE(Eio(0, 3)) << "data bit " << bit;
    FlipHostBit(chunk, base + bit);
  }
  EXPECT_TRUE(Intact(0, 3));
  EXPECT_TRUE(Intact(0, 4));
}

TEST_P(TamperTest, ReadFailsWhenAnyAuthenticatedBitOfTheTagSlotFlips) {
  const std::string chunk = Chunk(0, 0);
  const int slot = ActiveSlot(0, 0, 3);
  const uint64_t base = SlotOff(3, slot) * 8;
  // Slot: nonce [0,12) tag [12,28) generation [28,32) seq [32,40).
  // Encrypted: nonce, tag and generation (the key) are authenticated; the
  // seq only orders the two slots. Unencrypted: tag and seq (the checksum
  // covers id, block, seq, data). Other bits may read the right bytes.
  auto authenticated = [&](uint64_t byte) {
    return GetParam() ? byte < 32 : (byte >= 12 && byte < 28) || (byte >= 32 && byte < 40);
  };
  for (uint64_t bit = 0; bit < 40 * 8; ++bit) {
    FlipHostBit(chunk, base + bit);
    if (authenticated(bit / 8)) {
      EXPECT_TRUE(Eio(0, 3)) << "slot bit " << bit;
    } else {
      auto r = ReadBlock(0, 3);
      EXPECT_TRUE(!r.ok() ? r.status().sys_errno() == EIO : *r == Expected(0, 3)) << "slot bit " << bit << ": wrong bytes";
    }
    FlipHostBit(chunk, base + bit);
  }
  EXPECT_TRUE(Intact(0, 3));
}

TEST_P(TamperTest, ReadFailsWhenBlockMovedToOtherPositionInSameChunk) {
  CopyBlock(0, 0, 2, 0, 0, 5);
  EXPECT_TRUE(Eio(0, 5));
  EXPECT_TRUE(Intact(0, 2));
}

TEST_P(TamperTest, ReadFailsWhenBlockMovedToSamePositionInOtherChunk) {
  CopyBlock(0, 0, 2, 0, 1, 2);
  EXPECT_TRUE(Eio(0, kChunkBlocks + 2));
}

TEST_P(TamperTest, ReadFailsWhenTwoBlocksAreSwapped) {
  Bytes chunk = ReadHostFile(Chunk(0, 0));
  CopyBlock(0, 0, 7, 0, 0, 1);
  PatchHostFile(Chunk(0, 0), SlotOff(7, 0), Bytes(chunk.begin() + long(SlotOff(1, 0)), chunk.begin() + long(SlotOff(2, 0))));
  PatchHostFile(Chunk(0, 0), DataOff(7), Bytes(chunk.begin() + long(DataOff(1)), chunk.begin() + long(DataOff(2))));
  EXPECT_TRUE(Eio(0, 1));
  EXPECT_TRUE(Eio(0, 7));
}

TEST_P(TamperTest, ReadFailsWhenBlockMovedToOtherFile) {
  CopyBlock(0, 0, 4, 1, 0, 4);
  EXPECT_TRUE(Eio(1, 4));
  EXPECT_TRUE(Intact(1, 3));
}

TEST_P(TamperTest, ReadFailsWhenChunkFileCopiedOverOtherFilesChunk) {
  WriteHostFile(Chunk(1, 0), ReadHostFile(Chunk(0, 0)));
  for (uint64_t b : {0ull, 9ull, 15ull}) EXPECT_TRUE(Eio(1, b));
  EXPECT_TRUE(Intact(1, 16));
}

TEST_P(TamperTest, ReadFailsWhenChunkFileCopiedToOtherIndex) {
  WriteHostFile(Chunk(0, 1), ReadHostFile(Chunk(0, 0)));
  for (uint64_t b : {16ull, 20ull, 31ull}) EXPECT_TRUE(Eio(0, b));
  EXPECT_TRUE(Intact(0, 0));
}

TEST_P(TamperTest, ReadFailsWhenWrittenBlockIsZeroed) {
  PatchHostFile(Chunk(0, 0), DataOff(6), Bytes(kB, 0));
  EXPECT_TRUE(Eio(0, 6));
}

TEST_P(TamperTest, ReadFailsWhenWrittenBlockIsPunchedOnTheHost) {
  int fd = open(Chunk(0, 0).c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off_t(DataOff(6)), off_t(kB)), 0);
  close(fd);
  EXPECT_TRUE(Eio(0, 6));
}

TEST_P(TamperTest, ReadFailsWhenTagSlotsOfWrittenBlockAreZeroed) {
  PatchHostFile(Chunk(0, 0), SlotOff(6, 0), Bytes(2 * kFmtSlotSize, 0));
  EXPECT_TRUE(Eio(0, 6));
  // Slots and data zeroed: a written block must not turn into a hole.
  PatchHostFile(Chunk(0, 0), DataOff(6), Bytes(kB, 0));
  EXPECT_TRUE(Eio(0, 6));
}

TEST_P(TamperTest, ReadFailsWhenChunkFileIsTruncated) {
  const Bytes original = ReadHostFile(Chunk(0, 0));
  const uint64_t d = FmtDataOffset(kChunkBlocks);
  for (uint64_t len : {uint64_t{100}, uint64_t{512}, uint64_t{4096}, SlotOff(4, 0) + 10, d, d + 5 * kB,
                       d + 5 * kB + 100, uint64_t(original.size()) - 1}) {
    ASSERT_EQ(truncate(Chunk(0, 0).c_str(), off_t(len)), 0);
    uint64_t first_cut = len < d ? 0 : (len - d) / kB;  // the first block with data cut off
    EXPECT_TRUE(Eio(0, first_cut)) << "truncated to " << len;
    EXPECT_TRUE(Eio(0, kChunkBlocks - 1)) << "truncated to " << len;
    if (first_cut > 0) {
      EXPECT_TRUE(Intact(0, first_cut - 1)) << "truncated to " << len;
    }
    WriteHostFile(Chunk(0, 0), original);
  }
  EXPECT_TRUE(Intact(0, 15));
}

// Known gap (docs/format/chunks.md section 2: "a missing chunk file, or one
// of length 0, holds only holes"): the whole chunk silently reads as zeros.
// Disabled so that it is reported, not counted as passing; see
// docs/crash-testing.md.
TEST_P(TamperTest, DISABLED_ReadFailsWhenChunkFileIsTruncatedToZero) {
  ASSERT_EQ(truncate(Chunk(0, 0).c_str(), 0), 0);
  EXPECT_TRUE(Eio(0, 3));
}

TEST_P(TamperTest, DISABLED_ReadFailsWhenChunkFileIsDeleted) {
  ASSERT_EQ(unlink(Chunk(0, 0).c_str()), 0);
  EXPECT_TRUE(Eio(0, 3));
}

TEST_P(TamperTest, ReadFailsWhenHeaderAllocationMapBitFlips) {
  for (uint64_t b : {3ull, 15ull}) {  // a written block's bit, then another
    uint64_t bit = kFmtHeaderMapOffset * 8 + b;
    FlipHostBit(Chunk(0, 0), bit);
    EXPECT_TRUE(Eio(0, 3)) << "map bit " << b;
    EXPECT_TRUE(Eio(0, 0)) << "map bit " << b;
    FlipHostBit(Chunk(0, 0), bit);
  }
  // A bit past chunk_blocks (must be zero) and a bit of the hole map of a
  // short chunk: set in chunk 1 of a file whose chunk 1 is full, so flip in
  // the unused tail of the map.
  FlipHostBit(Chunk(0, 1), kFmtHeaderMapOffset * 8 + kChunkBlocks + 1);
  EXPECT_TRUE(Eio(0, kChunkBlocks));
}

TEST_P(TamperTest, ReadFailsWhenAnyHeaderBitFlips) {
  for (uint64_t bit = 0; bit < (kFmtHeaderMacOffset + 32) * 8; bit += 37) {
    FlipHostBit(Chunk(0, 0), bit);
    EXPECT_TRUE(Eio(0, 1)) << "header bit " << bit;
    FlipHostBit(Chunk(0, 0), bit);
  }
  EXPECT_TRUE(Intact(0, 1));
}

TEST_P(TamperTest, OpenFailsWhenInodeSizeIsEditedOnDisk) {
  const std::string inode = vol_->InodePath(0);
  const Bytes original = ReadHostFile(inode);
  for (uint64_t size : {kFileBytes - 1, kFileBytes + kB, uint64_t{0}, kFileBytes * 2}) {
    Bytes edited = original;
    PutU64(edited.data() + kFmtInodeSizeOffset, size);
    WriteHostFile(inode, edited);
    auto r = ReadBlock(0, 0);
    EXPECT_FALSE(r.ok()) << "size edited to " << size;
    if (!r.ok()) {
      EXPECT_EQ(r.status().sys_errno(), EIO) << r.status().ToString();
    }
  }
  WriteHostFile(inode, original);
  EXPECT_TRUE(Intact(0, 0));
}

TEST_P(TamperTest, OpenFailsWhenInodeFileIsTruncated) {
  const std::string inode = vol_->InodePath(0);
  ASSERT_EQ(truncate(inode.c_str(), 79), 0);
  auto r = ReadBlock(0, 0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().sys_errno(), EIO);
}

// An attacker who tampers with a block and then fakes an unclean shutdown
// (dirty-log header destroyed) must not get it re-tagged: only chunks named
// by MACed log records are recovered, and a clean close left none.
TEST_P(TamperTest, ReadFailsWhenTamperingIsDisguisedAsUncleanShutdown) {
  PatchHostFile(Chunk(0, 0), DataOff(2) + 100, Bytes(16, 0x5a));
  PatchHostFile(vol_->path() + "/dirty.log", 0, Bytes(64, 0));
  {
    auto ds = vol_->Open(&posix_);
    ASSERT_TRUE(ds.ok()) << ds.status().ToString();
    EXPECT_TRUE((*ds)->unclean());
    auto repaired = (*ds)->RecoverTornBlocks();
    ASSERT_TRUE(repaired.ok()) << repaired.status().ToString();
    EXPECT_EQ(*repaired, 0u);
    ASSERT_TRUE((*ds)->CloseClean().ok());
  }
  EXPECT_TRUE(Eio(0, 2));
}

INSTANTIATE_TEST_SUITE_P(Store, TamperTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Encrypted" : "Plain"; });

}  // namespace
}  // namespace cfs::test
