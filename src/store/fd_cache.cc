#include "store/fd_cache.h"

#include <cstring>

#include "common/log.h"

namespace cfs::store {

ChunkFd::~ChunkFd() {
  Status s = backing_->Close(fd_);
  if (!s.ok()) log::Warn("closing chunk fd: {}", s.ToString());
}

size_t FdCache::KeyHash::operator()(const Key& k) const {
  uint64_t a;
  std::memcpy(&a, k.id.data(), 8);  // the id is random: its bytes are a good hash
  return size_t(a ^ (k.chunk * 0x9E3779B97F4A7C15ull));
}

Result<std::shared_ptr<ChunkFd>> FdCache::Get(const FileId& id, uint64_t chunk,
                                              const std::function<Result<int>()>& open) {
  Key key{id, chunk};
  uint64_t gen;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = map_.find(key);
    if (it != map_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second.lru);
      return it->second.fd;
    }
    gen = erase_gen_;
  }
  CFS_ASSIGN_OR_RETURN(int raw, open());
  auto fd = std::make_shared<ChunkFd>(backing_, raw);
  std::vector<std::shared_ptr<ChunkFd>> evicted;  // closed after unlocking
  std::lock_guard<std::mutex> l(mu_);
  if (gen != erase_gen_) return fd;  // maybe stale name: use once, don't cache
  auto it = map_.find(key);
  if (it != map_.end()) return it->second.fd;  // another thread won; ours closes on return
  lru_.push_front(key);
  map_.emplace(key, Entry{fd, lru_.begin()});
  while (map_.size() > capacity_) {
    auto victim = map_.find(lru_.back());
    evicted.push_back(std::move(victim->second.fd));
    map_.erase(victim);
    lru_.pop_back();
  }
  return fd;
}

void FdCache::Erase(const FileId& id, uint64_t chunk) {
  std::shared_ptr<ChunkFd> victim;
  std::lock_guard<std::mutex> l(mu_);
  ++erase_gen_;
  auto it = map_.find(Key{id, chunk});
  if (it == map_.end()) return;
  victim = std::move(it->second.fd);
  lru_.erase(it->second.lru);
  map_.erase(it);
}

void FdCache::EraseFrom(const FileId& id, uint64_t first_chunk) {
  std::vector<std::shared_ptr<ChunkFd>> victims;
  std::lock_guard<std::mutex> l(mu_);
  ++erase_gen_;
  for (auto it = map_.begin(); it != map_.end();) {
    if (it->first.id == id && it->first.chunk >= first_chunk) {
      victims.push_back(std::move(it->second.fd));
      lru_.erase(it->second.lru);
      it = map_.erase(it);
    } else {
      ++it;
    }
  }
}

void FdCache::Clear() {
  std::vector<std::shared_ptr<ChunkFd>> victims;
  std::lock_guard<std::mutex> l(mu_);
  ++erase_gen_;
  for (auto& [k, e] : map_) victims.push_back(std::move(e.fd));
  map_.clear();
  lru_.clear();
}

size_t FdCache::size() const {
  std::lock_guard<std::mutex> l(mu_);
  return map_.size();
}

}  // namespace cfs::store
