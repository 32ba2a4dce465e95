#include "store/volume_keys.h"

#include <list>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/encoding.h"
#include "crypto/kdf.h"

namespace cfs::store {
namespace {

constexpr size_t kDataKeySize = 32;
constexpr size_t kNameKeySize = 64;
constexpr size_t kMetaKeySize = 32;
constexpr size_t kDefaultChunkKeyCacheSize = 4096;
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

// Cache key: file id || u64 LE chunk || u32 LE generation (28 bytes).
std::string CacheKey(const FileId& file, uint64_t chunk, uint32_t generation) {
  std::string k(file.size() + 12, '\0');
  auto* p = reinterpret_cast<uint8_t*>(k.data());
  std::copy(file.begin(), file.end(), p);
  PutU64(p + file.size(), chunk);
  PutU32(p + file.size() + 8, generation);
  return k;
}

Status WipedError() {
  return FailedPrecondition("volume keys were wiped (the data key became unusable)");
}

}  // namespace

struct VolumeKeys::State {
  using Lru = std::list<std::pair<std::string, std::shared_ptr<const crypto::GcmKey>>>;

  size_t capacity = kDefaultChunkKeyCacheSize;
  mutable std::mutex mu;  // guards everything below
  // Null once wiped. Shared so a derivation running outside `mu` keeps the
  // bytes alive; they are wiped when the last holder lets go.
  std::shared_ptr<const SecretBytes> data_key;
  std::shared_ptr<const crypto::SivKey> name_key;
  std::shared_ptr<const crypto::MacKey> meta_key;
  Lru lru;  // most recently used first
  std::unordered_map<std::string, Lru::iterator> index;  // into lru
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
  s.capacity = chunk_key_cache_size;
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
  const std::string cache_key = CacheKey(file, chunk, generation);
  std::shared_ptr<const SecretBytes> data_key;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.data_key == nullptr) return WipedError();
    auto it = s.index.find(cache_key);
    if (it != s.index.end()) {
      s.lru.splice(s.lru.begin(), s.lru, it->second);
      return it->second->second;
    }
    data_key = s.data_key;
  }
  // Derive outside the lock: HKDF costs microseconds and misses are common
  // under random I/O over more chunks than the cache holds.
  CFS_ASSIGN_OR_RETURN(SecretBytes bytes,
                       crypto::HkdfSha256(*data_key, file, ChunkInfo(chunk, generation),
                                          crypto::kKeySize));
  data_key.reset();
  auto key = std::make_shared<const crypto::GcmKey>(bytes);
  std::shared_ptr<const crypto::GcmKey> evicted;  // destroyed after unlocking
  std::lock_guard<std::mutex> lock(s.mu);
  if (s.data_key == nullptr) return WipedError();  // wiped while deriving
  auto it = s.index.find(cache_key);
  if (it != s.index.end()) {  // another thread derived it meanwhile
    s.lru.splice(s.lru.begin(), s.lru, it->second);
    return it->second->second;
  }
  s.lru.emplace_front(cache_key, key);
  s.index.emplace(cache_key, s.lru.begin());
  if (s.lru.size() > s.capacity) {
    evicted = std::move(s.lru.back().second);
    s.index.erase(s.lru.back().first);
    s.lru.pop_back();
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
  State::Lru lru;
  std::shared_ptr<const SecretBytes> data_key;
  std::shared_ptr<const crypto::SivKey> name_key;
  std::shared_ptr<const crypto::MacKey> meta_key;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    lru.swap(state_->lru);
    state_->index.clear();
    data_key = std::move(state_->data_key);
    name_key = std::move(state_->name_key);
    meta_key = std::move(state_->meta_key);
  }
  // Destroyed here, outside the lock (a GcmKey purges every thread's cached
  // contexts). Keys still held by in-flight callers are wiped when those
  // callers drop them.
}

bool VolumeKeys::wiped() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->data_key == nullptr;
}

}  // namespace cfs::store
