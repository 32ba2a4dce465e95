// Torn rewrites whose tag slots were lost (docs/format/chunks.md 4.1): a
// power cut persisted sectors of one or more rewrites of a block, but the
// tag page of an older (or newer) state. Each sector must come back as a
// plain disk gives it: exactly the content of the write whose ciphertext
// it holds wherever a slot's fingerprint can vouch for it, and in
// particular every sector the unsynced rewrites did not change is its
// fsynced content.
#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <random>

#include "store/data_store.h"
#include "store/data_store_test_util.h"

namespace cfs::store {
namespace {

using testing::RandomData;
using testing::ReadAll;
using testing::StoreFixture;
using testing::TestSeed;

constexpr size_t kPair = 256;  // a block's two 128-byte slots (chunks.md 2.2)
constexpr size_t kSector = 512;
constexpr uint64_t kBlockOff = 4096;  // block 1 of the file (block 0 stays 0x11)

struct DiskState {
  Bytes pair;   // block 1's slot pair on disk
  Bytes data;   // its data block on disk
  Bytes plain;  // what the file held
};
using Sources = std::array<size_t, 8>;  // state each data sector comes from

Bytes Sector(const Bytes& b, size_t j) {
  return Bytes(b.begin() + long(j * kSector), b.begin() + long((j + 1) * kSector));
}

struct Rewrite {
  uint32_t off;
  Bytes bytes;
};

class LostSlotTest : public StoreFixture {
 protected:
  // Block 1 of "a" holds `synced` (fsynced; with `earlier_run`, by a run
  // that then closed cleanly), then each rewrite is written over it without
  // a sync and the power is cut. Returns the states (0: synced).
  std::vector<DiskState> Run(const Bytes& synced, const std::vector<Rewrite>& rewrites, bool earlier_run) {
    auto f = NewFile("a");
    EXPECT_TRUE(f->Write(0, Bytes(2 * 4096, 0x11)).ok());
    EXPECT_TRUE(f->Write(kBlockOff, synced).ok());
    EXPECT_TRUE(f->Sync(true).ok());
    path_ = ChunkPath(f->id(), 0);
    if (earlier_run) {
      f.reset();
      Reopen();
      f = OpenFile("a");
    }
    std::vector<DiskState> states;
    Bytes plain = synced;
    states.push_back(Snapshot(plain));
    for (const auto& r : rewrites) {
      EXPECT_TRUE(f->Write(kBlockOff + r.off, r.bytes).ok());
      std::copy(r.bytes.begin(), r.bytes.end(), plain.begin() + r.off);
      states.push_back(Snapshot(plain));
    }
    f.reset();
    Crash();
    return states;
  }
  DiskState Snapshot(const Bytes& plain) {
    return {ReadAt(path_, 4096 + kPair, kPair), ReadAt(path_, DataOffset() + kBlockOff, 4096), plain};
  }
  // The tag pair of states[tag], data sector j of states[src[j]]; reopens,
  // recovers and returns block 1 (block 0 must be intact).
  Bytes Compose(const std::vector<DiskState>& st, size_t tag, const Sources& src) {
    WriteAt(path_, 4096 + kPair, st[tag].pair);
    Bytes data(4096);
    for (size_t j = 0; j < 8; ++j) {
      std::copy_n(st[src[j]].data.begin() + long(j * kSector), kSector, data.begin() + long(j * kSector));
    }
    WriteAt(path_, DataOffset() + kBlockOff, data);
    OpenStore();
    EXPECT_TRUE(store_->unclean());
    auto r = store_->RecoverTornBlocks();
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    auto f = OpenFile("a");
    Bytes all = ReadAll(*f);
    if (all.size() != 2 * 4096) {
      ADD_FAILURE() << "file size " << all.size();
      return {};
    }
    EXPECT_EQ(Bytes(all.begin(), all.begin() + 4096), Bytes(4096, 0x11));
    return Bytes(all.begin() + 4096, all.end());
  }
  static Bytes PlainDisk(const std::vector<DiskState>& st, const Sources& src) {
    Bytes out;
    for (size_t j = 0; j < 8; ++j) {
      Bytes s = Sector(st[src[j]].plain, j);
      out.insert(out.end(), s.begin(), s.end());
    }
    return out;
  }
  // (e) Sectors no rewrite changed are the fsynced bytes, exactly.
  static void ExpectStableSectorsExact(const std::vector<DiskState>& st, const Bytes& got) {
    ASSERT_EQ(got.size(), 4096u);
    for (size_t j = 0; j < 8; ++j) {
      bool stable = true;
      for (const auto& s : st) stable = stable && Sector(s.plain, j) == Sector(st[0].plain, j);
      if (stable) {
        EXPECT_EQ(Sector(got, j), Sector(st[0].plain, j)) << "fsynced sector " << j << " lost";
      }
    }
  }

  std::string path_;
};
INSTANTIATE_TEST_SUITE_P(Encryption, LostSlotTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "Encrypted" : "Plain"; });

// A record appended into a block of fsynced records (the redo-log case).
std::vector<Rewrite> Append(uint32_t off, size_t n, uint8_t v) { return {{off, Bytes(n, v)}}; }

// (a) The whole data page of the rewrite landed, its slot did not.
TEST_P(LostSlotTest, DataNewTagOldGivesTheNewBlock) {
  std::mt19937_64 rng(1);
  for (bool earlier : {false, true}) {
    auto st = Run(RandomData(rng, 4096), Append(1000, 100, 0xBB), earlier);
    Bytes got = Compose(st, 0, {1, 1, 1, 1, 1, 1, 1, 1});
    EXPECT_EQ(got, st[1].plain) << "earlier run " << earlier;
    ExpectStableSectorsExact(st, got);
    TearDown();
    SetUp();
  }
}

// (b) Some sectors of the rewrite landed, its slot did not.
TEST_P(LostSlotTest, DataTornTagOldGivesEachSectorOldOrNew) {
  std::mt19937_64 rng(2);
  for (Sources src : {Sources{1, 0, 1, 0, 1, 1, 0, 1}, Sources{0, 1, 0, 0, 0, 0, 0, 0},
                      Sources{1, 1, 0, 1, 1, 1, 1, 1}}) {
    auto st = Run(RandomData(rng, 4096), Append(1000, 100, 0xBB), false);
    Bytes got = Compose(st, 0, src);
    EXPECT_EQ(got, PlainDisk(st, src));
    ExpectStableSectorsExact(st, got);
    TearDown();
    SetUp();
  }
}

// (c) The new slot landed, the data is torn.
TEST_P(LostSlotTest, DataTornTagNewGivesEachSectorOldOrNew) {
  std::mt19937_64 rng(3);
  auto st = Run(RandomData(rng, 4096), Append(3000, 1000, 0xCC), true);
  Sources src{0, 1, 0, 1, 0, 1, 0, 1};
  Bytes got = Compose(st, 1, src);
  EXPECT_EQ(got, PlainDisk(st, src));
  ExpectStableSectorsExact(st, got);
}

// (d) Two rewrites between fsyncs, the tag page of any of the three states.
TEST_P(LostSlotTest, TwoRewritesBetweenFsyncs) {
  std::mt19937_64 rng(4);
  const std::vector<Rewrite> two = {{1100, Bytes(50, 0xD1)}, {2600, Bytes(60, 0xD2)}};
  struct Case {
    size_t tag;
    Sources src;
    bool exact;  // every sector some slot can vouch for
  };
  for (const Case& c : {Case{0, {2, 2, 2, 2, 2, 2, 2, 2}, true}, Case{2, {0, 0, 0, 0, 0, 0, 0, 0}, true},
                        Case{0, {1, 1, 1, 1, 1, 1, 1, 1}, true}, Case{1, {2, 0, 2, 0, 2, 0, 2, 0}, true},
                        Case{2, {0, 1, 0, 1, 0, 1, 0, 1}, true}, Case{0, {2, 1, 2, 0, 1, 2, 0, 1}, false}}) {
    for (bool earlier : {false, true}) {
      auto st = Run(RandomData(rng, 4096), two, earlier);
      Bytes got = Compose(st, c.tag, c.src);
      if (c.exact || !encrypted()) {
        EXPECT_EQ(got, PlainDisk(st, c.src)) << "tag " << c.tag << " earlier " << earlier;
      }
      ExpectStableSectorsExact(st, got);
      TearDown();
      SetUp();
    }
  }
}

// (e) Random rewrites, tag state and sector sources: the fsynced sectors
// always come back exactly; sectors a slot's fingerprint vouches for (the
// sector's content equals a slot version's) are exact too.
TEST_P(LostSlotTest, RandomTearsKeepFsyncedSectors) {
  const uint64_t seed = TestSeed();
  std::mt19937_64 rng(seed);
  for (int round = 0; round < 40; ++round) {
    const size_t n = 1 + rng() % 4;
    std::vector<Rewrite> rw;
    for (size_t i = 0; i < n; ++i) {
      uint32_t off = uint32_t(rng() % 4000);
      rw.push_back({off, RandomData(rng, 1 + rng() % std::min<size_t>(600, 4096 - off))});
    }
    auto st = Run(RandomData(rng, 4096), rw, rng() % 2);
    const size_t tag = rng() % (n + 1);
    Sources src;
    for (auto& s : src) s = rng() % (n + 1);
    Bytes got = Compose(st, tag, src);
    ExpectStableSectorsExact(st, got);
    Bytes slot_version[2] = {st[tag].plain, tag ? st[tag - 1].plain : Bytes(4096, 0x11)};
    for (size_t j = 0; j < 8 && got.size() == 4096; ++j) {
      Bytes want = Sector(st[src[j]].plain, j);
      if (encrypted() && want != Sector(slot_version[0], j) && want != Sector(slot_version[1], j)) continue;
      EXPECT_EQ(Sector(got, j), want) << "round " << round << " sector " << j << " tag " << tag;
    }
    if (HasFailure()) {
      ADD_FAILURE() << "CIPHERFS_SEED=" << seed << " round " << round;
      return;
    }
    TearDown();
    SetUp();
  }
}

}  // namespace
}  // namespace cfs::store
