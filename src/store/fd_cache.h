// FdCache: a bounded LRU of open chunk-file descriptors, keyed by (file id,
// chunk index), shared by all files of a DataStore (PostgreSQL keeps many
// 1 GiB segments = 1024 chunks each). A descriptor is closed when it has
// been evicted or erased AND the last user dropped its shared_ptr, so the
// bound may be exceeded briefly by descriptors in use.
// Erase*() guarantee that no descriptor opened before the call is handed
// out afterwards (a copy-on-write break renames a new file over the name).
// Thread safety: all methods may be called concurrently.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "common/result.h"
#include "store/backing.h"
#include "store/volume_keys.h"

namespace cfs::store {

class ChunkFd {
 public:
  ChunkFd(Backing* backing, int fd) : backing_(backing), fd_(fd) {}
  ~ChunkFd();
  ChunkFd(const ChunkFd&) = delete;
  ChunkFd& operator=(const ChunkFd&) = delete;
  int fd() const { return fd_; }

 private:
  Backing* backing_;
  int fd_;
};

class FdCache {
 public:
  FdCache(Backing* backing, size_t capacity) : backing_(backing), capacity_(capacity) {}
  // The cached descriptor, or a new one from `open` (called without the
  // cache lock; its error is returned as is).
  Result<std::shared_ptr<ChunkFd>> Get(const FileId& id, uint64_t chunk,
                                       const std::function<Result<int>()>& open);
  void Erase(const FileId& id, uint64_t chunk);
  // Erases every chunk >= first_chunk of the file.
  void EraseFrom(const FileId& id, uint64_t first_chunk);
  void Clear();
  size_t size() const;

 private:
  struct Key {
    FileId id;
    uint64_t chunk;
    bool operator==(const Key& o) const { return chunk == o.chunk && id == o.id; }
  };
  struct KeyHash {
    size_t operator()(const Key& k) const;
  };
  struct Entry {
    std::shared_ptr<ChunkFd> fd;
    std::list<Key>::iterator lru;
  };
  Backing* backing_;
  size_t capacity_;
  mutable std::mutex mu_;
  std::unordered_map<Key, Entry, KeyHash> map_;  // guarded by mu_
  std::list<Key> lru_;                           // front = most recent; guarded by mu_
  uint64_t erase_gen_ = 0;                       // bumped by every Erase*; guarded by mu_
};

}  // namespace cfs::store
