// Micro benchmarks of the data path crypto: AES-256-GCM seal/open of one
// 4 KiB block through GcmKey (pre-keyed per-thread contexts), against a
// context created and keyed per call (what the cache saves), plus the cost
// of a chunk key miss (HKDF + GcmKey construction).
// Run: build/src/crypto/gcm_bench [--benchmark_repetitions=5]
#include <benchmark/benchmark.h>
#include <openssl/evp.h>

#include <vector>

#include "crypto/aead.h"
#include "crypto/kdf.h"
#include "crypto/mac.h"
#include "crypto/siv.h"
#include "crypto/random.h"

namespace cfs::crypto {
namespace {

constexpr size_t kBlock = 4096;

const GcmKey& SharedKey() {
  static GcmKey* key = new GcmKey(RandomSecret(kKeySize));
  return *key;
}

void BM_Seal4K(benchmark::State& state) {
  const GcmKey& key = SharedKey();
  std::vector<uint8_t> block(kBlock, 0x5a);
  const uint8_t aad[24] = {1, 2, 3};
  Nonce nonce;
  Tag tag;
  for (auto _ : state) {
    if (!key.Seal(aad, block, block.data(), &nonce, &tag).ok()) state.SkipWithError("seal");
    benchmark::DoNotOptimize(block.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * kBlock);
}
BENCHMARK(BM_Seal4K)->Threads(1)->Threads(2)->UseRealTime();

void BM_Open4K(benchmark::State& state) {
  const GcmKey& key = SharedKey();
  std::vector<uint8_t> pt(kBlock, 0x5a), ct(kBlock), out(kBlock);
  const uint8_t aad[24] = {1, 2, 3};
  Nonce nonce;
  Tag tag;
  if (!key.Seal(aad, pt, ct.data(), &nonce, &tag).ok()) state.SkipWithError("seal");
  for (auto _ : state) {
    if (!key.Open(aad, nonce, tag, ct, out.data())) state.SkipWithError("open");
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * kBlock);
}
BENCHMARK(BM_Open4K)->Threads(1)->Threads(2)->UseRealTime();

// Baseline: a fresh EVP_CIPHER_CTX keyed for every block (no cache).
void BM_Seal4KFreshContext(benchmark::State& state) {
  SecretBytes key = RandomSecret(kKeySize);
  std::vector<uint8_t> block(kBlock, 0x5a);
  const uint8_t aad[24] = {1, 2, 3};
  Nonce nonce;
  Tag tag;
  EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  for (auto _ : state) {
    RandomBytes(nonce.data(), nonce.size());
    EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
    int len = 0;
    bool ok = EVP_EncryptInit_ex(ctx, cipher, nullptr, key.UnsafeData(), nonce.data()) == 1 &&
              EVP_EncryptUpdate(ctx, nullptr, &len, aad, sizeof aad) == 1 &&
              EVP_EncryptUpdate(ctx, block.data(), &len, block.data(), kBlock) == 1 &&
              EVP_EncryptFinal_ex(ctx, block.data(), &len) == 1 &&
              EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, kTagSize, tag.data()) == 1;
    EVP_CIPHER_CTX_free(ctx);
    if (!ok) state.SkipWithError("openssl");
  }
  EVP_CIPHER_free(cipher);
  state.SetBytesProcessed(int64_t(state.iterations()) * kBlock);
}
BENCHMARK(BM_Seal4KFreshContext)->Threads(1)->UseRealTime();

// A chunk key cache miss: HKDF-SHA256 of a 32-byte key plus a new GcmKey.
void BM_ChunkKeyMiss(benchmark::State& state) {
  SecretBytes data_key = RandomSecret(kKeySize);
  const uint8_t file_id[16] = {9};
  uint8_t info[29] = "cipherfs v1 chunk";
  uint64_t chunk = 0;
  for (auto _ : state) {
    info[17] = static_cast<uint8_t>(++chunk);
    auto bytes = HkdfSha256(data_key, file_id, info, kKeySize);
    if (!bytes.ok()) state.SkipWithError("hkdf");
    GcmKey key(std::move(*bytes));
    benchmark::DoNotOptimize(key.id());
  }
}
BENCHMARK(BM_ChunkKeyMiss);

void BM_Hkdf32(benchmark::State& state) {
  SecretBytes data_key = RandomSecret(kKeySize);
  const uint8_t salt[16] = {9};
  for (auto _ : state) {
    auto bytes = HkdfSha256(data_key, salt, salt, kKeySize);
    if (!bytes.ok()) state.SkipWithError("hkdf");
  }
}
BENCHMARK(BM_Hkdf32);

void BM_GcmKeyConstruct(benchmark::State& state) {
  SecretBytes bytes = RandomSecret(kKeySize);
  for (auto _ : state) {
    GcmKey key(bytes);
    benchmark::DoNotOptimize(key.id());
  }
}
BENCHMARK(BM_GcmKeyConstruct);

void BM_SecretBytes32(benchmark::State& state) {
  for (auto _ : state) {
    SecretBytes s(32);
    benchmark::DoNotOptimize(s.UnsafeData());
  }
}
BENCHMARK(BM_SecretBytes32);

void BM_RandomNonce(benchmark::State& state) {
  Nonce nonce;
  for (auto _ : state) {
    RandomBytes(nonce.data(), nonce.size());
    benchmark::DoNotOptimize(nonce.data());
  }
}
BENCHMARK(BM_RandomNonce);

// A file name (AES-256-SIV), as every lookup and create does.
void BM_SivEncryptName(benchmark::State& state) {
  SivKey key(RandomSecret(64));
  const uint8_t dir_id[16] = {1};
  const uint8_t name[] = "000000010000000000000042";
  for (auto _ : state) {
    auto ct = key.Encrypt(dir_id, ByteView(name, sizeof name - 1));
    if (!ct.ok()) state.SkipWithError("siv");
  }
}
BENCHMARK(BM_SivEncryptName);

// A chunk header MAC (HMAC-SHA256 over 336 bytes).
void BM_HmacChunkHeader(benchmark::State& state) {
  MacKey key(RandomSecret(32));
  std::vector<uint8_t> header(336, 3);
  for (auto _ : state) benchmark::DoNotOptimize(key.Compute(header));
}
BENCHMARK(BM_HmacChunkHeader);

}  // namespace
}  // namespace cfs::crypto

BENCHMARK_MAIN();
