// The region root key: 32 random bytes in region/kms/root.key, owner-only
// (mode 0600, owned by the effective user). It wraps every KMS key material
// version of the region. Created on first use; refused with a clear error
// when its mode, owner, type or size is wrong. Alternatively the root key is
// derived from a passphrase: region/kms/root.scrypt (owner-only as well)
// holds the scrypt salt and parameters and a check value that tells a wrong
// passphrase from a right one; the key itself is never stored.
// Thread safety: reentrant; concurrent first uses by several processes
// agree on one key (create by link(2), which cannot overwrite).
#pragma once

#include <string>

#include "common/result.h"
#include "common/secret_bytes.h"
#include "crypto/kdf.h"

namespace cfs::keymgr {

inline constexpr size_t kRootKeySize = 32;

// Reads the root key at `path`, creating it (and nothing else) when absent
// and `create` is set. Errors: PermissionDenied when the file is readable or
// writable by group/others or owned by another user; DataLoss when it is not
// a regular file of 32 bytes; NotFound when absent and !create.
Result<SecretBytes> LoadOrCreateRootKey(const std::string& path, bool create);

// The root key scrypt(passphrase, salt) with the parameters in `params_path`
// (root.scrypt), creating that file (fresh salt) when absent and `create`.
// Errors: PermissionDenied for a wrong passphrase or a file not owner-only;
// DataLoss for a malformed file; NotFound when absent and !create;
// InvalidArgument for a passphrase shorter than 8 bytes.
// `new_params` are used only when creating (the file records them).
Result<SecretBytes> LoadOrCreatePassphraseRootKey(const std::string& params_path, std::string_view passphrase,
                                                  bool create, const crypto::ScryptParams& new_params = {});

}  // namespace cfs::keymgr
