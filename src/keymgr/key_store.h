// KeyStore: the persistent state of one region's KMS, region/kms/keys.json
// (docs/format/keystore.md): keys with their wrapped material versions, and
// aliases. Every change is read-modify-write under an exclusive flock on
// region/kms/keys.lock and replaces the file atomically (temp, fsync,
// rename, directory fsync), so concurrent cipherfs processes never lose an
// update and a crash leaves the old or the new state.
// Format 2 adds rotation settings, the key policy and grants per key (an
// older reader would drop them on rewrite, hence the bump); format 1 files
// are read and rewritten as 2.
// Thread safety: KeyStore methods may be called concurrently from threads
// and processes (the flock serializes them); KeyStoreData is a value.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/encoding.h"
#include "common/result.h"
#include "keymgr/identifiers.h"

namespace cfs::keymgr {

inline constexpr int kKeyStoreFormat = 2;
inline constexpr size_t kMaxKeyStoreSize = 64 << 20;

enum class KeyState { kEnabled, kDisabled, kPendingDeletion };
enum class KeyManagerType { kCustomer, kAws };
std::string_view KeyStateName(KeyState s);          // Enabled | Disabled | PendingDeletion
std::string_view KeyManagerName(KeyManagerType m);  // CUSTOMER | AWS

struct MaterialVersion {
  uint32_t version = 0;      // 1, 2, ... (named by ciphertext blobs)
  std::string material_id;   // 64 lowercase hex (KeyMaterialId)
  Bytes wrapped;             // nonce || material || tag under the root key
  int64_t created = 0;       // unix seconds
};

// A grant: lets `grantee_principal` (a local user) call `operations` on one
// key, optionally only with an encryption context equal to / containing
// the constraint's pairs.
struct GrantRecord {
  std::string grant_id;     // 64 lowercase hex
  std::string grant_token;  // opaque, returned by CreateGrant (RetireGrant takes it)
  std::string name;         // optional; same name + parameters = same grant
  std::string grantee_principal;   // arn:cipherfs:iam::<account>:user/<name> or :root
  std::string retiring_principal;  // optional, same forms
  std::string issuing_account;
  std::vector<std::string> operations;  // Decrypt, Encrypt, GenerateDataKey, ...
  std::optional<EncryptionContext> ec_equals;
  std::optional<EncryptionContext> ec_subset;
  int64_t creation_date = 0;
};

struct KeyRecord {
  std::string key_id;        // UUID v4
  std::string arn;
  std::string description;
  int64_t creation_date = 0;
  KeyState state = KeyState::kEnabled;
  KeyManagerType manager = KeyManagerType::kCustomer;
  std::optional<int64_t> deletion_date;  // PendingDeletion only
  uint32_t current_version = 0;
  std::vector<MaterialVersion> versions;
  bool rotation_enabled = false;
  uint32_t rotation_period_days = 365;
  std::optional<int64_t> next_rotation_date;  // while rotation_enabled
  uint32_t on_demand_rotations = 0;
  std::string policy;  // the key policy document (JSON text); never empty once created
  std::vector<GrantRecord> grants;
  const MaterialVersion* FindVersion(uint32_t v) const;
};

struct AliasRecord {
  std::string name;          // alias/...
  std::string target_key_id;
  int64_t creation_date = 0;
  int64_t last_updated = 0;
};

struct KeyStoreData {
  std::string region;
  std::string account;
  std::vector<KeyRecord> keys;
  std::vector<AliasRecord> aliases;
  KeyRecord* FindKey(const std::string& key_id);
  const KeyRecord* FindKey(const std::string& key_id) const;
  const AliasRecord* FindAlias(const std::string& name) const;
};

std::string SerializeKeyStore(const KeyStoreData& data);
// DataLoss naming `file_name` for malformed content; Unimplemented for a
// newer format.
Result<KeyStoreData> ParseKeyStore(std::string_view text, const std::string& file_name);

class KeyStore {
 public:
  // `kms_dir` must exist.
  explicit KeyStore(std::string kms_dir);

  // The current state (under a shared lock). A missing file reads as empty
  // data (region and account unset).
  Result<KeyStoreData> Read() const;

  // Runs `change` on the current state under the exclusive lock; if it
  // returns OK, the new state is written durably before Update returns. If
  // it fails, nothing is written and its Status is returned.
  Status Update(const std::function<Status(KeyStoreData*)>& change);

  std::string path() const { return dir_ + "/keys.json"; }

  // Fault injection for the crash sweep (tests only): the next write stops
  // dead at `step` as if the process died there, leaving the files as they
  // are: 0 after creating the temp file, 1 after writing half of it, 2 after
  // writing all of it, 3 after its fsync, 4 after the rename (before the
  // directory fsync). -1 (default) = no fault. Update then returns Internal.
  void SetCrashPointForTest(int step) { crash_at_ = step; }
  static constexpr int kCrashPoints = 5;

 private:
  Status WriteDurably(const std::string& text);
  Result<KeyStoreData> ReadUnlocked() const;
  std::string dir_;
  int crash_at_ = -1;
};

}  // namespace cfs::keymgr
