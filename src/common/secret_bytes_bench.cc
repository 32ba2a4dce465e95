// Micro benchmarks of SecretBytes allocation: small secrets (pooled slots)
// against page-sized ones (own mmap + mlock per secret).
#include <benchmark/benchmark.h>

#include <cstdint>

#include "common/secret_bytes.h"

namespace {

// Construct + destroy one secret of `range(0)` bytes.
void BM_SecretBytesConstructDestroy(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  for (auto _ : state) {
    cfs::SecretBytes s(size);
    benchmark::DoNotOptimize(s.UnsafeData());
  }
}
BENCHMARK(BM_SecretBytesConstructDestroy)->Arg(32)->Arg(64)->Arg(256)->Arg(4096);

// Clone of a 32-byte key (what a key cache hands out).
void BM_SecretBytesClone32(benchmark::State& state) {
  uint8_t raw[32] = {1, 2, 3};
  cfs::SecretBytes key(raw, sizeof raw);
  for (auto _ : state) {
    cfs::SecretBytes copy = key.Clone();
    benchmark::DoNotOptimize(copy.UnsafeData());
  }
}
BENCHMARK(BM_SecretBytesClone32);

// Many threads allocating at once (contention on the pool).
void BM_SecretBytes32Threads(benchmark::State& state) {
  for (auto _ : state) {
    cfs::SecretBytes s(32);
    benchmark::DoNotOptimize(s.UnsafeData());
  }
}
BENCHMARK(BM_SecretBytes32Threads)->Threads(1)->Threads(2)->Threads(4);

}  // namespace

BENCHMARK_MAIN();
