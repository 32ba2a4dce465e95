#include "store/volume_keys.h"

#include <atomic>
#include <cstring>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/encoding.h"
#include "crypto/kdf.h"

namespace cfs::store {
namespace {

constexpr size_t kDataKeySize = 32;
constexpr size_t kNameKeySize = 64;
constexpr size_t kMetaKeySize = 32;
constexpr size_t kDefaultChunkKeyCacheSize = 4096;
// Large caches are split into shards, each with its own mutex and LRU, so
// threads reading different chunks do not queue on one lock.
constexpr size_t kShards = 16;
constexpr size_t kMinCacheSizeToShard = 256;
constexpr std::string_view kChunkLabel = "cipherfs v1 chunk";
constexpr std::string_view kNamesLabel = "cipherfs v1 names";
constexpr std::string_view kMetaLabel = "cipherfs v1 meta";

// HKDF info of a chunk key: label || u64 LE chunk index || u32 LE generation.
Bytes ChunkInfo(uint64_t chunk, uint32_t generation) {
  Bytes info(kChunkLabel.size() + 8 + 4);
  std::copy(kChunkLabel.begin(), kChunkLabel.end(), info.begin());
  PutU64(info.data() + kChunkLabel.size(), chunk);
  PutU32(info.data() + kChunkLabel.size() + 8, generation);
  return info;
}

// Cache key: file id || u64 LE chunk || u32 LE generation.
struct CacheKey {
  std::array<uint8_t, 28> bytes;
  bool operator==(const CacheKey& o) const { return bytes == o.bytes; }
};

CacheKey MakeCacheKey(const FileId& file, uint64_t chunk, uint32_t generation) {
  CacheKey k;
  std::memcpy(k.bytes.data(), file.data(), file.size());
  PutU64(k.bytes.data() + 16, chunk);
  PutU32(k.bytes.data() + 24, generation);
  return k;
}

struct CacheKeyHash {
  size_t operator()(const CacheKey& k) const {
    return std::hash<std::string_view>()(
        std::string_view(reinterpret_cast<const char*>(k.bytes.data()), k.bytes.size()));
  }
};

Status WipedError() {
  return FailedPrecondition("volume keys were wiped (the data key became unusable)");
}

}  // namespace

struct VolumeKeys::State {
  using Key = std::shared_ptr<const crypto::GcmKey>;
  using Lru = std::list<std::pair<CacheKey, Key>>;
  struct Shard {
    std::mutex mu;  // guards lru and index; never held with State::mu
    Lru lru;        // most recently used first
    std::unordered_map<CacheKey, Lru::iterator, CacheKeyHash> index;  // into lru
  };

  // Set once by Wipe(), before the shards are emptied; checked under a
  // shard's mutex before returning or inserting a chunk key.
  std::atomic<bool> wiped{false};
  size_t shard_capacity = kDefaultChunkKeyCacheSize;
  std::vector<Shard> shards;

  std::mutex mu;  // guards the three keys below (null once wiped)
  // Shared so a derivation running outside `mu` keeps the bytes alive;
  // they are wiped when the last holder lets go.
  std::shared_ptr<const SecretBytes> data_key;
  std::shared_ptr<const crypto::SivKey> name_key;
  std::shared_ptr<const crypto::MacKey> meta_key;

  Shard& ShardFor(const CacheKey& k) { return shards[CacheKeyHash()(k) % shards.size()]; }

  // The cached key (made most recent), or null. Caller holds shard.mu.
  static Key Find(Shard& shard, const CacheKey& k) {
    auto it = shard.index.find(k);
    if (it == shard.index.end()) return nullptr;
    shard.lru.splice(shard.lru.begin(), shard.lru, it->second);
    return it->second->second;
  }
};

Result<std::unique_ptr<VolumeKeys>> VolumeKeys::Derive(const SecretBytes& data_key) {
  return Derive(data_key, kDefaultChunkKeyCacheSize);
}

Result<std::unique_ptr<VolumeKeys>> VolumeKeys::Derive(const SecretBytes& data_key,
                                                       size_t chunk_key_cache_size) {
  if (data_key.size() != kDataKeySize) {
    return InvalidArgument("data key must be " + std::to_string(kDataKeySize) + " bytes, got " +
                           std::to_string(data_key.size()));
  }
  if (chunk_key_cache_size == 0) return InvalidArgument("chunk key cache size must be positive");
  CFS_ASSIGN_OR_RETURN(SecretBytes name_bytes,
                       crypto::HkdfSha256(data_key, {}, AsBytes(kNamesLabel), kNameKeySize));
  CFS_ASSIGN_OR_RETURN(SecretBytes meta_bytes,
                       crypto::HkdfSha256(data_key, {}, AsBytes(kMetaLabel), kMetaKeySize));
  std::unique_ptr<VolumeKeys> keys(new VolumeKeys());
  keys->state_ = std::make_unique<State>();
  State& s = *keys->state_;
  const size_t shards = chunk_key_cache_size >= kMinCacheSizeToShard ? kShards : 1;
  s.shards = std::vector<State::Shard>(shards);
  s.shard_capacity = (chunk_key_cache_size + shards - 1) / shards;
  s.data_key = std::make_shared<const SecretBytes>(data_key.Clone());
  s.name_key = std::make_shared<const crypto::SivKey>(name_bytes);
  s.meta_key = std::make_shared<const crypto::MacKey>(meta_bytes);
  return keys;
}

VolumeKeys::~VolumeKeys() { Wipe(); }

Result<std::shared_ptr<const crypto::GcmKey>> VolumeKeys::ChunkKey(const FileId& file,
                                                                   uint64_t chunk,
                                                                   uint32_t generation) const {
  State& s = *state_;
  const CacheKey cache_key = MakeCacheKey(file, chunk, generation);
  State::Shard& shard = s.ShardFor(cache_key);
  {
    std::lock_guard<std::mutex> lock(shard.mu);
    if (s.wiped.load()) return WipedError();
    if (State::Key hit = State::Find(shard, cache_key)) return hit;
  }
  std::shared_ptr<const SecretBytes> data_key;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    data_key = s.data_key;
  }
  if (data_key == nullptr) return WipedError();
  // Derive outside any lock: a miss costs an HKDF and a key allocation.
  CFS_ASSIGN_OR_RETURN(SecretBytes bytes,
                       crypto::HkdfSha256(*data_key, file, ChunkInfo(chunk, generation),
                                          crypto::kKeySize));
  data_key.reset();
  auto key = std::make_shared<const crypto::GcmKey>(std::move(bytes));
  State::Key evicted;  // destroyed after unlocking (it purges thread caches)
  std::lock_guard<std::mutex> lock(shard.mu);
  if (s.wiped.load()) return WipedError();  // wiped while deriving
  if (State::Key hit = State::Find(shard, cache_key)) return hit;  // a racing miss won
  shard.lru.emplace_front(cache_key, key);
  shard.index.emplace(cache_key, shard.lru.begin());
  if (shard.lru.size() > s.shard_capacity) {
    evicted = std::move(shard.lru.back().second);
    shard.index.erase(shard.lru.back().first);
    shard.lru.pop_back();
  }
  return key;
}

Result<std::shared_ptr<const crypto::SivKey>> VolumeKeys::NameKey() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  if (state_->name_key == nullptr) return WipedError();
  return state_->name_key;
}

Result<std::shared_ptr<const crypto::MacKey>> VolumeKeys::MetaKey() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  if (state_->meta_key == nullptr) return WipedError();
  return state_->meta_key;
}

void VolumeKeys::Wipe() {
  if (state_ == nullptr) return;
  State& s = *state_;
  std::shared_ptr<const SecretBytes> data_key;
  std::shared_ptr<const crypto::SivKey> name_key;
  std::shared_ptr<const crypto::MacKey> meta_key;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    s.wiped.store(true);
    data_key = std::move(s.data_key);
    name_key = std::move(s.name_key);
    meta_key = std::move(s.meta_key);
  }
  for (State::Shard& shard : s.shards) {
    State::Lru lru;
    {
      std::lock_guard<std::mutex> lock(shard.mu);
      lru.swap(shard.lru);
      shard.index.clear();
    }
    // `lru` is destroyed here, outside the lock: each GcmKey purges every
    // thread's cached contexts. Keys still held by in-flight callers are
    // wiped when those callers drop them.
  }
}

bool VolumeKeys::wiped() const { return state_->wiped.load(); }

}  // namespace cfs::store
