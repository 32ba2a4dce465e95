// AuditLog: region/kms/audit.log, append-only JSON lines, one per KMS call
// (docs/format/keystore.md section 4):
//   {"time","event_type","operation","caller_uid","user_name","key_arn",
//    "encryption_context","outcome","error_message","request_id","prev_hash"}
// prev_hash is the SHA-256 (hex) of the previous line's bytes (64 zeros for
// the first), so an edited, removed or reordered line breaks the chain. Every
// append also replaces region/kms/audit.head: the line count and the last
// line's hash, MACed with a key derived from the region root key, so a
// truncated log (lines cut from the end) is detected too, and nobody without
// the root key can re-seal an edited log. Never logs plaintext, data keys or
// ciphertext blobs.
// Thread safety: Append may be called concurrently from threads and
// processes (an flock on the log serializes appends); the parsers are pure.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/secret_bytes.h"
#include "crypto/mac.h"
#include "keymgr/identifiers.h"

namespace cfs::keymgr {

inline constexpr size_t kMaxAuditLine = 64 * 1024;

struct AuditEvent {
  std::string operation;   // CreateKey, Decrypt, ... (DeleteKey / RotateKey: service events)
  bool service_event = false;  // "AwsServiceEvent" (purge, automatic rotation) vs "AwsApiCall"
  uid_t caller_uid = 0;
  std::string user_name;
  std::string key_arn;     // empty when no key was resolved
  EncryptionContext encryption_context;
  std::string outcome;     // "Success" or the error name
  std::string error_message;  // empty on success
  std::string request_id;  // UUID v4
};

// One parsed line (time and prev_hash as written).
struct AuditRecord {
  std::string time;
  AuditEvent event;
  std::string prev_hash;
};

// DataLoss unless `line` is one well-formed audit line (no newline).
Result<AuditRecord> ParseAuditLine(std::string_view line);

struct AuditVerifyReport {
  size_t lines = 0;
  std::vector<std::string> problems;  // empty: the log verifies
  bool ok() const { return problems.empty(); }
};

// Checks the chain of `log_text` and, with `head_key`, that `head_text`
// (audit.head, empty if missing) seals its line count and last line.
AuditVerifyReport VerifyAuditText(std::string_view log_text, std::string_view head_text,
                                  const crypto::MacKey* head_key);

class AuditLog {
 public:
  // `head_key` (may be null: no head is written) seals audit.head.
  AuditLog(std::string path, std::shared_ptr<const crypto::MacKey> head_key);
  // Appends one line and fdatasyncs it, then replaces the head.
  Status Append(const AuditEvent& event);
  // The whole log and head (up to 256 MB), and their verification.
  Result<std::string> ReadAll() const;
  Result<AuditVerifyReport> Verify() const;
  const std::string& path() const { return path_; }
  std::string head_path() const;

 private:
  Result<size_t> CountLines(const std::string& last_hash) const;
  std::string path_;
  std::shared_ptr<const crypto::MacKey> head_key_;
};

}  // namespace cfs::keymgr
