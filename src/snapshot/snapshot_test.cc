// Snapshot, clone and delete of unmounted volumes: contents equal, the
// copy-on-write break isolates the copy, chunk link counts, nothing left
// behind by a failed create.
#include "snapshot/snapshot.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <random>

#include "crypto/random.h"
#include "store/data_store.h"
#include "store/volume.h"
#include "store/volume_keys.h"

namespace cfs::snapshot {
namespace {

namespace fsys = std::filesystem;

uint64_t Seed() {
  const char* env = std::getenv("CIPHERFS_SEED");
  uint64_t seed = env ? std::strtoull(env, nullptr, 10) : std::random_device{}();
  std::printf("seed: CIPHERFS_SEED=%llu\n", static_cast<unsigned long long>(seed));
  return seed;
}

// An open volume: its data store and helpers to write/read files by the
// host name of their inode file directly under tree/.
class OpenVolume {
 public:
  OpenVolume(store::Backing* b, const std::string& dir, const store::VolumeKeys* keys) : dir_(dir) {
    fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
    store::DataStoreOptions o;
    o.chunk_blocks = 16;
    auto s = store::DataStore::Open(b, fd_, keys, o);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    if (s.ok()) store_ = std::move(s).value();
  }
  ~OpenVolume() {
    if (store_) {
      EXPECT_TRUE(store_->CloseClean().ok());
    }
    store_.reset();
    ::close(fd_);
  }
  store::DataStore* store() { return store_.get(); }

  void Write(const std::string& name, uint64_t off, const Bytes& data) {
    std::string path = dir_ + "/tree/" + name;
    bool fresh = !fsys::exists(path);
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT, 0600);
    ASSERT_GE(fd, 0);
    if (fresh) {
      ASSERT_TRUE(store_->InitInodeFile(fd).ok());
    }
    auto f = store_->OpenFile(fd);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    auto w = (*f)->Write(off, ByteView(data.data(), data.size()));
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    ASSERT_TRUE((*f)->Sync(false).ok());
    ::close(fd);
  }
  Bytes Read(const std::string& name) {
    int fd = ::open((dir_ + "/tree/" + name).c_str(), O_RDONLY);
    EXPECT_GE(fd, 0);
    auto f = store_->OpenFile(fd);
    EXPECT_TRUE(f.ok()) << f.status().ToString();
    Bytes out((*f)->size());
    auto r = (*f)->Read(0, out.size(), out.data());
    EXPECT_TRUE(r.ok());
    ::close(fd);
    return out;
  }

 private:
  std::string dir_;
  int fd_ = -1;
  std::unique_ptr<store::DataStore> store_;
};

Bytes RandomBytes(std::mt19937_64& rng, size_t n) {
  Bytes b(n);
  for (auto& c : b) c = static_cast<uint8_t>(rng());
  return b;
}

class SnapshotTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    std::string tmpl = (fsys::temp_directory_path() / "cfs-snap-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    ASSERT_EQ(::mkdir((root_ + "/clusters").c_str(), 0700), 0);
    ASSERT_EQ(::mkdir((root_ + "/snapshots").c_str(), 0700), 0);
    src_ = root_ + "/clusters/src";
    ASSERT_EQ(::mkdir(src_.c_str(), 0700), 0);
    SecretBytes key = crypto::RandomSecret(32);
    store::VolumeOptions vo;
    vo.chunk_blocks = 16;
    ASSERT_TRUE(store::CreateVolumeLayout(&backing_, src_, GetParam() ? &key : nullptr, vo).ok());
    if (GetParam()) keys_ = std::move(store::VolumeKeys::Derive(std::move(key))).value();
  }
  void TearDown() override { fsys::remove_all(root_); }

  config::VolumeDescriptor Snap(const std::string& id) {
    config::VolumeDescriptor d;
    d.kind = config::VolumeKind::kSnapshot;
    d.id = id;
    d.region = "r1";
    d.arn = "arn:cipherfs:rds:r1:123456789012:cluster-snapshot:" + id;
    d.created_at = config::NowRfc3339();
    d.lineage.push_back({kRelManualSnapshot, "arn:cipherfs:rds:r1:123456789012:cluster:src", d.created_at});
    return d;
  }
  static nlink_t Links(const std::string& path) {
    struct stat st;
    EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
    return st.st_nlink;
  }
  static size_t CountEntries(const std::string& dir) {
    size_t n = 0;
    for (auto it = fsys::directory_iterator(dir); it != fsys::directory_iterator(); ++it) ++n;
    return n;
  }

  store::PosixBacking backing_;
  std::string root_, src_;
  std::unique_ptr<store::VolumeKeys> keys_;
};

TEST_P(SnapshotTest, SnapshotHasSourceContentsAndSharesChunks) {
  std::mt19937_64 rng(Seed());
  Bytes a = RandomBytes(rng, 200000), b = RandomBytes(rng, 5000);
  {
    OpenVolume v(&backing_, src_, keys_.get());
    v.Write("a", 0, a);
    v.Write("b", 0, b);
  }
  ASSERT_EQ(::link((src_ + "/tree/a").c_str(), (src_ + "/tree/a2").c_str()), 0);
  ASSERT_EQ(::symlink("target", (src_ + "/tree/sl").c_str()), 0);
  ASSERT_EQ(::mkdir((src_ + "/tree/d").c_str(), 0750), 0);
  CreateResult r;
  ASSERT_TRUE(CreateCowVolume(&backing_, src_, root_ + "/snapshots", Snap("s1"), nullptr, &r).ok());
  std::string snap = root_ + "/snapshots/s1";
  EXPECT_GT(r.stats.chunks_linked, 3u);
  auto d = config::ReadVolumeDescriptor(snap);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->kind, config::VolumeKind::kSnapshot);
  EXPECT_EQ(DataKeyContextArn(*d), "arn:cipherfs:rds:r1:123456789012:cluster:src");
  EXPECT_EQ(Links(snap + "/tree/a"), 2u);  // a and a2: still one inode file in the snapshot
  struct stat st1, st2;
  ASSERT_EQ(::stat((snap + "/tree/a").c_str(), &st1), 0);
  ASSERT_EQ(::stat((snap + "/tree/a2").c_str(), &st2), 0);
  EXPECT_EQ(st1.st_ino, st2.st_ino);
  EXPECT_EQ(fsys::read_symlink(snap + "/tree/sl"), "target");
  EXPECT_EQ(fsys::status(snap + "/tree/d").permissions() & fsys::perms::all, fsys::perms(0750));
  auto usage = MeasureUsage(snap);
  ASSERT_TRUE(usage.ok());
  EXPECT_EQ(usage->exclusive_bytes, 0u);
  EXPECT_GT(usage->shared_bytes, 200000u);
  OpenVolume s(&backing_, snap, keys_.get());
  EXPECT_EQ(s.Read("a"), a);
  EXPECT_EQ(s.Read("a2"), a);
  EXPECT_EQ(s.Read("b"), b);
}

TEST_P(SnapshotTest, WritingTheSourceAfterSnapshotLeavesSnapshotUnchanged) {
  std::mt19937_64 rng(Seed());
  Bytes a = RandomBytes(rng, 100000);
  OpenVolume v(&backing_, src_, keys_.get());
  v.Write("a", 0, a);
  v.store()->BeginWriteBarrier();
  ASSERT_TRUE(CreateCowVolume(&backing_, src_, root_ + "/snapshots", Snap("s1"), nullptr, nullptr).ok());
  v.store()->BumpCowEpoch();
  v.store()->EndWriteBarrier();
  Bytes patch = RandomBytes(rng, 9000);
  v.Write("a", 1000, patch);
  Bytes expect_live = a;
  std::copy(patch.begin(), patch.end(), expect_live.begin() + 1000);
  EXPECT_EQ(v.Read("a"), expect_live);
  EXPECT_GE(v.store()->counters().cow_breaks.load(), 1u);
  OpenVolume s(&backing_, root_ + "/snapshots/s1", keys_.get());
  EXPECT_EQ(s.Read("a"), a);
  // A clone of the snapshot is isolated from the snapshot in the same way.
  config::VolumeDescriptor c = Snap("c1");
  c.kind = config::VolumeKind::kCluster;
  c.arn = "arn:cipherfs:rds:r1:123456789012:cluster:c1";
  c.lineage = {{kRelRestored, "arn:cipherfs:rds:r1:123456789012:cluster-snapshot:s1", c.created_at}};
  ASSERT_TRUE(CreateCowVolume(&backing_, root_ + "/snapshots/s1", root_ + "/clusters", c, nullptr, nullptr).ok());
  {
    OpenVolume cv(&backing_, root_ + "/clusters/c1", keys_.get());
    cv.Write("a", 0, patch);
  }
  EXPECT_EQ(s.Read("a"), a);
}

// A snapshot of a mounted volume with the O(1) pause: only tree/ is copied
// while writers are held; writes that land after the pause but before the
// chunks are linked (done here from `thaw`, the earliest moment) must not
// reach the snapshot, nor a file created after it.
TEST_P(SnapshotTest, LiveSnapshotLinksChunksAfterThePause) {
  std::mt19937_64 rng(Seed());
  Bytes a = RandomBytes(rng, 200000), b = RandomBytes(rng, 70000);
  OpenVolume v(&backing_, src_, keys_.get());
  v.Write("a", 0, a);
  v.Write("b", 0, b);
  Bytes patch = RandomBytes(rng, 150000);
  LiveHooks hooks;
  hooks.data = v.store();
  hooks.freeze = [&] { v.store()->BeginWriteBarrier(); };
  hooks.thaw = [&] {
    v.store()->EndWriteBarrier();
    v.Write("a", 30000, patch);  // chunks 0-2 of a, none linked yet
    v.Write("b", 70000, patch);  // b grows: chunk 1 was there, chunks 2-3 are new
    v.Write("new", 0, patch);    // not in the snapshot's tree/
  };
  CreateResult r;
  Status s = CreateCowVolume(&backing_, src_, root_ + "/snapshots", Snap("s1"), &hooks, &r);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(r.stats.chunks_linked, 4u + 2u);  // 200000 and 70000 bytes in 64 KiB chunks
  const std::string snap = root_ + "/snapshots/s1";
  EXPECT_FALSE(fsys::exists(snap + "/tree/new"));
  size_t files = 0;
  for (const auto& e : fsys::recursive_directory_iterator(snap + "/objects")) files += e.is_regular_file();
  EXPECT_EQ(files, 6u);
  Bytes live_a = a, live_b = b;
  std::copy(patch.begin(), patch.end(), live_a.begin() + 30000);
  live_b.insert(live_b.end(), patch.begin(), patch.end());
  EXPECT_EQ(v.Read("a"), live_a);
  EXPECT_EQ(v.Read("b"), live_b);
  OpenVolume sv(&backing_, snap, keys_.get());
  EXPECT_EQ(sv.Read("a"), a);
  EXPECT_EQ(sv.Read("b"), b);
}

// Replica shipping refreshes a snapshot instead of making a new one: the
// refreshed snapshot holds the new instant (tree/ too), keeps the files of
// chunks unchanged since its last instant and leaves no staging folder.
TEST_P(SnapshotTest, RefreshBringsTheSnapshotToTheNewInstant) {
  std::mt19937_64 rng(Seed());
  Bytes a = RandomBytes(rng, 200000), b = RandomBytes(rng, 70000), patch = RandomBytes(rng, 5000);
  OpenVolume v(&backing_, src_, keys_.get());
  v.Write("a", 0, a);
  v.Write("b", 0, b);
  LiveHooks hooks;
  hooks.data = v.store();
  hooks.freeze = [&] { v.store()->BeginWriteBarrier(); };
  hooks.thaw = [&] { v.store()->EndWriteBarrier(); };
  // Without the snapshot, a refresh makes it.
  Status s = RefreshCowVolume(&backing_, src_, root_ + "/snapshots", Snap("s1"), hooks, nullptr);
  ASSERT_TRUE(s.ok()) << s.ToString();
  const std::string snap = root_ + "/snapshots/s1";
  auto inodes = [&] {
    std::map<std::string, ino_t> m;
    for (const auto& e : fsys::recursive_directory_iterator(snap + "/objects")) {
      struct stat st {};
      if (e.is_regular_file() && ::stat(e.path().c_str(), &st) == 0) {
        m[e.path().string().substr(snap.size())] = st.st_ino;
      }
    }
    return m;
  };
  const auto before = inodes();
  ASSERT_EQ(before.size(), 4u + 2u);
  struct stat tree_a {};
  ASSERT_EQ(::stat((snap + "/tree/a").c_str(), &tree_a), 0);
  v.Write("a", 70000, patch);  // chunk 1 of a (64 KiB chunks)
  v.Write("c", 0, patch);      // a new file
  ASSERT_EQ(::unlink((src_ + "/tree/b").c_str()), 0);
  // An attribute the source no longer has must not survive in the reused entry.
  ASSERT_EQ(::setxattr((snap + "/tree/a").c_str(), "user.stale", "x", 1, 0), 0);
  CreateResult r;
  s = RefreshCowVolume(&backing_, src_, root_ + "/snapshots", Snap("s1"), hooks, &r);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(r.stats.chunks_linked, 1u + 1u);  // a's chunk 1, c's chunk 0
  const auto after = inodes();
  EXPECT_EQ(after.size(), 4u + 2u + 1u);  // b's chunks stay: its data was never deleted through the store
  size_t same = 0;
  for (const auto& [rel, ino] : after) same += before.contains(rel) && before.at(rel) == ino;
  EXPECT_EQ(same, 4u + 2u - 1u);
  Bytes live_a = a;
  std::copy(patch.begin(), patch.end(), live_a.begin() + 70000);
  OpenVolume sv(&backing_, snap, keys_.get());
  EXPECT_EQ(sv.Read("a"), live_a);
  EXPECT_EQ(sv.Read("c"), patch);
  EXPECT_FALSE(fsys::exists(snap + "/tree/b"));
  struct stat tree_a_now {};
  ASSERT_EQ(::stat((snap + "/tree/a").c_str(), &tree_a_now), 0);
  EXPECT_EQ(tree_a_now.st_ino, tree_a.st_ino) << "an unchanged tree entry is kept, not made anew";
  EXPECT_LT(::getxattr((snap + "/tree/a").c_str(), "user.stale", nullptr, 0), 0);
  for (const auto& e : fsys::directory_iterator(root_ + "/snapshots")) {
    EXPECT_EQ(e.path().filename(), "s1") << "a staging folder was left";
  }
}

// tree/ of a live snapshot is copied before the pause and caught up inside
// it: changes made between the two (here in `freeze`, just before the
// barrier closes) must be in the snapshot, as they were at the instant.
TEST_P(SnapshotTest, LiveSnapshotTreeCatchesUpWithChangesBeforeThePause) {
  std::mt19937_64 rng(Seed());
  Bytes a = RandomBytes(rng, 100000), b = RandomBytes(rng, 70000), c = RandomBytes(rng, 5000);
  Bytes extra = RandomBytes(rng, 30000), f = RandomBytes(rng, 3000);
  OpenVolume v(&backing_, src_, keys_.get());
  const std::string tree = src_ + "/tree/";
  v.Write("a", 0, a);
  v.Write("b", 0, b);
  v.Write("c", 0, c);
  ASSERT_EQ(::mkdir((tree + "d").c_str(), 0700), 0);
  v.Write("d/e", 0, c);
  bool hard_link = false;
  LiveHooks hooks;
  hooks.data = v.store();
  hooks.freeze = [&] {
    v.Write("b", b.size(), extra);  // the inode file's size changes
    ASSERT_EQ(::rename((tree + "c").c_str(), (tree + "c2").c_str()), 0);
    ASSERT_EQ(::unlink((tree + "d/e").c_str()), 0);
    v.Write("d/f", 0, f);
    ASSERT_EQ(::chmod((tree + "a").c_str(), 0640), 0);
    ASSERT_EQ(::symlink("a", (tree + "l").c_str()), 0);
    if (hard_link) {
      ASSERT_EQ(::link((tree + "a").c_str(), (tree + "a2").c_str()), 0);
    }
    v.store()->BeginWriteBarrier();
  };
  hooks.thaw = [&] { v.store()->EndWriteBarrier(); };
  for (int round = 0; round < 2; ++round) {  // the second with a new hard link: the tree copied in the pause
    hard_link = round == 1;
    const std::string id = "s" + std::to_string(round);
    Status s = CreateCowVolume(&backing_, src_, root_ + "/snapshots", Snap(id), &hooks, nullptr);
    ASSERT_TRUE(s.ok()) << s.ToString();
    const std::string snap = root_ + "/snapshots/" + id + "/tree/";
    OpenVolume sv(&backing_, root_ + "/snapshots/" + id, keys_.get());
    Bytes want_b = b;
    want_b.insert(want_b.end(), extra.begin(), extra.end());
    EXPECT_EQ(sv.Read("b"), want_b);
    EXPECT_EQ(sv.Read("c2"), c);
    EXPECT_EQ(sv.Read("d/f"), f);
    EXPECT_FALSE(fsys::exists(snap + "c"));
    EXPECT_FALSE(fsys::exists(snap + "d/e"));
    EXPECT_EQ(fsys::status(snap + "a").permissions() & fsys::perms::all, fsys::perms(0640));
    EXPECT_EQ(fsys::read_symlink(snap + "l"), "a");
    EXPECT_EQ(sv.Read("a"), a);
    if (hard_link) {
      EXPECT_EQ(Links(snap + "a"), 2u);
      EXPECT_EQ(sv.Read("a2"), a);
    }
    // Back to the first state for the next round.
    ASSERT_EQ(::rename((tree + "c2").c_str(), (tree + "c").c_str()), 0);
    ASSERT_EQ(::unlink((tree + "d/f").c_str()), 0);
    v.Write("d/e", 0, c);
    ASSERT_EQ(::unlink((tree + "l").c_str()), 0);
    ASSERT_EQ(::unlink((tree + "b").c_str()), 0);
    v.Write("b", 0, b);
  }
}

TEST_P(SnapshotTest, DeleteKeepsChunksOfOtherVolumes) {
  std::mt19937_64 rng(Seed());
  Bytes a = RandomBytes(rng, 70000);
  {
    OpenVolume v(&backing_, src_, keys_.get());
    v.Write("a", 0, a);
  }
  ASSERT_TRUE(CreateCowVolume(&backing_, src_, root_ + "/snapshots", Snap("s1"), nullptr, nullptr).ok());
  ASSERT_TRUE(CreateCowVolume(&backing_, src_, root_ + "/snapshots", Snap("s2"), nullptr, nullptr).ok());
  auto u = MeasureUsage(src_);
  ASSERT_TRUE(u.ok());
  for (const auto& e : fsys::recursive_directory_iterator(src_ + "/objects")) {
    if (e.is_regular_file()) {
      EXPECT_EQ(Links(e.path()), 3u) << e.path();
    }
  }
  EXPECT_EQ(CreateCowVolume(&backing_, src_, root_ + "/snapshots", Snap("s1"), nullptr, nullptr).code(),
            Code::kAlreadyExists);
  ASSERT_TRUE(DeleteVolume(root_ + "/snapshots", "s1").ok());
  EXPECT_EQ(DeleteVolume(root_ + "/snapshots", "s1").code(), Code::kNotFound);
  for (const auto& e : fsys::recursive_directory_iterator(src_ + "/objects")) {
    if (e.is_regular_file()) {
      EXPECT_EQ(Links(e.path()), 2u) << e.path();
    }
  }
  ASSERT_TRUE(DeleteVolume(root_ + "/snapshots", "s2").ok());
  EXPECT_EQ(CountEntries(root_ + "/snapshots"), 0u);
  OpenVolume v(&backing_, src_, keys_.get());
  EXPECT_EQ(v.Read("a"), a);
}

TEST_P(SnapshotTest, FailedCreateLeavesNothing) {
  {
    OpenVolume v(&backing_, src_, keys_.get());
    v.Write("a", 0, Bytes(10000, 7));
  }
  // The source has no objects/ folder any more: the copy fails midway.
  ASSERT_EQ(::rename((src_ + "/objects").c_str(), (root_ + "/objects.away").c_str()), 0);
  EXPECT_FALSE(CreateCowVolume(&backing_, src_, root_ + "/snapshots", Snap("s1"), nullptr, nullptr).ok());
  EXPECT_EQ(CountEntries(root_ + "/snapshots"), 0u);
}

TEST_P(SnapshotTest, StaleStagingOfDeadProcessIsCleaned) {
  ASSERT_EQ(::mkdir((root_ + "/snapshots/.tmp-x-999999999-0000abcd").c_str(), 0700), 0);
  std::string mine = root_ + "/snapshots/.tmp-y-" + std::to_string(::getpid()) + "-0000abcd";
  ASSERT_EQ(::mkdir(mine.c_str(), 0700), 0);
  CleanStaleStaging(root_ + "/snapshots");
  EXPECT_FALSE(fsys::exists(root_ + "/snapshots/.tmp-x-999999999-0000abcd"));
  EXPECT_TRUE(fsys::exists(mine));
}

INSTANTIATE_TEST_SUITE_P(Encryption, SnapshotTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Encrypted" : "Plain"; });

}  // namespace
}  // namespace cfs::snapshot
