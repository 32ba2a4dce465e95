// StoreVolume: a throw-away volume directory for data-path tests: a data key
// (encrypted) or none, DataStore::Open through any Backing, inode files
// tree/f<i> created, initialised and synced, and helpers to locate the
// on-disk pieces (docs/format/chunks.md) for tamper tests.
// Thread safety: one test thread owns a StoreVolume.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/secret_bytes.h"
#include "store/backing.h"
#include "store/data_store.h"
#include "store/volume_keys.h"
#include "support/test_util.h"

namespace cfs::test {

// On-disk constants of chunk format version 2, restated from
// docs/format/chunks.md (deliberately not taken from the implementation's
// headers).
constexpr uint64_t kFmtBlock = 4096;
constexpr uint64_t kFmtHeaderMapOffset = 48;
constexpr uint64_t kFmtHeaderMacOffset = 312;
constexpr uint64_t kFmtTagTable = 4096;
constexpr uint64_t kFmtSlotSize = 128;
constexpr uint64_t kFmtInodeSizeOffset = 32;
inline uint64_t FmtDataOffset(uint32_t chunk_blocks) {
  return 4096 + (uint64_t{chunk_blocks} * 256 + 4095) / 4096 * 4096;
}

class StoreVolume {
 public:
  StoreVolume(bool encrypted, uint32_t chunk_blocks);
  ~StoreVolume();

  bool encrypted() const { return keys_ != nullptr; }
  uint32_t chunk_blocks() const { return chunk_blocks_; }
  const std::string& path() const { return dir_.path(); }
  int dirfd() const { return dir_.fd(); }
  store::DataStoreOptions options() const;

  // DataStore::Open of this volume through `backing`.
  Result<std::unique_ptr<store::DataStore>> Open(store::Backing* backing) const;
  // Creates tree/f<index> (O_EXCL), InitInodeFile, OpenFile, Sync.
  Result<std::shared_ptr<store::FileData>> CreateFile(store::Backing* backing, store::DataStore* ds,
                                                      int index) const;
  // Opens the existing tree/f<index>.
  Result<std::shared_ptr<store::FileData>> OpenFile(store::Backing* backing, store::DataStore* ds,
                                                    int index) const;

  // Paths for tamper tests (absolute).
  std::string InodePath(int index) const;
  std::string ChunkPath(const store::FileId& id, uint64_t chunk) const;

 private:
  TempDir dir_;
  uint32_t chunk_blocks_;
  std::unique_ptr<store::VolumeKeys> keys_;
  int tree_fd_ = -1;
};

// File bytes for tamper tests: read/overwrite/truncate a host file directly.
std::vector<uint8_t> ReadHostFile(const std::string& path);
void WriteHostFile(const std::string& path, const std::vector<uint8_t>& bytes);
void PatchHostFile(const std::string& path, uint64_t offset, const std::vector<uint8_t>& bytes);
void FlipHostBit(const std::string& path, uint64_t bit);
uint64_t HostFileSize(const std::string& path);

}  // namespace cfs::test
