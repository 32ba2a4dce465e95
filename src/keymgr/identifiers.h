// KMS identifiers and the encryption context encoding (docs/format/keystore.md):
// key ids (UUID v4), key and alias ARNs, alias name rules, the parsing of a
// key identifier in any of its four forms, and the canonical, unambiguous
// byte encoding of an encryption context that is bound as AAD.
// Thread safety: pure functions (NewUuidV4 draws from the thread-safe DRBG).
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "common/encoding.h"
#include "common/result.h"

namespace cfs::keymgr {

// Non-secret string pairs bound to a ciphertext; std::map orders keys
// bytewise (char_traits<char> compares as unsigned char), the canonical order.
using EncryptionContext = std::map<std::string, std::string>;
inline constexpr size_t kMaxEncryptionContextBytes = 8192;
inline constexpr std::string_view kManagedRdsAlias = "alias/aws/rds";

// u32be(N) || for each pair by key: u32be(len k) || k || u32be(len v) || v.
// ValidationException: an empty key, invalid UTF-8, or an encoding over
// kMaxEncryptionContextBytes.
Result<Bytes> EncodeEncryptionContext(const EncryptionContext& context);

// Appends u32be(len) || bytes.
void AppendLengthPrefixed(Bytes* out, ByteView bytes);
void AppendU32Be(Bytes* out, uint32_t v);

std::string NewUuidV4();
bool IsUuid(std::string_view s);  // lowercase 8-4-4-4-12 hex

std::string KeyArn(std::string_view region, std::string_view account, std::string_view key_id);
std::string AliasArn(std::string_view region, std::string_view account, std::string_view alias_name);

// ValidationException unless `name` is alias/<1-250 of [a-zA-Z0-9:/_-]>.
// With !allow_reserved also refuses the reserved alias/aws/ prefix.
Status ValidateAliasName(std::string_view name, bool allow_reserved);

// A key identifier as a caller gave it.
struct KeyRef {
  enum class Form { kKeyId, kKeyArn, kAliasName, kAliasArn };
  Form form = Form::kKeyId;
  std::string region;      // ARN forms only
  std::string account;     // ARN forms only
  std::string key_id;      // key forms
  std::string alias_name;  // alias forms ("alias/...")
  bool is_alias() const { return form == Form::kAliasName || form == Form::kAliasArn; }
};

// NotFoundException "Invalid keyId '...'" for anything that is none of the
// four forms.
Result<KeyRef> ParseKeyIdentifier(std::string_view text);

}  // namespace cfs::keymgr
