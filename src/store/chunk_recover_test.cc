// Recovery of a torn in-place rewrite: sectors the rewrite did not change
// come back intact when a slot's tag authenticates their old/new mix; a mix
// no tag authenticates is a torn page (re-tagged, never EIO).
#include <fcntl.h>
#include <unistd.h>

#include "store/data_store.h"
#include "store/data_store_test_util.h"

namespace cfs::store {
namespace {

using testing::ReadAll;
using testing::StoreFixture;

class TornRewriteTest : public StoreFixture {
 protected:
  // Block 0 of file "a" holds `before` (synced), then `after` is written
  // over it at `off` and the power is cut: the data page on disk keeps the
  // old ciphertext in the sectors of `old_sectors` (bit j = sector j), the
  // new one elsewhere. Returns the file's content after recovery.
  Bytes TearRewrite(const Bytes& before, uint64_t off, const Bytes& after, uint32_t old_sectors) {
    auto f = NewFile("a");
    EXPECT_TRUE(f->Write(0, before).ok());
    EXPECT_TRUE(f->Sync(true).ok());
    const std::string path = ChunkPath(f->id(), 0);
    Bytes old_data = ReadAt(path, DataOffset(), 4096);
    EXPECT_TRUE(f->Write(off, after).ok());
    Bytes torn = ReadAt(path, DataOffset(), 4096);
    f.reset();
    Crash();
    for (uint32_t j = 0; j < 8; ++j) {
      if (old_sectors >> j & 1) std::copy_n(old_data.begin() + j * 512, 512, torn.begin() + j * 512);
    }
    WriteAt(path, DataOffset(), torn);
    OpenStore();
    EXPECT_TRUE(store_->unclean());
    auto r = store_->RecoverTornBlocks();
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    f = OpenFile("a");
    return ReadAll(*f);
  }
};
INSTANTIATE_TEST_SUITE_P(Encryption, TornRewriteTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "Encrypted" : "Plain"; });

Bytes Concat(const Bytes& a, const Bytes& b) {
  Bytes out = a;
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

// The last sector rewritten and persisted, the others still old on disk:
// the new block, and the fsynced sectors intact (the redo-log tail case).
TEST_P(TornRewriteTest, ChangedSectorNewOthersOldGivesNewBlock) {
  Bytes got = TearRewrite(Bytes(4096, 0xAA), 3584, Bytes(512, 0xBB), 0x7F);
  EXPECT_EQ(got, Concat(Bytes(3584, 0xAA), Bytes(512, 0xBB)));
  EXPECT_EQ(store_->counters().torn_blocks_repaired.load(), encrypted() ? 1u : 0u);
}

// The changed sector rolled back, some unchanged ones persisted new: the old block.
TEST_P(TornRewriteTest, ChangedSectorOldGivesOldBlock) {
  Bytes got = TearRewrite(Bytes(4096, 0xAA), 3584, Bytes(512, 0xBB), 0x80 | 0x05);
  EXPECT_EQ(got, Bytes(4096, 0xAA));
}

// Two changed sectors torn apart: no tag authenticates the mix, but each
// sector's fingerprint names its write: each sector old or new, as on a
// plain disk (re-tagged, readable, not EIO).
TEST_P(TornRewriteTest, ChangedSectorsTornGiveEachSectorOldOrNew) {
  Bytes got = TearRewrite(Bytes(4096, 0xAA), 2048, Bytes(2048, 0xBB), 0x10);
  EXPECT_EQ(got, Concat(Bytes(2560, 0xAA), Bytes(1536, 0xBB)));
  EXPECT_EQ(store_->counters().torn_blocks_repaired.load(), 1u);  // plain: the data matches no slot's tag either
}

}  // namespace
}  // namespace cfs::store
