// libFuzzer target for the fixed byte layouts of docs/format/chunks.md that
// store/ reads from the backing directory: inode files, chunk headers, tag
// slots, dirty-log headers and records (store/chunk_format.h).
// Every input is decoded as is (under a keyed MAC and under the SHA-256 of
// unencrypted volumes), then once more with its MAC or checksum made valid,
// so the fuzzer also reaches the field checks behind the MAC. Whatever
// decodes must re-encode to the same authenticated bytes; never crash.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "common/secret_bytes.h"
#include "crypto/mac.h"
#include "store/chunk_format.h"

namespace {

using namespace cfs::store::format;
using cfs::ByteView;

const MetaAuth& KeyedAuth() {
  static const MetaAuth* auth = [] {
    uint8_t raw[32];
    for (int i = 0; i < 32; ++i) raw[i] = static_cast<uint8_t>(i * 7 + 1);
    cfs::SecretBytes key(raw, sizeof raw);
    return new MetaAuth(std::make_shared<const cfs::crypto::MacKey>(key));
  }();
  return *auth;
}

const MetaAuth& PlainAuth() {
  static const MetaAuth* auth = new MetaAuth(nullptr);
  return *auth;
}

// `buf` (at least `size` bytes, zero-padded from the input) with the MAC of
// its first `mac_at` bytes under `domain` written at `mac_at`.
std::vector<uint8_t> WithValidMac(const MetaAuth& auth, ByteView in, size_t size, const char* domain,
                                  size_t mac_at) {
  std::vector<uint8_t> buf(size, 0);
  std::memcpy(buf.data(), in.data(), in.size() < size ? in.size() : size);
  cfs::crypto::Mac mac = auth.Compute(domain, ByteView(buf.data(), mac_at));
  std::memcpy(buf.data() + mac_at, mac.data(), mac.size());
  return buf;
}

void Check(bool ok) {
  if (!ok) std::abort();
}

void FuzzInode(const MetaAuth& auth, ByteView in) {
  auto r = DecodeInode(auth, in);
  if (!r.ok()) return;
  uint8_t again[kInodeSize];
  EncodeInode(auth, *r, again);
  Check(std::memcmp(again, in.data(), kInodeSize) == 0);
}

void FuzzHeader(const MetaAuth& auth, ByteView in) {
  auto h = DecodeHeader(auth, in);
  if (!h.ok()) return;
  Check(h->chunk_blocks >= 1 && h->chunk_blocks <= kMaxChunkBlocks);
  for (uint32_t b = 0; b < h->chunk_blocks; ++b) (void)MapBit(h->map, b);
  (void)DataOffset(h->chunk_blocks);
  uint8_t again[kHeaderWrite];
  EncodeHeader(auth, *h, again);
  Check(std::memcmp(again, in.data(), kHeaderMacOffset + 32) == 0);  // the authenticated bytes
}

void FuzzLogHeader(ByteView in) {
  auto s = DecodeLogHeader(in);
  if (!s.ok()) return;
  Check(s->state == LogState::kClean || s->state == LogState::kOpen);
  uint8_t again[kLogHeaderSize];
  EncodeLogHeader(*s, again);
  Check(std::memcmp(again, in.data(), 32) == 0);  // magic, version, state, salts
}

void FuzzLogRecord(const MetaAuth& auth, ByteView in) {
  auto r = DecodeLogRecord(auth, in);
  if (!r.ok()) return;
  Check(r->count >= 1 && r->count <= 65536);
  uint8_t again[kLogRecordSize];
  EncodeLogRecord(auth, *r, again);
  Check(std::memcmp(again, in.data(), kLogRecordSize) == 0);
}

void FuzzSlot(ByteView in) {
  if (in.size() < kSlotSize) return;
  Slot s = DecodeSlot(in.data());
  uint8_t again[kSlotSize];
  EncodeSlot(s, again);
  Check(std::memcmp(again, in.data(), kSlotSize) == 0);  // no reserved bytes
  Slot t = DecodeSlot(again);
  Check(t.seq == s.seq && t.ver == s.ver);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteView in(data, size);
  for (const MetaAuth* auth : {&KeyedAuth(), &PlainAuth()}) {
    FuzzInode(*auth, in);
    FuzzHeader(*auth, in);
    FuzzLogRecord(*auth, in);
    auto inode = WithValidMac(*auth, in, kInodeSize, "inode", kInodeMacOffset);
    FuzzInode(*auth, inode);
    auto header = WithValidMac(*auth, in, kHeaderWrite, "chunk", kHeaderMacOffset);
    FuzzHeader(*auth, header);
    auto record = WithValidMac(*auth, in, kLogRecordSize, "dirtylog", 32);
    FuzzLogRecord(*auth, record);
  }
  FuzzLogHeader(in);
  FuzzLogHeader(WithValidMac(PlainAuth(), in, kLogHeaderSize, "dirtylog", 32));
  FuzzSlot(in);
  // A tag table: every slot pair of the input.
  for (size_t off = 0; off + kSlotPairSize <= size; off += kSlotPairSize) {
    FuzzSlot(ByteView(data + off, kSlotSize));
    FuzzSlot(ByteView(data + off + kSlotSize, kSlotSize));
  }
  return 0;
}
