#include "store/chunk_recover_sectors.h"

#include <algorithm>
#include <array>
#include <cstring>

namespace cfs::store {
namespace {

using format::kBlock;
using format::kFingerprintSize;
using format::kSector;
using format::kSectors;

// A nonce some write of the block may have used.
struct Candidate {
  uint32_t generation = 0;
  crypto::Nonce nonce{};
  uint64_t ver = 0;  // 0: a slot's previous write (counter not recorded)
};

// True when sector j of `cand` (a candidate plaintext) encrypted under slot
// `ref` starts with ref's fingerprint: then that sector's plaintext is the
// one `ref` wrote. `dec_ref` is the data decrypted under `ref`, so ref's
// keystream is data ^ dec_ref.
bool Vouches(const format::Slot& ref, const uint8_t* dec_ref, const uint8_t* data, const uint8_t* cand,
             uint32_t j) {
  const size_t o = size_t{j} * kSector;
  uint8_t c[kFingerprintSize];
  for (size_t i = 0; i < kFingerprintSize; ++i) c[i] = cand[o + i] ^ data[o + i] ^ dec_ref[o + i];
  return std::memcmp(c, ref.fingerprints.data() + size_t{j} * kFingerprintSize, kFingerprintSize) == 0;
}

void CopySector(uint8_t* to, const uint8_t* from, uint32_t j) {
  std::memcpy(to + size_t{j} * kSector, from + size_t{j} * kSector, kSector);
}

// The nonces to try: the derived nonces of the crashed run's writes newer
// than both slots (lost slots: the likeliest), then those of its writes
// between the slots and the base (slots overwritten since), then the
// slots' base (the last write of an earlier run).
std::vector<Candidate> Candidates(const TornBlockInput& in, const std::vector<int>& known) {
  std::vector<Candidate> out;
  uint64_t vmax = 0, vmin = ~uint64_t{0};
  for (int k : known) {
    vmax = std::max(vmax, in.slots[k].ver);
    vmin = std::min(vmin, in.slots[k].ver);
  }
  std::vector<uint64_t> vers;
  for (uint64_t v = vmax + 1; v <= vmax + kLostWriteWindow; ++v) vers.push_back(v);
  for (uint64_t v = vmax; v + kLostWriteWindow > vmin && v >= 1; --v) vers.push_back(v);
  if (in.chunk_salt != 0) {
    for (uint64_t v : vers) {
      for (uint64_t salt : in.run_salts) {
        if (salt == 0) continue;
        for (uint32_t g : in.generations) out.push_back({g, format::DeriveNonce(salt, in.chunk_salt, in.block, v), v});
      }
    }
  }
  for (int k : known) {
    const format::Slot& s = in.slots[k];
    if (s.base_nonce != crypto::Nonce{}) out.push_back({s.base_generation, s.base_nonce, 0});
  }
  std::vector<Candidate> unique;  // a nonce seen twice (e.g. equal salts) is tried once
  for (const auto& c : out) {
    bool seen = std::any_of(unique.begin(), unique.end(),
                            [&](const Candidate& u) { return u.generation == c.generation && u.nonce == c.nonce; });
    for (int k : known) seen = seen || (in.slots[k].nonce == c.nonce && in.slots[k].generation == c.generation);
    if (!seen) unique.push_back(c);
  }
  return unique;
}

// Does a slot's tag authenticate `plain`? (Informative: logged.)
Result<bool> Authenticated(const TornBlockInput& in, const std::vector<int>& known,
                           const std::array<std::vector<uint8_t>, 2>& dec, const uint8_t* plain) {
  std::vector<uint8_t> sealed(kBlock), out(kBlock);
  for (int k : known) {
    for (size_t i = 0; i < kBlock; ++i) sealed[i] = plain[i] ^ in.data[i] ^ dec[k][i];
    CFS_ASSIGN_OR_RETURN(bool ok, in.codec->Open(in.chunk, in.file_block, in.slots[k], sealed, out.data()));
    if (ok) return true;
  }
  return false;
}

}  // namespace

Result<TornBlockResult> ReconstructTornBlock(const TornBlockInput& in, uint8_t* plain) {
  TornBlockResult r;
  const uint8_t* data = in.data.data();
  std::vector<int> known;  // slots ever written, newest first
  for (int k : {0, 1}) {
    if (in.slots[k].seq != 0) known.push_back(k);
  }
  if (known.size() == 2 && in.slots[1].seq > in.slots[0].seq) std::swap(known[0], known[1]);
  std::array<std::vector<uint8_t>, 2> dec;
  for (int k : known) {
    dec[k].resize(kBlock);
    CFS_RETURN_IF_ERROR(in.codec->RecoverPlaintext(in.chunk, in.slots[k], in.data, dec[k].data()));
    r.max_ver = std::max(r.max_ver, in.slots[k].ver);
  }
  std::array<bool, kSectors> done{};
  uint32_t left = kSectors;
  for (uint32_t j = 0; j < kSectors; ++j) {
    for (int k : known) {
      if (!format::SectorMatches(in.slots[k], data, j)) continue;
      CopySector(plain, dec[k].data(), j);
      done[j] = true;
      --left;
      ++r.from_slots;
      break;
    }
  }
  // A sector of zeros on disk is a host hole: no write's data reached it,
  // so it is still what the block held as a hole (never written or
  // punched): zeros. (A ciphertext sector of zeros: probability 2^-4096.)
  for (uint32_t j = 0; j < kSectors; ++j) {
    const uint8_t* p = data + size_t{j} * kSector;
    if (done[j] || std::any_of(p, p + kSector, [](uint8_t x) { return x != 0; })) continue;
    std::memset(plain + size_t{j} * kSector, 0, kSector);
    done[j] = true;
    --left;
    ++r.holes;
  }
  // Sectors of writes whose slots are gone: decrypt under each nameable
  // nonce; keep a sector when a slot's fingerprint vouches for its plaintext.
  std::vector<uint8_t> cand(kBlock), best(kBlock);
  uint32_t best_hits = 0;
  for (const Candidate& c : left ? Candidates(in, known) : std::vector<Candidate>{}) {
    CFS_RETURN_IF_ERROR(in.codec->RecoverPlaintext(in.chunk, c.generation, c.nonce, in.data, cand.data()));
    uint32_t hits = 0;
    for (uint32_t j = 0; j < kSectors; ++j) {
      if (done[j]) continue;
      for (int k : known) {
        if (!Vouches(in.slots[k], dec[k].data(), data, cand.data(), j)) continue;
        CopySector(plain, cand.data(), j);
        done[j] = true;
        --left;
        ++hits;
        break;
      }
    }
    r.verified += hits;
    if (hits) r.max_ver = std::max(r.max_ver, c.ver);
    if (hits > best_hits) {
      best_hits = hits;
      best = cand;
    }
    if (!left) break;
  }
  if (left) {
    // Nothing vouches for these sectors (changed by an unsynced write, or
    // damaged): decrypt them under the lost write found above, else under
    // the next write's nonce, else under the newest slot. Noise if wrong.
    if (!best_hits) {
      auto guess = Candidates(in, known);
      auto next = std::find_if(guess.begin(), guess.end(), [](const Candidate& c) { return c.ver != 0; });
      if (next != guess.end()) {
        CFS_RETURN_IF_ERROR(in.codec->RecoverPlaintext(in.chunk, next->generation, next->nonce, in.data, best.data()));
      } else if (!known.empty()) {
        best = dec[known[0]];
      }
    }
    for (uint32_t j = 0; j < kSectors; ++j) {
      if (!done[j]) CopySector(plain, best.data(), j);
    }
    r.unverified = left;
  }
  CFS_ASSIGN_OR_RETURN(r.authenticated, Authenticated(in, known, dec, plain));
  return r;
}

}  // namespace cfs::store
