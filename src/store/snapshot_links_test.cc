// The O(1) snapshot pause (DataStore::BeginSnapshotLinks, SnapshotLinks):
// after the instant, every change to a chunk not linked into the snapshot
// yet (write, punch, truncate, delete, re-create) must leave the snapshot
// with the chunk as it was at the instant; chunks born after the instant
// never enter it. The snapshot here is what CreateCowVolume makes of a
// mounted volume: tree/ copied inside the barrier, objects/ filled after.
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "store/data_store.h"
#include "store/data_store_test_util.h"

namespace cfs::store {
namespace {

namespace fsys = std::filesystem;
using testing::RandomData;
using testing::ReadAll;
using testing::StoreFixture;
using testing::TestSeed;

class SnapshotLinksTest : public StoreFixture {
 protected:
  void TearDown() override {
    if (snap_objects_ >= 0) close(snap_objects_);
    StoreFixture::TearDown();
  }
  std::string Snap() const { return dir_ + "/snap"; }

  // The instant: writers held, tree/ copied, the data store told. With
  // `refresh`, the snapshot made before is brought to this instant.
  void BeginSnapshot(bool refresh = false) {
    store_->BeginWriteBarrier();
    fsys::remove_all(Snap() + "/tree");
    fsys::create_directories(Snap() + "/tree");
    for (const auto& e : fsys::directory_iterator(dir_ + "/tree")) {
      fsys::copy_file(e.path(), Snap() + "/tree/" + e.path().filename().string());
    }
    ASSERT_EQ(mkdir((Snap() + "/objects").c_str(), 0700) == 0, !refresh);
    snap_objects_ = open((Snap() + "/objects").c_str(), O_RDONLY | O_DIRECTORY);
    ASSERT_GE(snap_objects_, 0);
    Status s = store_->BeginSnapshotLinks(snap_objects_, refresh);
    store_->EndWriteBarrier();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  uint64_t FinishSnapshot() {
    Result<uint64_t> n = store_->FinishSnapshotLinks();
    EXPECT_TRUE(n.ok()) << n.status().ToString();
    close(snap_objects_);
    snap_objects_ = -1;
    return n.ok() ? *n : 0;
  }
  // The snapshot's contents of `name`, through a read-only data store.
  Bytes ReadSnapshot(const std::string& name) {
    int vfd = open(Snap().c_str(), O_RDONLY | O_DIRECTORY);
    EXPECT_GE(vfd, 0);
    DataStoreOptions o = options_;
    o.read_only = true;
    auto ds = DataStore::Open(&backing_, vfd, keys_.get(), o);
    EXPECT_TRUE(ds.ok()) << ds.status().ToString();
    Bytes out;
    int ifd = open((Snap() + "/tree/" + name).c_str(), O_RDONLY);
    EXPECT_GE(ifd, 0) << name;
    if (ds.ok() && ifd >= 0) {
      auto f = (*ds)->OpenFile(ifd);
      EXPECT_TRUE(f.ok()) << f.status().ToString();
      if (f.ok()) out = ReadAll(**f);
    }
    if (ifd >= 0) close(ifd);
    close(vfd);
    return out;
  }
  size_t SnapshotChunkFiles() const { return ChunkFiles(Snap() + "/objects"); }
  // Chunk files (all-digit names) under `objects`.
  static size_t ChunkFiles(const std::string& objects) {
    size_t n = 0;
    for (const auto& e : fsys::recursive_directory_iterator(objects)) {
      const std::string name = e.path().filename();
      n += e.is_regular_file() && name.find_first_not_of("0123456789") == std::string::npos;
    }
    return n;
  }
  size_t ChunkBytes() const { return size_t{options_.chunk_blocks} * kBlockSize; }
  // Chunk `c` of file `id` in the snapshot.
  std::string SnapChunk(const FileId& id, uint64_t c) const {
    return Snap() + "/objects/" + ChunkPath(id, c).substr(dir_.size() + 9);
  }
  static ino_t Inode(const std::string& path) {
    struct stat st {};
    return stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
  }

  int snap_objects_ = -1;
};
INSTANTIATE_TEST_SUITE_P(Encryption, SnapshotLinksTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "Encrypted" : "Plain"; });

TEST_P(SnapshotLinksTest, WriteBeforeChunkIsLinkedKeepsInstantContent) {
  std::mt19937_64 rng(TestSeed());
  auto f = NewFile("a");
  Bytes a = RandomData(rng, 3 * ChunkBytes());
  ASSERT_TRUE(f->Write(0, a).ok());
  BeginSnapshot();
  Bytes patch = RandomData(rng, 3 * kBlockSize);
  ASSERT_TRUE(f->Write(ChunkBytes() + 5000, patch).ok());  // chunk 1, not linked yet
  Bytes grow = RandomData(rng, 100);
  ASSERT_TRUE(f->Write(a.size(), grow).ok());  // chunk 3, born after the instant
  EXPECT_EQ(FinishSnapshot(), 3u);
  Bytes live = a;
  std::copy(patch.begin(), patch.end(), live.begin() + ChunkBytes() + 5000);
  live.insert(live.end(), grow.begin(), grow.end());
  EXPECT_EQ(ReadAll(*f), live);
  EXPECT_EQ(ReadSnapshot("a"), a);
  EXPECT_EQ(SnapshotChunkFiles(), 3u);
  EXPECT_FALSE(fsys::exists(Snap() + "/objects/" + ChunkPath(f->id(), 3).substr(dir_.size() + 9)));
  EXPECT_GE(store_->counters().cow_breaks.load(), 1u);
  // A write after the snapshot is complete still breaks the sharing.
  ASSERT_TRUE(f->Write(0, patch).ok());
  EXPECT_EQ(ReadSnapshot("a"), a);
}

TEST_P(SnapshotLinksTest, TruncateRegrowPunchAndDeleteKeepInstantContent) {
  std::mt19937_64 rng(TestSeed());
  auto a = NewFile("a");
  auto b = NewFile("b");
  auto c = NewFile("c");
  Bytes da = RandomData(rng, 2 * ChunkBytes() + 77), db = RandomData(rng, 2 * ChunkBytes()),
        dc = RandomData(rng, ChunkBytes() + 9);
  ASSERT_TRUE(a->Write(0, da).ok());
  ASSERT_TRUE(b->Write(0, db).ok());
  ASSERT_TRUE(c->Write(0, dc).ok());
  BeginSnapshot();
  // a: truncated to nothing (its chunk files deleted), then regrown: the new
  // chunk 0 must not be taken for the old one.
  ASSERT_TRUE(a->Truncate(0).ok());
  Bytes fresh = RandomData(rng, 5000);
  ASSERT_TRUE(a->Write(0, fresh).ok());
  // b: a hole punched through chunk 0.
  ASSERT_TRUE(b->Fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, ChunkBytes()).ok());
  // c: unlinked and its data deleted (the tree/ copy still names it).
  FileId cid = c->id();
  c.reset();
  ASSERT_TRUE(store_->DeleteFileData(cid).ok());
  FinishSnapshot();
  EXPECT_EQ(ReadAll(*a), fresh);
  EXPECT_EQ(ReadSnapshot("a"), da);
  EXPECT_EQ(ReadSnapshot("b"), db);
  EXPECT_EQ(ReadSnapshot("c"), dc);
  EXPECT_FALSE(fsys::exists(ChunkPath(cid, 0)));
  EXPECT_EQ(SnapshotChunkFiles(), 3u + 2u + 2u);
}

TEST_P(SnapshotLinksTest, SecondSnapshotWhileLinkingIsRefused) {
  auto f = NewFile("a");
  ASSERT_TRUE(f->Write(0, Bytes(ChunkBytes(), 7)).ok());
  BeginSnapshot();
  EXPECT_EQ(store_->BeginSnapshotLinks(snap_objects_).code(), Code::kFailedPrecondition);
  FinishSnapshot();
  EXPECT_EQ(store_->FinishSnapshotLinks().status().code(), Code::kFailedPrecondition);
  // Done: a write no longer preserves anything (and no descriptor is used).
  ASSERT_TRUE(f->Write(0, Bytes(kBlockSize, 9)).ok());
  EXPECT_EQ(ReadSnapshot("a"), Bytes(ChunkBytes(), 7));
}

// Writers on every chunk while the linker runs: the snapshot is exactly the
// instant, the live files exactly the writes (TSan: scripts/tsan). Then the
// same race against a refresh of that snapshot (replica shipping): most
// chunks were rewritten since its instant, the others are still shared.
TEST_P(SnapshotLinksTest, ConcurrentWritersRacingTheLinker) {
  const uint64_t seed = TestSeed();
  constexpr int kFiles = 6, kChunks = 8, kWrites = 60;
  std::mt19937_64 rng(seed);
  std::vector<std::shared_ptr<FileData>> files;
  std::vector<Bytes> live;
  for (int i = 0; i < kFiles; ++i) {
    files.push_back(NewFile("f" + std::to_string(i)));
    live.push_back(RandomData(rng, kChunks * ChunkBytes()));
    ASSERT_TRUE(files.back()->Write(0, live.back()).ok());
  }
  for (bool refresh : {false, true}) {
    SCOPED_TRACE(refresh ? "refreshing the snapshot" : "a new snapshot");
    const std::vector<Bytes> instant = live;
    // Before the refresh not every chunk exists: the truncate of the first
    // round dropped some that no write made again.
    const size_t chunk_files = ChunkFiles(dir_ + "/objects");
    BeginSnapshot(refresh);
    std::atomic<int> errors{0};
    std::vector<std::thread> writers;
    for (int i = 0; i < kFiles; ++i) {
      writers.emplace_back([&, i] {
        std::mt19937_64 r(seed * 31 + i + (refresh ? 1000 : 0));
        for (int w = 0; w < kWrites; ++w) {
          uint64_t off = r() % (live[i].size() - kBlockSize);
          Bytes d = RandomData(r, 1 + r() % kBlockSize);
          if (!files[i]->Write(off, d).ok()) ++errors;
          std::copy(d.begin(), d.end(), live[i].begin() + off);
          if (w == kWrites / 2 && i == 0) {  // a truncate and regrow meanwhile
            if (!files[i]->Truncate(ChunkBytes() + 1).ok() || !files[i]->Truncate(live[i].size()).ok()) ++errors;
            std::fill(live[i].begin() + ChunkBytes() + 1, live[i].end(), 0);
          }
        }
      });
    }
    uint64_t linked = FinishSnapshot();
    for (auto& t : writers) t.join();
    ASSERT_EQ(errors.load(), 0);
    // A refresh links anew only the chunks rewritten since the last instant.
    EXPECT_LE(linked, uint64_t{kFiles} * kChunks);
    if (!refresh) {
      EXPECT_EQ(linked, uint64_t{kFiles} * kChunks);
    }
    EXPECT_EQ(SnapshotChunkFiles(), chunk_files);
    for (int i = 0; i < kFiles; ++i) {
      EXPECT_EQ(ReadAll(*files[i]), live[i]) << "live file " << i;
      EXPECT_EQ(ReadSnapshot("f" + std::to_string(i)), instant[i]) << "snapshot of file " << i;
    }
  }
}

// Replica shipping refreshes its snapshot in place: a chunk unchanged since
// the last instant keeps its file (so a diff by inode finds it unchanged),
// a changed one is relinked, one gone at the new instant is removed, and
// changes after the new instant (before the linker is done) still leave
// the snapshot exactly at that instant.
TEST_P(SnapshotLinksTest, RefreshBringsAnEarlierSnapshotToTheNewInstant) {
  std::mt19937_64 rng(TestSeed());
  auto a = NewFile("a");
  auto b = NewFile("b");
  auto c = NewFile("c");
  auto e = NewFile("e");
  Bytes da = RandomData(rng, 3 * ChunkBytes()), db = RandomData(rng, 2 * ChunkBytes()),
        dc = RandomData(rng, ChunkBytes()), de = RandomData(rng, ChunkBytes());
  ASSERT_TRUE(a->Write(0, da).ok());
  ASSERT_TRUE(b->Write(0, db).ok());
  ASSERT_TRUE(c->Write(0, dc).ok());
  ASSERT_TRUE(e->Write(0, de).ok());
  BeginSnapshot();
  EXPECT_EQ(FinishSnapshot(), 3u + 2u + 1u + 1u);
  const ino_t a0 = Inode(SnapChunk(a->id(), 0)), a1 = Inode(SnapChunk(a->id(), 1));
  ASSERT_NE(a0, 0u);
  // Between the instants: a's chunk 1 rewritten, b cut to one chunk, c's
  // data deleted, d born; a stale relink leftover in the snapshot.
  Bytes patch = RandomData(rng, kBlockSize);
  ASSERT_TRUE(a->Write(ChunkBytes(), patch).ok());
  std::copy(patch.begin(), patch.end(), da.begin() + ChunkBytes());
  ASSERT_TRUE(b->Truncate(ChunkBytes()).ok());
  db.resize(ChunkBytes());
  FileId cid = c->id();
  c.reset();
  ASSERT_TRUE(store_->DeleteFileData(cid).ok());
  auto d = NewFile("d");
  Bytes dd = RandomData(rng, ChunkBytes() + 10);
  ASSERT_TRUE(d->Write(0, dd).ok());
  { std::ofstream(SnapChunk(a->id(), 2) + ".new") << "left over"; }
  BeginSnapshot(/*refresh=*/true);
  // After the new instant, before the linker: a's chunk 2 rewritten (to be
  // preserved as it was), b regrown (its chunk 1, absent at the instant,
  // must stay out), e deleted (kept as it was).
  ASSERT_TRUE(a->Write(2 * ChunkBytes() + 7, RandomData(rng, 100)).ok());
  ASSERT_TRUE(b->Write(ChunkBytes() + 3, RandomData(rng, 50)).ok());
  FileId eid = e->id();
  e.reset();
  ASSERT_TRUE(store_->DeleteFileData(eid).ok());
  // Linked anew: a's chunk 1 and d's two chunks (a's chunk 2 was shared,
  // so its write broke away and the snapshot kept its file).
  EXPECT_EQ(FinishSnapshot(), 1u + 2u);
  EXPECT_EQ(Inode(SnapChunk(a->id(), 0)), a0) << "an unchanged chunk keeps its file";
  EXPECT_NE(Inode(SnapChunk(a->id(), 1)), a1) << "a changed chunk is relinked";
  EXPECT_EQ(ReadSnapshot("a"), da);
  EXPECT_EQ(ReadSnapshot("b"), db);
  EXPECT_EQ(ReadSnapshot("d"), dd);
  EXPECT_EQ(ReadSnapshot("e"), de);
  EXPECT_FALSE(fsys::exists(SnapChunk(cid, 0))) << "a chunk gone at the instant is removed";
  EXPECT_FALSE(fsys::exists(SnapChunk(b->id(), 1))) << "a chunk born after the instant stays out";
  EXPECT_FALSE(fsys::exists(SnapChunk(a->id(), 2) + ".new"));
  EXPECT_EQ(SnapshotChunkFiles(), 3u + 1u + 2u + 1u);
}

}  // namespace
}  // namespace cfs::store
