// Default implementations of the later KeyManager calls: unsupported.
#include "keymgr/key_manager.h"

#include "keymgr/kms_error.h"

namespace cfs::keymgr {
namespace {

Status Unsupported(const char* call) {
  return KmsError(KmsErrorType::kUnsupportedOperation, std::string(call) + " is not supported by this key manager");
}

}  // namespace

Status KeyManager::UpdateAlias(const std::string&, const std::string&) { return Unsupported("UpdateAlias"); }
Status KeyManager::DeleteAlias(const std::string&) { return Unsupported("DeleteAlias"); }
Result<KeyMetadata> KeyManager::ScheduleKeyDeletion(const std::string&, int) {
  return Unsupported("ScheduleKeyDeletion");
}
Result<KeyMetadata> KeyManager::CancelKeyDeletion(const std::string&) { return Unsupported("CancelKeyDeletion"); }
Status KeyManager::EnableKeyRotation(const std::string&, std::optional<int>) {
  return Unsupported("EnableKeyRotation");
}
Status KeyManager::DisableKeyRotation(const std::string&) { return Unsupported("DisableKeyRotation"); }
Result<RotationStatus> KeyManager::GetKeyRotationStatus(const std::string&) {
  return Unsupported("GetKeyRotationStatus");
}
Result<std::string> KeyManager::RotateKeyOnDemand(const std::string&) { return Unsupported("RotateKeyOnDemand"); }
Result<GenerateDataKeyResult> KeyManager::GenerateDataKeyWithoutPlaintext(const std::string&,
                                                                          const EncryptionContext&, size_t) {
  return Unsupported("GenerateDataKeyWithoutPlaintext");
}
Result<CreateGrantResult> KeyManager::CreateGrant(const CreateGrantRequest&) { return Unsupported("CreateGrant"); }
Result<std::vector<GrantListEntry>> KeyManager::ListGrants(const std::string&) { return Unsupported("ListGrants"); }
Status KeyManager::RevokeGrant(const std::string&, const std::string&) { return Unsupported("RevokeGrant"); }
Status KeyManager::RetireGrant(const RetireGrantRequest&) { return Unsupported("RetireGrant"); }
Result<std::string> KeyManager::GetKeyPolicy(const std::string&) { return Unsupported("GetKeyPolicy"); }
Status KeyManager::PutKeyPolicy(const std::string&, const std::string&) { return Unsupported("PutKeyPolicy"); }
Result<std::string> KeyManager::ReadAuditLog() { return Unsupported("ReadAuditLog"); }
Result<AuditVerifyReport> KeyManager::VerifyAuditLog() { return Unsupported("VerifyAuditLog"); }

}  // namespace cfs::keymgr
