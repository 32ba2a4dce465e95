// libFuzzer target for the audit log and key policy parsers: an audit line,
// a whole log with a head (verification), and a key policy document. Any
// input must parse or give a clean error; never crash. A line that parses
// must verify as a one-line log when its prev_hash is the genesis hash.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/secret_bytes.h"
#include "keymgr/access_policy.h"
#include "keymgr/audit_log.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cfs::keymgr;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto line = ParseAuditLine(text);
  if (line.ok() && text.find('\n') == std::string_view::npos && line->prev_hash == std::string(64, '0')) {
    std::string log(text);
    log += "\n";
    AuditVerifyReport r = VerifyAuditText(log, "", nullptr);
    if (r.lines != 1 || !r.ok()) std::abort();
  }
  static const cfs::crypto::MacKey* key = [] {
    cfs::SecretBytes k(32);
    return new cfs::crypto::MacKey(k);
  }();
  size_t split = text.find('\x01');
  std::string_view log = split == std::string_view::npos ? text : text.substr(0, split);
  std::string_view head = split == std::string_view::npos ? std::string_view() : text.substr(split + 1);
  AuditVerifyReport report = VerifyAuditText(log, head, key);
  if (report.lines > size + 1) std::abort();
  if (ValidateKeyPolicy(text).ok()) {
    (void)EvaluatePolicy(text, "arn:cipherfs:iam::123456789012:user/u", "kms:Decrypt");
  }
  (void)NormalizePrincipal(text, "123456789012");
  return 0;
}
