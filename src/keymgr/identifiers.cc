#include "keymgr/identifiers.h"

#include <fmt/format.h>

#include "crypto/random.h"
#include "keymgr/kms_error.h"

namespace cfs::keymgr {
namespace {

bool IsValidUtf8(std::string_view s) {
  static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
  size_t i = 0;
  while (i < s.size()) {
    uint8_t c = static_cast<uint8_t>(s[i]);
    size_t n;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c >> 5) == 0x6) {
      n = 1, cp = c & 0x1f;
    } else if ((c >> 4) == 0xe) {
      n = 2, cp = c & 0x0f;
    } else if ((c >> 3) == 0x1e) {
      n = 3, cp = c & 0x07;
    } else {
      return false;
    }
    if (s.size() - i <= n) return false;
    for (size_t k = 1; k <= n; ++k) {
      uint8_t cc = static_cast<uint8_t>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += n + 1;
  }
  return true;
}

bool IsHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool IsAliasChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ':' || c == '/' ||
         c == '_' || c == '-';
}

bool IsRegionOrAccountPart(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

}  // namespace

void AppendU32Be(Bytes* out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<uint8_t>(v >> shift));
}

void AppendLengthPrefixed(Bytes* out, ByteView bytes) {
  AppendU32Be(out, static_cast<uint32_t>(bytes.size()));
  out->insert(out->end(), bytes.begin(), bytes.end());
}

Result<Bytes> EncodeEncryptionContext(const EncryptionContext& context) {
  Bytes out;
  AppendU32Be(&out, static_cast<uint32_t>(context.size()));
  for (const auto& [k, v] : context) {
    if (k.empty()) return KmsError(KmsErrorType::kValidation, "encryption context keys must not be empty");
    if (!IsValidUtf8(k) || !IsValidUtf8(v)) {
      return KmsError(KmsErrorType::kValidation, "encryption context keys and values must be valid UTF-8");
    }
    if (k.size() + v.size() + out.size() + 8 > kMaxEncryptionContextBytes) {
      return KmsError(KmsErrorType::kValidation,
                      fmt::format("encryption context exceeds {} bytes", kMaxEncryptionContextBytes));
    }
    AppendLengthPrefixed(&out, AsBytes(k));
    AppendLengthPrefixed(&out, AsBytes(v));
  }
  return out;
}

std::string NewUuidV4() {
  auto b = crypto::RandomArray<16>();
  b[6] = static_cast<uint8_t>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<uint8_t>((b[8] & 0x3f) | 0x80);
  std::string h = HexEncode(b);
  return fmt::format("{}-{}-{}-{}-{}", h.substr(0, 8), h.substr(8, 4), h.substr(12, 4), h.substr(16, 4), h.substr(20));
}

bool IsUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i : {8u, 13u, 18u, 23u}) {
    if (s[i] != '-') return false;
  }
  return IsHex(s.substr(0, 8)) && IsHex(s.substr(9, 4)) && IsHex(s.substr(14, 4)) && IsHex(s.substr(19, 4)) &&
         IsHex(s.substr(24));
}

std::string KeyArn(std::string_view region, std::string_view account, std::string_view key_id) {
  return fmt::format("arn:cipherfs:kms:{}:{}:key/{}", region, account, key_id);
}

std::string AliasArn(std::string_view region, std::string_view account, std::string_view alias_name) {
  return fmt::format("arn:cipherfs:kms:{}:{}:{}", region, account, alias_name);
}

Status ValidateAliasName(std::string_view name, bool allow_reserved) {
  if (name.substr(0, 6) != "alias/") {
    return KmsError(KmsErrorType::kValidation, "Alias must start with the prefix \"alias/\"");
  }
  if (name.size() <= 6 || name.size() > 256) {
    return KmsError(KmsErrorType::kValidation, "Alias name must be 7 to 256 characters long");
  }
  for (char c : name) {
    if (!IsAliasChar(c)) {
      return KmsError(KmsErrorType::kValidation,
                      "Alias name may contain only letters, digits and the characters : / _ -");
    }
  }
  if (!allow_reserved && name.substr(0, 10) == "alias/aws/") {
    return KmsError(KmsErrorType::kValidation,
                    "Alias names beginning with \"alias/aws/\" are reserved for managed keys");
  }
  return Status::Ok();
}

Result<KeyRef> ParseKeyIdentifier(std::string_view text) {
  KeyRef ref;
  if (IsUuid(text)) {
    ref.form = KeyRef::Form::kKeyId;
    ref.key_id = std::string(text);
    return ref;
  }
  if (text.substr(0, 6) == "alias/" && ValidateAliasName(text, true).ok()) {
    ref.form = KeyRef::Form::kAliasName;
    ref.alias_name = std::string(text);
    return ref;
  }
  constexpr std::string_view kPrefix = "arn:cipherfs:kms:";
  if (text.substr(0, kPrefix.size()) == kPrefix) {
    std::string_view rest = text.substr(kPrefix.size());
    size_t c1 = rest.find(':');
    size_t c2 = c1 == std::string_view::npos ? c1 : rest.find(':', c1 + 1);
    if (c2 != std::string_view::npos) {
      ref.region = std::string(rest.substr(0, c1));
      ref.account = std::string(rest.substr(c1 + 1, c2 - c1 - 1));
      std::string_view resource = rest.substr(c2 + 1);
      bool parts_ok = IsRegionOrAccountPart(ref.region) && IsRegionOrAccountPart(ref.account);
      if (parts_ok && resource.substr(0, 4) == "key/" && IsUuid(resource.substr(4))) {
        ref.form = KeyRef::Form::kKeyArn;
        ref.key_id = std::string(resource.substr(4));
        return ref;
      }
      if (parts_ok && resource.substr(0, 6) == "alias/" && ValidateAliasName(resource, true).ok()) {
        ref.form = KeyRef::Form::kAliasArn;
        ref.alias_name = std::string(resource);
        return ref;
      }
    }
  }
  std::string shown(text.substr(0, 300));
  return KmsError(KmsErrorType::kNotFound, fmt::format("Invalid keyId '{}'", shown));
}

}  // namespace cfs::keymgr
