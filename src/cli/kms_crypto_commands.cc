// `cipherfs kms encrypt|decrypt|re-encrypt|generate-data-key[-without-plaintext]`:
// binary inputs as fileb://PATH or base64, outputs base64 (cloud CLI shapes).
#include <fmt/format.h>

#include "cli/kms_commands.h"
#include "keymgr/kms_error.h"

namespace cfs::cli {
namespace {

using nlohmann::json;

Status CheckAlgorithm(const std::string& algorithm) {
  if (algorithm == "SYMMETRIC_DEFAULT") return Status::Ok();
  return keymgr::KmsError(keymgr::KmsErrorType::kValidation,
                          fmt::format("EncryptionAlgorithm {} is not valid for a symmetric key; use SYMMETRIC_DEFAULT",
                                      algorithm.substr(0, 64)));
}

std::string B64(ByteView b) { return Base64Encode(b); }

}  // namespace

Status KmsEncrypt(Context& ctx, const KmsArgs& a) {
  CFS_RETURN_IF_ERROR(CheckAlgorithm(a.encryption_algorithm));
  CFS_ASSIGN_OR_RETURN(Bytes plaintext, ReadBinaryArg("--plaintext", a.plaintext));
  CFS_ASSIGN_OR_RETURN(keymgr::EncryptionContext ec, ParseEncryptionContextArg(a.encryption_context));
  SecretBytes secret(plaintext.data(), plaintext.size());
  SecureWipe(plaintext.data(), plaintext.size());
  CFS_ASSIGN_OR_RETURN(auto kms, ctx.open_kms(ctx.config.region));
  CFS_ASSIGN_OR_RETURN(keymgr::EncryptResult r, kms->Encrypt(a.key_id, secret, ec));
  json j{{"CiphertextBlob", B64(r.ciphertext_blob)},
         {"KeyId", r.key_arn},
         {"EncryptionAlgorithm", "SYMMETRIC_DEFAULT"},
         {"KeyMaterialId", r.key_material_id}};
  return KmsPrint(ctx, a, j, B64(r.ciphertext_blob) + "\n");
}

Status KmsDecrypt(Context& ctx, const KmsArgs& a) {
  CFS_RETURN_IF_ERROR(CheckAlgorithm(a.encryption_algorithm));
  CFS_ASSIGN_OR_RETURN(Bytes blob, ReadBinaryArg("--ciphertext-blob", a.ciphertext_blob));
  CFS_ASSIGN_OR_RETURN(keymgr::EncryptionContext ec, ParseEncryptionContextArg(a.encryption_context));
  CFS_ASSIGN_OR_RETURN(auto kms, ctx.open_kms(ctx.config.region));
  CFS_ASSIGN_OR_RETURN(keymgr::DecryptResult r, kms->Decrypt(blob, ec, a.opt_key_id));
  std::string plain = B64(r.plaintext.UnsafeSpan());
  json j{{"KeyId", r.key_arn},
         {"Plaintext", plain},
         {"EncryptionAlgorithm", "SYMMETRIC_DEFAULT"},
         {"KeyMaterialId", r.key_material_id}};
  Status s = KmsPrint(ctx, a, j, plain + "\n");
  SecureWipe(plain.data(), plain.size());
  return s;
}

Status KmsReEncrypt(Context& ctx, const KmsArgs& a) {
  CFS_ASSIGN_OR_RETURN(Bytes blob, ReadBinaryArg("--ciphertext-blob", a.ciphertext_blob));
  CFS_ASSIGN_OR_RETURN(keymgr::EncryptionContext source_ec, ParseEncryptionContextArg(a.source_encryption_context));
  CFS_ASSIGN_OR_RETURN(keymgr::EncryptionContext dest_ec, ParseEncryptionContextArg(a.destination_encryption_context));
  CFS_ASSIGN_OR_RETURN(auto kms, ctx.open_kms(ctx.config.region));
  std::optional<std::string> source_arn;
  if (a.source_key_id) {
    CFS_ASSIGN_OR_RETURN(keymgr::KeyMetadata m, kms->DescribeKey(*a.source_key_id));
    source_arn = m.arn;
  }
  CFS_ASSIGN_OR_RETURN(keymgr::ReEncryptResult r, kms->ReEncrypt(blob, source_ec, a.destination_key_id, dest_ec));
  if (source_arn && *source_arn != r.source_key_arn) {
    return keymgr::KmsError(keymgr::KmsErrorType::kIncorrectKey,
                            "The key ID in the request does not identify the key that encrypted the ciphertext");
  }
  json j{{"CiphertextBlob", B64(r.ciphertext_blob)},
         {"SourceKeyId", r.source_key_arn},
         {"KeyId", r.key_arn},
         {"SourceEncryptionAlgorithm", "SYMMETRIC_DEFAULT"},
         {"DestinationEncryptionAlgorithm", "SYMMETRIC_DEFAULT"},
         {"SourceKeyMaterialId", r.source_key_material_id},
         {"DestinationKeyMaterialId", r.destination_key_material_id}};
  return KmsPrint(ctx, a, j, B64(r.ciphertext_blob) + "\n");
}

Status KmsGenerateDataKey(Context& ctx, const KmsArgs& a, bool with_plaintext) {
  if (a.key_spec && a.number_of_bytes) {
    return keymgr::KmsError(keymgr::KmsErrorType::kValidation, "Give either --key-spec or --number-of-bytes, not both");
  }
  size_t bytes = 32;
  if (a.key_spec) {
    if (*a.key_spec == "AES_128") bytes = 16;
    else if (*a.key_spec != "AES_256") {
      return keymgr::KmsError(keymgr::KmsErrorType::kValidation, "KeySpec must be AES_256 or AES_128");
    }
  }
  if (a.number_of_bytes) {
    if (*a.number_of_bytes < 1 || *a.number_of_bytes > 1024) {
      return keymgr::KmsError(keymgr::KmsErrorType::kValidation, "NumberOfBytes must be 1 to 1024");
    }
    bytes = static_cast<size_t>(*a.number_of_bytes);
  }
  CFS_ASSIGN_OR_RETURN(keymgr::EncryptionContext ec, ParseEncryptionContextArg(a.encryption_context));
  CFS_ASSIGN_OR_RETURN(auto kms, ctx.open_kms(ctx.config.region));
  Result<keymgr::GenerateDataKeyResult> r = with_plaintext ? kms->GenerateDataKey(a.key_id, ec, bytes)
                                                           : kms->GenerateDataKeyWithoutPlaintext(a.key_id, ec, bytes);
  CFS_RETURN_IF_ERROR(r.status());
  json j{{"CiphertextBlob", B64(r->ciphertext_blob)}, {"KeyId", r->key_arn}, {"KeyMaterialId", r->key_material_id}};
  std::string plain;
  if (with_plaintext) {
    plain = B64(r->plaintext.UnsafeSpan());
    j["Plaintext"] = plain;
  }
  Status s = KmsPrint(ctx, a, j, B64(r->ciphertext_blob) + (with_plaintext ? "\t" + plain : "") + "\n");
  SecureWipe(plain.data(), plain.size());
  return s;
}

}  // namespace cfs::cli
