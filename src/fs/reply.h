// Reply: what a FUSE handler answers, as a value. Handlers return
// Result<Reply>; SendReply turns it into exactly one fuse_reply_* call
// (errors through Status::sys_errno(), the single errno mapping).
// Thread safety: values; SendReply may be called from any worker thread.
#pragma once

#include <sys/statvfs.h>

#include <string>
#include <variant>

#include "common/result.h"
#include "fs/fuse_include.h"

namespace cfs::fs {

struct ReplyEntry { fuse_entry_param e; };
struct ReplyAttr { struct stat st; double timeout; };
struct ReplyOpen { fuse_file_info fi; };
struct ReplyCreate { fuse_entry_param e; fuse_file_info fi; };
struct ReplyWrite { size_t count; };
// Borrowed bytes: valid until the reply is sent (thread-local buffers).
struct ReplyBuf { const void* data; size_t size; };
struct ReplyBytes { std::string data; };
struct ReplyReadlink { std::string target; };
struct ReplyStatfs { struct statvfs st; };
struct ReplyXattrSize { size_t size; };
struct ReplyLseek { off_t offset; };
struct ReplyOk {};    // fuse_reply_err(0)
struct ReplyNone {};  // fuse_reply_none (forget)
struct ReplyLater {};  // nothing now: the request was handed on, whoever holds it replies

using Reply = std::variant<ReplyEntry, ReplyAttr, ReplyOpen, ReplyCreate, ReplyWrite, ReplyBuf, ReplyBytes,
                           ReplyReadlink, ReplyStatfs, ReplyXattrSize, ReplyLseek, ReplyOk, ReplyNone, ReplyLater>;

// Sends exactly one reply for `req`. Returns the libfuse result (negative
// errno if the kernel no longer waits, e.g. interrupted).
int SendReply(fuse_req_t req, const Result<Reply>& result);

}  // namespace cfs::fs
