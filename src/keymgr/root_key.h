// The region root key: 32 random bytes in region/kms/root.key, owner-only
// (mode 0600, owned by the effective user). It wraps every KMS key material
// version of the region. Created on first use; refused with a clear error
// when its mode, owner, type or size is wrong. (Issue 4 adds a passphrase
// source via scrypt.)
// Thread safety: reentrant; concurrent first uses by several processes
// agree on one key (create by link(2), which cannot overwrite).
#pragma once

#include <string>

#include "common/result.h"
#include "common/secret_bytes.h"

namespace cfs::keymgr {

inline constexpr size_t kRootKeySize = 32;

// Reads the root key at `path`, creating it (and nothing else) when absent
// and `create` is set. Errors: PermissionDenied when the file is readable or
// writable by group/others or owned by another user; DataLoss when it is not
// a regular file of 32 bytes; NotFound when absent and !create.
Result<SecretBytes> LoadOrCreateRootKey(const std::string& path, bool create);

}  // namespace cfs::keymgr
