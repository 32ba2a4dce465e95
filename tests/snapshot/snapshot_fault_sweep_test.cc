// Fault-injection sweeps (FaultBacking fails the Nth backing call, once or
// for good) over the steps after snapshot creation (which
// snapshot_fault_test.cc sweeps): the copy-on-write break of the live
// volume's first write after a snapshot, a restore (copy-on-write and
// encrypting), and snapshot delete. After each failure: either nothing or a
// whole object, the source intact, no chunk lost (link counts add up).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "crypto/random.h"
#include "snapshot/snapshot.h"
#include "snapshot/volume_delete.h"
#include "snapshot/volume_transcode.h"
#include "store/data_store.h"
#include "store/volume.h"
#include "support/fault_backing.h"

namespace cfs::snapshot {
namespace {

namespace fsys = std::filesystem;
constexpr uint32_t kChunkBlocks = 16;

Result<std::unique_ptr<store::DataStore>> OpenStore(store::Backing* b, int vfd, const store::VolumeKeys* keys,
                                                    bool ro) {
  store::DataStoreOptions o;
  o.chunk_blocks = kChunkBlocks;
  o.read_only = ro;
  return store::DataStore::Open(b, vfd, keys, o);
}

Status WriteAt(store::Backing* b, const std::string& vol, const store::VolumeKeys* keys, const std::string& name,
               uint64_t off, const Bytes& data, bool create) {
  int vfd = ::open(vol.c_str(), O_RDONLY | O_DIRECTORY);
  Status s = [&]() -> Status {
    CFS_ASSIGN_OR_RETURN(auto ds, OpenStore(b, vfd, keys, false));
    int fd = ::open((vol + "/tree/" + name).c_str(), O_RDWR | (create ? O_CREAT : 0), 0600);
    Status w = [&]() -> Status {
      if (create) CFS_RETURN_IF_ERROR(ds->InitInodeFile(fd));
      CFS_ASSIGN_OR_RETURN(auto f, ds->OpenFile(fd));
      CFS_RETURN_IF_ERROR(f->Write(off, ByteView(data.data(), data.size())).status());
      return f->Sync(false);
    }();
    ::close(fd);
    Status c = ds->CloseClean();
    return w.ok() ? c : w;
  }();
  ::close(vfd);
  return s;
}

Result<Bytes> ReadAll(store::Backing* b, const std::string& vol, const store::VolumeKeys* keys,
                      const std::string& name) {
  int vfd = ::open(vol.c_str(), O_RDONLY | O_DIRECTORY);
  Bytes out;
  Status s = [&]() -> Status {
    CFS_ASSIGN_OR_RETURN(auto ds, OpenStore(b, vfd, keys, true));
    int fd = ::open((vol + "/tree/" + name).c_str(), O_RDONLY);
    auto f = ds->OpenFile(fd);
    ::close(fd);
    CFS_RETURN_IF_ERROR(f.status());
    out.resize((*f)->size());
    return (*f)->Read(0, out.size(), out.data()).status();
  }();
  ::close(vfd);
  CFS_RETURN_IF_ERROR(s);
  return out;
}

Bytes Pattern(size_t n, int seed) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(i * 31 + seed);
  return b;
}

size_t Entries(const std::string& dir) {
  size_t n = 0;
  for (auto it = fsys::directory_iterator(dir); it != fsys::directory_iterator(); ++it) ++n;
  return n;
}

// Chunk files (not <n>.cow leftovers) and the sum of their link counts.
std::pair<size_t, size_t> ChunkLinks(const std::string& vol) {
  size_t files = 0, links = 0;
  for (const auto& e : fsys::recursive_directory_iterator(vol + "/objects")) {
    if (!e.is_regular_file() || e.path().filename().string().find('.') != std::string::npos) continue;
    if (e.path().parent_path().filename() == "objects") continue;  // the dirty-chunk log and such
    ++files;
    links += fsys::hard_link_count(e.path());
  }
  return {files, links};
}

class SweepTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    std::string tmpl = (fsys::temp_directory_path() / "cfs-snapsweep-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    src_ = root_ + "/src";
    snaps_ = root_ + "/snapshots";
    ASSERT_EQ(::mkdir(src_.c_str(), 0700), 0);
    ASSERT_EQ(::mkdir(snaps_.c_str(), 0700), 0);
    key_ = crypto::RandomSecret(32);
    store::VolumeOptions vo;
    vo.chunk_blocks = kChunkBlocks;
    ASSERT_TRUE(store::CreateVolumeLayout(&posix_, src_, &key_, vo).ok());
    keys_ = std::move(store::VolumeKeys::Derive(key_)).value();
    a_ = Pattern(150000, 1);
    ASSERT_TRUE(WriteAt(&posix_, src_, keys_.get(), "a", 0, a_, true).ok());
    d_.kind = config::VolumeKind::kSnapshot;
    d_.id = "s1";
    d_.region = "r1";
    d_.arn = "arn:cipherfs:rds:r1:123456789012:cluster-snapshot:s1";
    d_.created_at = config::NowRfc3339();
    d_.lineage.push_back({kRelManualSnapshot, "arn:cipherfs:rds:r1:123456789012:cluster:src", d_.created_at});
  }
  void TearDown() override { fsys::remove_all(root_); }

  void ExpectSourceIs(const Bytes& want, uint64_t n) {
    auto r = ReadAll(&posix_, src_, keys_.get(), "a");
    ASSERT_TRUE(r.ok()) << "n=" << n << ": " << r.status().ToString();
    ASSERT_EQ(*r, want) << "n=" << n;
  }

  store::PosixBacking posix_;
  std::string root_, src_, snaps_;
  SecretBytes key_;
  std::unique_ptr<store::VolumeKeys> keys_;
  Bytes a_;
  config::VolumeDescriptor d_;
};

// The first write after a snapshot breaks the sharing of chunk 0. Whatever
// call fails, the snapshot keeps the old contents, the live file reads as
// the old or the new contents (never an error), and no chunk is lost.
TEST_P(SweepTest, CowBreakFailureLosesNothing) {
  const bool die = GetParam();
  const Bytes patch = Pattern(4096, 9);
  Bytes patched = a_;
  std::copy(patch.begin(), patch.end(), patched.begin() + 8192);
  int failures = 0;
  for (uint64_t n = 1; n < 5000; ++n) {
    ASSERT_TRUE(CreateCowVolume(&posix_, src_, snaps_, d_, nullptr, nullptr).ok());
    test::FaultBacking fb(&posix_);
    fb.FailNth(test::OpKind::kAny, n, EIO, die);
    Status s = WriteAt(&fb, src_, keys_.get(), "a", 8192, patch, false);
    bool injected = fb.faults_injected() > 0;
    auto snap = ReadAll(&posix_, snaps_ + "/s1", keys_.get(), "a");
    ASSERT_TRUE(snap.ok()) << "n=" << n << ": " << snap.status().ToString();
    ASSERT_EQ(*snap, a_) << "n=" << n << ": the snapshot changed (" << fb.last_fault() << ")";
    auto live = ReadAll(&posix_, src_, keys_.get(), "a");
    ASSERT_TRUE(live.ok()) << "n=" << n << ": live unreadable: " << live.status().ToString();
    if (s.ok()) {
      ASSERT_EQ(*live, patched) << "n=" << n;
    } else {
      ++failures;
      ASSERT_TRUE(injected) << "n=" << n << ": " << s.ToString();
      ASSERT_TRUE(*live == a_ || *live == patched) << "n=" << n << ": live is neither old nor new";
    }
    ASSERT_TRUE(DeleteVolumeVia(&posix_, snaps_, "s1").ok());
    auto [files, links] = ChunkLinks(src_);
    ASSERT_EQ(links, files) << "n=" << n << ": a chunk kept an extra link or vanished";
    if (*live != a_) {  // back to the old contents for the next round
      ASSERT_TRUE(WriteAt(&posix_, src_, keys_.get(), "a", 0, a_, false).ok());
    }
    if (s.ok() && !injected) break;
  }
  std::printf("copy-on-write break: %d failing points\n", failures);
  EXPECT_GT(failures, 5);
}

// A snapshot of a mounted volume with the O(1) pause (LiveHooks::data):
// tree/ copied inside the barrier, a writer changing chunk 0 right after it
// (before the linker got there: it must preserve the chunk for the
// snapshot first), the rest linked afterwards. Every call of the data path
// and of the copy fails in turn: the snapshot is whole with the instant's
// contents or absent, the live file old or new, no chunk lost.
TEST_P(SweepTest, LiveSnapshotFailureLeavesWholeOrNothing) {
  const bool die = GetParam();
  const Bytes patch = Pattern(4096, 9);
  Bytes patched = a_;
  std::copy(patch.begin(), patch.end(), patched.begin() + 8192);
  int failures = 0;
  for (uint64_t n = 1; n < 5000; ++n) {
    test::FaultBacking fb(&posix_);
    int vfd = ::open(src_.c_str(), O_RDONLY | O_DIRECTORY);
    auto ds = OpenStore(&fb, vfd, keys_.get(), false);
    ASSERT_TRUE(ds.ok()) << ds.status().ToString();
    int ifd = ::open((src_ + "/tree/a").c_str(), O_RDWR);
    auto f = (*ds)->OpenFile(ifd);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    fb.FailNth(test::OpKind::kAny, n, EIO, die);
    Status w = Internal("not written: the snapshot failed before its pause");
    LiveHooks hooks;
    hooks.data = ds->get();
    hooks.freeze = [&] { (*ds)->BeginWriteBarrier(); };
    hooks.thaw = [&] {
      (*ds)->EndWriteBarrier();
      w = (*f)->Write(8192, ByteView(patch.data(), patch.size())).status();
      if (w.ok()) w = (*f)->Sync(false);
    };
    Status s = CreateCowVolume(&fb, src_, snaps_, d_, &hooks, nullptr);
    bool injected = fb.faults_injected() > 0;
    fb.ClearFaults();
    f->reset();
    (void)(*ds)->CloseClean();
    ds->reset();
    ::close(ifd);
    ::close(vfd);
    if (s.ok()) {
      auto snap = ReadAll(&posix_, snaps_ + "/s1", keys_.get(), "a");
      ASSERT_TRUE(snap.ok()) << "n=" << n << ": " << snap.status().ToString();
      ASSERT_EQ(*snap, a_) << "n=" << n << ": the snapshot is not the instant (" << fb.last_fault() << ")";
      ASSERT_TRUE(DeleteVolumeVia(&posix_, snaps_, "s1").ok());
    } else {
      ++failures;
      ASSERT_TRUE(injected) << "n=" << n << ": " << s.ToString();
    }
    ASSERT_EQ(Entries(snaps_), 0u) << "n=" << n << ": a failed snapshot left something";
    auto live = ReadAll(&posix_, src_, keys_.get(), "a");
    ASSERT_TRUE(live.ok()) << "n=" << n << ": live unreadable: " << live.status().ToString();
    if (w.ok()) {
      ASSERT_EQ(*live, patched) << "n=" << n;
    } else {
      ASSERT_TRUE(*live == a_ || *live == patched) << "n=" << n << ": live is neither old nor new";
    }
    auto [files, links] = ChunkLinks(src_);
    ASSERT_EQ(links, files) << "n=" << n << ": a chunk kept an extra link or vanished";
    if (*live != a_) {  // back to the old contents for the next round
      ASSERT_TRUE(WriteAt(&posix_, src_, keys_.get(), "a", 0, a_, false).ok());
    }
    if (s.ok() && w.ok() && !injected) break;
  }
  std::printf("live snapshot: %d failing points\n", failures);
  EXPECT_GT(failures, 10);
}

// An unencrypted snapshot restored into an encrypted volume in a staging
// folder; the caller removes the staging folder on failure. Afterwards:
// nothing, or a whole volume with the right contents; the source intact.
TEST_P(SweepTest, EncryptingRestoreFailureLeavesNothing) {
  const bool die = GetParam();
  const std::string plain = root_ + "/plain", out = root_ + "/clusters";
  ASSERT_EQ(::mkdir(plain.c_str(), 0700), 0);
  ASSERT_EQ(::mkdir(out.c_str(), 0700), 0);
  store::VolumeOptions vo;
  vo.chunk_blocks = kChunkBlocks;
  ASSERT_TRUE(store::CreateVolumeLayout(&posix_, plain, nullptr, vo).ok());
  ASSERT_TRUE(WriteAt(&posix_, plain, nullptr, "a", 0, a_, true).ok());
  ASSERT_EQ(::mkdir((plain + "/tree/d").c_str(), 0700), 0);
  ASSERT_EQ(::symlink("../a", (plain + "/tree/d/l").c_str()), 0);
  int failures = 0;
  for (uint64_t n = 1; n < 20000; n += (n < 200 ? 1 : 7)) {
    const std::string staging = out + "/.tmp-y";
    ASSERT_EQ(::mkdir(staging.c_str(), 0700), 0);
    test::FaultBacking fb(&posix_);
    fb.FailNth(test::OpKind::kAny, n, EIO, die);
    TranscodeOptions o;
    o.chunk_blocks = kChunkBlocks;
    Status s = TranscodeVolume(&fb, plain, nullptr, staging, &key_, o, nullptr);
    bool injected = fb.faults_injected() > 0;
    if (s.ok()) {  // whole: its plaintext, exported, is the source's
      const std::string back = root_ + "/back";
      ASSERT_EQ(::mkdir(back.c_str(), 0700), 0);
      ASSERT_TRUE(TranscodeVolume(&posix_, staging, &key_, back, nullptr, o, nullptr).ok()) << "n=" << n;
      std::ifstream in(back + "/a", std::ios::binary);
      Bytes got((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      ASSERT_EQ(got, a_) << "n=" << n;
      ASSERT_EQ(fsys::read_symlink(back + "/d/l"), "../a") << "n=" << n;
      fsys::remove_all(back);
      fsys::remove_all(staging);
      if (!injected) break;
    } else {
      ++failures;
      ASSERT_TRUE(injected) << "n=" << n << ": " << s.ToString();
      fsys::remove_all(staging);  // what the CLI does (transcode_commands.cc)
    }
    ASSERT_EQ(Entries(out), 0u) << "n=" << n;
    auto src = ReadAll(&posix_, plain, nullptr, "a");
    ASSERT_TRUE(src.ok() && *src == a_) << "n=" << n << ": the source changed";
  }
  std::printf("encrypting restore: %d failing points\n", failures);
  EXPECT_GT(failures, 20);
}

// A copy-on-write restore (CreateCowVolume from a snapshot into the
// clusters folder) then snapshot delete: each fails at every call in turn.
TEST_P(SweepTest, RestoreAndDeleteFailureLeaveWholeOrNothing) {
  const bool die = GetParam();
  const std::string clusters = root_ + "/clusters";
  ASSERT_EQ(::mkdir(clusters.c_str(), 0700), 0);
  ASSERT_TRUE(CreateCowVolume(&posix_, src_, snaps_, d_, nullptr, nullptr).ok());
  config::VolumeDescriptor c = d_;
  c.kind = config::VolumeKind::kCluster;
  c.id = "y";
  c.arn = "arn:cipherfs:rds:r1:123456789012:cluster:y";
  int restore_failures = 0, delete_failures = 0;
  for (uint64_t n = 1; n < 10000; ++n) {
    test::FaultBacking fb(&posix_);
    fb.FailNth(test::OpKind::kAny, n, EIO, die);
    Status s = CreateCowVolume(&fb, snaps_ + "/s1", clusters, c, nullptr, nullptr);
    bool injected = fb.faults_injected() > 0;
    if (s.ok()) {
      auto r = ReadAll(&posix_, clusters + "/y", keys_.get(), "a");
      ASSERT_TRUE(r.ok() && *r == a_) << "n=" << n;
      ASSERT_TRUE(DeleteVolumeVia(&posix_, clusters, "y").ok());
      if (!injected) break;
    } else {
      ++restore_failures;
    }
    ASSERT_EQ(Entries(clusters), 0u) << "n=" << n << ": a failed restore left something";
  }
  for (uint64_t n = 1; n < 10000; ++n) {
    test::FaultBacking fb(&posix_);
    fb.FailNth(test::OpKind::kAny, n, EIO, die);
    Status s = DeleteVolumeVia(&fb, snaps_, "s1");
    bool injected = fb.faults_injected() > 0;
    bool whole = fsys::exists(snaps_ + "/s1");
    if (whole) {
      ASSERT_FALSE(s.ok()) << "n=" << n;
      auto r = ReadAll(&posix_, snaps_ + "/s1", keys_.get(), "a");
      ASSERT_TRUE(r.ok() && *r == a_) << "n=" << n << ": a failed delete damaged the snapshot";
    }
    if (!s.ok()) ++delete_failures;
    // Gone from view or whole; a leftover staging folder is what a later
    // CleanStaleStaging removes.
    for (const auto& e : fsys::directory_iterator(snaps_)) {
      std::string name = e.path().filename();
      if (name != "s1") {
        ASSERT_EQ(name.rfind(".tmp-delete-s1-", 0), 0u) << "n=" << n;
        fsys::remove_all(e.path());
      }
    }
    ExpectSourceIs(a_, n);
    if (s.ok() && !injected) break;
    if (!whole) {
      ASSERT_TRUE(CreateCowVolume(&posix_, src_, snaps_, d_, nullptr, nullptr).ok());
    }
  }
  auto [files, links] = ChunkLinks(src_);
  EXPECT_EQ(links, files) << "chunks still linked after every delete";
  std::printf("restore: %d failing points, delete: %d\n", restore_failures, delete_failures);
  EXPECT_GT(restore_failures, 20);
  EXPECT_GT(delete_failures, 5);
}

INSTANTIATE_TEST_SUITE_P(Mode, SweepTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "DiskDies" : "OneCallFails"; });

}  // namespace
}  // namespace cfs::snapshot
