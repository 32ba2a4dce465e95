// (f) Derived block nonces never repeat under one chunk key (docs/format/
// chunks.md 2.4): every write's nonce is recorded from the tag table, per
// (file id, chunk, generation), across rewrites, punches, a chunk deleted
// and recreated, clean reopens, a crash and its recovery, a copy-on-write
// break, a byte copy of the volume written by another run (a restored
// clone shares the data key, file ids and chunk keys), and a chunk file
// rolled back to an older copy of itself.
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <set>

#include "store/chunk_format.h"
#include "store/data_store.h"
#include "store/data_store_test_util.h"

namespace cfs::store {
namespace {

using testing::ReadAll;
using testing::StoreFixture;

constexpr size_t kSlot = 128, kPair = 256;

class NonceTest : public StoreFixture {
 protected:
  // Records the nonce of the newest slot of block `b` of chunk file `path`
  // (file id `id`, chunk 0); fails if that key already used it.
  void Record(const FileId& id, const std::string& path, uint32_t b, const std::string& what) {
    Bytes pair = ReadAt(path, 4096 + uint64_t{b} * kPair, kPair);
    int k = GetU64(pair.data() + kSlot + 32) > GetU64(pair.data() + 32) ? 1 : 0;
    const uint8_t* s = pair.data() + k * kSlot;
    uint32_t gen = GetU32(s + 28);
    std::string nonce(reinterpret_cast<const char*>(s), 12);
    auto& used = nonces_[{HexEncode(id), gen}];
    EXPECT_TRUE(used.insert(nonce).second) << "nonce reused under one chunk key: " << what << ", block " << b;
    ++recorded_;
  }
  // Writes blocks 0..3 of `f` `times` times each, recording every nonce.
  void WriteAndRecord(FileData& f, const std::string& path, int times, const std::string& what) {
    for (int i = 0; i < times; ++i) {
      for (uint32_t b = 0; b < 4; ++b) {
        ASSERT_TRUE(f.Write(uint64_t{b} * 4096 + uint64_t(i) * 7, Bytes(100, uint8_t(i + b))).ok());
        Record(f.id(), path, b, what);
      }
    }
  }

  std::map<std::pair<std::string, uint32_t>, std::set<std::string>> nonces_;
  size_t recorded_ = 0;
};
INSTANTIATE_TEST_SUITE_P(Encryption, NonceTest, ::testing::Values(true));

TEST_P(NonceTest, NoNonceRepeatsUnderOneChunkKey) {
  auto f = NewFile("a");
  const FileId id = f->id();
  const std::string path = ChunkPath(id, 0);
  WriteAndRecord(*f, path, 5, "rewrites");
  // Punch: the slots are cleared, the write counter is kept.
  ASSERT_TRUE(f->Fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4 * 4096).ok());
  WriteAndRecord(*f, path, 2, "after a punch");
  ASSERT_TRUE(f->Sync(true).ok());
  const Bytes old_chunk = ReadAt(path, 0, DataOffset() + 4 * 4096);
  // Clean reopen: a new run.
  f.reset();
  Reopen();
  f = OpenFile("a");
  WriteAndRecord(*f, path, 2, "after a clean reopen");
  // Truncated away and recreated (a new chunk file, a new chunk salt).
  ASSERT_TRUE(f->Truncate(0).ok());
  WriteAndRecord(*f, path, 2, "recreated chunk");
  ASSERT_TRUE(f->Sync(true).ok());
  // A crash and its recovery (a torn block re-tagged), then more writes.
  ASSERT_TRUE(f->Write(0, Bytes(4096, 0x5A)).ok());
  Record(id, path, 0, "before the crash");
  f.reset();
  Crash();
  WriteAt(path, DataOffset() + 512, Bytes(512, 0xEE));  // block 0 torn
  OpenStore();
  auto r = store_->RecoverTornBlocks();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, 1u);
  Record(id, path, 0, "recovery re-tag");
  f = OpenFile("a");
  WriteAndRecord(*f, path, 2, "after recovery");
  // Copy-on-write break: a snapshot's hard link, then writes.
  ASSERT_TRUE(f->Sync(true).ok());
  const std::string snap = dir_ + "/snapchunk";
  store_->BeginWriteBarrier();
  ASSERT_EQ(link(path.c_str(), snap.c_str()), 0);
  store_->BumpCowEpoch();
  store_->EndWriteBarrier();
  WriteAndRecord(*f, path, 2, "after a copy-on-write break");
  EXPECT_GE(store_->counters().cow_breaks.load(), 1u);
  ASSERT_TRUE(f->Sync(true).ok());
  // A byte copy of the volume (a restored clone: same keys, same file ids),
  // written by another run while this one goes on writing.
  const std::string clone = dir_ + "-clone";
  f.reset();
  files_.clear();
  ASSERT_TRUE(store_->CloseClean().ok());
  store_.reset();
  std::filesystem::copy(dir_, clone, std::filesystem::copy_options::recursive);
  OpenStore();
  f = OpenFile("a");
  {
    int cfd = open(clone.c_str(), O_RDONLY | O_DIRECTORY);
    ASSERT_GE(cfd, 0);
    PosixBacking cb;
    auto cs = DataStore::Open(&cb, cfd, keys_.get(), options_);
    ASSERT_TRUE(cs.ok()) << cs.status().ToString();
    int ifd = open((clone + "/tree/a").c_str(), O_RDWR);
    auto cf = (*cs)->OpenFile(ifd);
    ASSERT_TRUE(cf.ok()) << cf.status().ToString();
    WriteAndRecord(**cf, ChunkPath(id, 0).replace(0, dir_.size(), clone), 3, "clone");
    cf->reset();
    ASSERT_TRUE((*cs)->CloseClean().ok());
    close(ifd);
    close(cfd);
  }
  std::filesystem::remove_all(clone);
  WriteAndRecord(*f, path, 3, "original after the clone");
  // A chunk file rolled back to an older copy of itself, then written.
  f.reset();
  Reopen();
  std::filesystem::remove(snap);
  WriteAt(path, 0, old_chunk);
  f = OpenFile("a");
  WriteAndRecord(*f, path, 2, "after a rollback of the chunk file");
  EXPECT_GE(recorded_, 90u);
}

// The derivation itself: distinct (salts, block, counter) give distinct
// nonces; the counter's low 32 bits and the block index are in the nonce.
TEST(DeriveNonceTest, FieldsSeparateNonces) {
  std::set<crypto::Nonce> seen;
  for (uint64_t run : {1ull, 2ull, 0x1234567890ull})
    for (uint64_t chunk : {0x100ull, 0x200ull})
      for (uint32_t b : {0u, 1u, 2047u})
        for (uint64_t v : {1ull, 2ull, 0xFFFFFFFFull}) {
          EXPECT_TRUE(seen.insert(format::DeriveNonce(run, chunk, b, v)).second);
        }
  // Only the XOR of the two salts matters (documented): (1,6) == (7,0).
  EXPECT_EQ(format::DeriveNonce(1, 6, 3, 9), format::DeriveNonce(7, 0, 3, 9));
}

}  // namespace
}  // namespace cfs::store
