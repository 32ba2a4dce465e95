#include "keymgr/socket_key_manager.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "keymgr/kms_error.h"
#include "keymgr/kms_wire.h"

namespace cfs::keymgr {
namespace {

using nlohmann::json;

Bytes FromB64(const json& j, const char* field) {
  auto d = Base64Decode(j.at(field).get<std::string>());
  if (!d) throw std::invalid_argument(std::string(field) + " is not base64");
  return *d;
}

SecretBytes SecretFromB64(const json& j, const char* field) {
  Bytes b = FromB64(j, field);
  SecretBytes s(b.data(), b.size());
  SecureWipe(b.data(), b.size());
  return s;
}

Status Done(const Result<json>& r) { return r.status(); }

// Converts a Result's JSON with `f`, turning a malformed response into an
// Internal error rather than an exception.
template <typename T, typename F>
Result<T> Convert(Result<json> r, F f) {
  if (!r.ok()) return r.status();
  try {
    return f(*r);
  } catch (const std::exception& e) {
    return Internal(fmt::format("kmsd sent a malformed response ({})", e.what()));
  }
}

}  // namespace

Result<json> SocketKeyManager::Exchange(const std::string& request) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path_.size() >= sizeof(addr.sun_path)) return InvalidArgument("kmsd socket path too long");
  std::memcpy(addr.sun_path, socket_path_.c_str(), socket_path_.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::FromErrno(errno, "socket");
  timeval timeout{30, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    int e = errno;
    ::close(fd);
    return Unavailable(fmt::format("can't reach the kmsd at {} ({}); start it with: cipherfs kmsd --socket {}",
                                   socket_path_, std::strerror(e), socket_path_));
  }
  std::string out = request + "\n";
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::send(fd, out.data() + done, out.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  SecureWipe(out.data(), out.size());
  std::string in;
  char buf[8192];
  while (in.size() <= kMaxWireMessage && in.find('\n') == std::string::npos) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    in.append(buf, static_cast<size_t>(n));
  }
  SecureWipe(buf, sizeof buf);
  ::close(fd);
  if (done != out.size() || in.find('\n') == std::string::npos) {
    return Unavailable(fmt::format("the kmsd at {} closed the connection without an answer", socket_path_));
  }
  json response = json::parse(in.substr(0, in.find('\n')), nullptr, false);
  SecureWipe(in.data(), in.size());
  if (!response.is_object()) return Internal("kmsd sent a malformed response");
  if (response.contains("Result")) return response.at("Result");
  return StatusFromWire(response);
}

Result<json> SocketKeyManager::Call(const std::string& op, json params) {
  params["Operation"] = op;
  params["Region"] = region_;
  std::string text = params.dump();
  Result<json> r = Exchange(text);
  SecureWipe(text.data(), text.size());
  return r;
}

Result<KeyMetadata> SocketKeyManager::CreateKey(const CreateKeyRequest& request) {
  return Convert<KeyMetadata>(Call("CreateKey", {{"Description", request.description}}), MetadataFromWire);
}

Result<KeyMetadata> SocketKeyManager::DescribeKey(const std::string& key) {
  return Convert<KeyMetadata>(Call("DescribeKey", {{"KeyId", key}}), MetadataFromWire);
}

Result<std::vector<KeyListEntry>> SocketKeyManager::ListKeys() {
  return Convert<std::vector<KeyListEntry>>(Call("ListKeys", json::object()), [](const json& j) {
    std::vector<KeyListEntry> out;
    for (const auto& k : j.at("Keys")) out.push_back({k.at("KeyId"), k.at("KeyArn")});
    return out;
  });
}

Status SocketKeyManager::EnableKey(const std::string& key) { return Done(Call("EnableKey", {{"KeyId", key}})); }
Status SocketKeyManager::DisableKey(const std::string& key) { return Done(Call("DisableKey", {{"KeyId", key}})); }

Status SocketKeyManager::CreateAlias(const std::string& alias, const std::string& target) {
  return Done(Call("CreateAlias", {{"AliasName", alias}, {"TargetKeyId", target}}));
}

Status SocketKeyManager::UpdateAlias(const std::string& alias, const std::string& target) {
  return Done(Call("UpdateAlias", {{"AliasName", alias}, {"TargetKeyId", target}}));
}

Status SocketKeyManager::DeleteAlias(const std::string& alias) {
  return Done(Call("DeleteAlias", {{"AliasName", alias}}));
}

Result<std::vector<AliasListEntry>> SocketKeyManager::ListAliases(const std::optional<std::string>& key) {
  json params = json::object();
  if (key) params["KeyId"] = *key;
  return Convert<std::vector<AliasListEntry>>(Call("ListAliases", params), [](const json& j) {
    std::vector<AliasListEntry> out;
    for (const auto& a : j.at("Aliases")) {
      AliasListEntry e{a.at("AliasName"), a.at("AliasArn"), std::nullopt, a.at("CreationDate"), a.at("LastUpdatedDate")};
      if (a.contains("TargetKeyId")) e.target_key_id = a.at("TargetKeyId").get<std::string>();
      out.push_back(std::move(e));
    }
    return out;
  });
}

Result<EncryptResult> SocketKeyManager::Encrypt(const std::string& key, const SecretBytes& plaintext,
                                                const EncryptionContext& context) {
  std::string b64 = Base64Encode(plaintext.UnsafeSpan());
  Result<json> r = Call("Encrypt", {{"KeyId", key}, {"Plaintext", b64}, {"EncryptionContext", context}});
  SecureWipe(b64.data(), b64.size());
  return Convert<EncryptResult>(std::move(r), [](const json& j) {
    return EncryptResult{FromB64(j, "CiphertextBlob"), j.at("KeyId"), j.at("KeyMaterialId")};
  });
}

Result<GenerateDataKeyResult> SocketKeyManager::GenerateDataKey(const std::string& key,
                                                                const EncryptionContext& context, size_t n) {
  return Convert<GenerateDataKeyResult>(
      Call("GenerateDataKey", {{"KeyId", key}, {"EncryptionContext", context}, {"NumberOfBytes", n}}),
      [](const json& j) {
        return GenerateDataKeyResult{SecretFromB64(j, "Plaintext"), FromB64(j, "CiphertextBlob"), j.at("KeyId"),
                                     j.at("KeyMaterialId")};
      });
}

Result<GenerateDataKeyResult> SocketKeyManager::GenerateDataKeyWithoutPlaintext(const std::string& key,
                                                                                const EncryptionContext& context,
                                                                                size_t n) {
  return Convert<GenerateDataKeyResult>(
      Call("GenerateDataKeyWithoutPlaintext",
           {{"KeyId", key}, {"EncryptionContext", context}, {"NumberOfBytes", n}}),
      [](const json& j) {
        return GenerateDataKeyResult{SecretBytes(), FromB64(j, "CiphertextBlob"), j.at("KeyId"), j.at("KeyMaterialId")};
      });
}

Result<DecryptResult> SocketKeyManager::Decrypt(ByteView blob, const EncryptionContext& context,
                                                const std::optional<std::string>& key) {
  json params{{"CiphertextBlob", Base64Encode(blob)}, {"EncryptionContext", context}};
  if (key) params["KeyId"] = *key;
  return Convert<DecryptResult>(Call("Decrypt", params), [](const json& j) {
    return DecryptResult{SecretFromB64(j, "Plaintext"), j.at("KeyId"), j.at("KeyMaterialId")};
  });
}

Result<ReEncryptResult> SocketKeyManager::ReEncrypt(ByteView blob, const EncryptionContext& source_context,
                                                    const std::string& destination,
                                                    const EncryptionContext& destination_context) {
  return Convert<ReEncryptResult>(
      Call("ReEncrypt", {{"CiphertextBlob", Base64Encode(blob)}, {"SourceEncryptionContext", source_context},
                         {"DestinationKeyId", destination}, {"DestinationEncryptionContext", destination_context}}),
      [](const json& j) {
        return ReEncryptResult{FromB64(j, "CiphertextBlob"), j.at("SourceKeyId"), j.at("KeyId"),
                               j.at("SourceKeyMaterialId"), j.at("DestinationKeyMaterialId")};
      });
}

Result<KeyMetadata> SocketKeyManager::ScheduleKeyDeletion(const std::string& key, int days) {
  return Convert<KeyMetadata>(Call("ScheduleKeyDeletion", {{"KeyId", key}, {"PendingWindowInDays", days}}),
                              MetadataFromWire);
}

Result<KeyMetadata> SocketKeyManager::CancelKeyDeletion(const std::string& key) {
  return Convert<KeyMetadata>(Call("CancelKeyDeletion", {{"KeyId", key}}), MetadataFromWire);
}

Status SocketKeyManager::EnableKeyRotation(const std::string& key, std::optional<int> period) {
  json params{{"KeyId", key}};
  if (period) params["RotationPeriodInDays"] = *period;
  return Done(Call("EnableKeyRotation", params));
}

Status SocketKeyManager::DisableKeyRotation(const std::string& key) {
  return Done(Call("DisableKeyRotation", {{"KeyId", key}}));
}

Result<RotationStatus> SocketKeyManager::GetKeyRotationStatus(const std::string& key) {
  return Convert<RotationStatus>(Call("GetKeyRotationStatus", {{"KeyId", key}}), [](const json& j) {
    RotationStatus r;
    r.key_id = j.at("KeyId");
    r.rotation_enabled = j.at("KeyRotationEnabled");
    if (j.contains("RotationPeriodInDays")) r.rotation_period_days = j.at("RotationPeriodInDays").get<uint32_t>();
    if (j.contains("NextRotationDate")) r.next_rotation_date = j.at("NextRotationDate").get<int64_t>();
    return r;
  });
}

Result<std::string> SocketKeyManager::RotateKeyOnDemand(const std::string& key) {
  return Convert<std::string>(Call("RotateKeyOnDemand", {{"KeyId", key}}),
                              [](const json& j) { return j.at("KeyId").get<std::string>(); });
}

Result<CreateGrantResult> SocketKeyManager::CreateGrant(const CreateGrantRequest& r) {
  json params{{"KeyId", r.key_id}, {"GranteePrincipal", r.grantee_principal},
              {"RetiringPrincipal", r.retiring_principal}, {"Operations", r.operations}, {"Name", r.name}};
  if (r.ec_equals) params["EncryptionContextEquals"] = *r.ec_equals;
  if (r.ec_subset) params["EncryptionContextSubset"] = *r.ec_subset;
  return Convert<CreateGrantResult>(Call("CreateGrant", params), [](const json& j) {
    return CreateGrantResult{j.at("GrantId"), j.at("GrantToken")};
  });
}

Result<std::vector<GrantListEntry>> SocketKeyManager::ListGrants(const std::string& key) {
  return Convert<std::vector<GrantListEntry>>(Call("ListGrants", {{"KeyId", key}}), [](const json& j) {
    std::vector<GrantListEntry> out;
    for (const auto& g : j.at("Grants")) out.push_back(GrantFromWire(g));
    return out;
  });
}

Status SocketKeyManager::RevokeGrant(const std::string& key, const std::string& grant_id) {
  return Done(Call("RevokeGrant", {{"KeyId", key}, {"GrantId", grant_id}}));
}

Status SocketKeyManager::RetireGrant(const RetireGrantRequest& r) {
  json params = json::object();
  if (r.grant_token) params["GrantToken"] = *r.grant_token;
  if (r.key_id) params["KeyId"] = *r.key_id;
  if (r.grant_id) params["GrantId"] = *r.grant_id;
  return Done(Call("RetireGrant", params));
}

Result<std::string> SocketKeyManager::GetKeyPolicy(const std::string& key) {
  return Convert<std::string>(Call("GetKeyPolicy", {{"KeyId", key}}),
                              [](const json& j) { return j.at("Policy").get<std::string>(); });
}

Status SocketKeyManager::PutKeyPolicy(const std::string& key, const std::string& policy) {
  return Done(Call("PutKeyPolicy", {{"KeyId", key}, {"Policy", policy}}));
}

Result<std::string> SocketKeyManager::ReadAuditLog() {
  return Convert<std::string>(Call("ReadAuditLog", json::object()),
                              [](const json& j) { return j.at("Log").get<std::string>(); });
}

Result<AuditVerifyReport> SocketKeyManager::VerifyAuditLog() {
  return Convert<AuditVerifyReport>(Call("VerifyAuditLog", json::object()), [](const json& j) {
    return AuditVerifyReport{j.at("Lines").get<size_t>(), j.at("Problems").get<std::vector<std::string>>()};
  });
}

}  // namespace cfs::keymgr
