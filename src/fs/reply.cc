// SendReply: the one place a Result becomes a FUSE reply.
#include "fs/reply.h"

#include <cerrno>

#include "common/log.h"

namespace cfs::fs {
namespace {

template <class... Ts>
struct Overloaded : Ts... { using Ts::operator()...; };
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

int ErrnoOf(const Status& s) {
  int err = s.sys_errno();
  if (err <= 0) err = EIO;
  // Never EINTR to a database, never ENOSYS (FUSE would take it as
  // "unimplemented forever" and, for fsync/flush, as success).
  if (err == EINTR || err == ENOSYS) err = EIO;
  if (err == EIO) log::Debug("fs: EIO: {}", s.ToString());
  return err;
}

}  // namespace

int SendReply(fuse_req_t req, const Result<Reply>& result) {
  if (!result.ok()) return fuse_reply_err(req, ErrnoOf(result.status()));
  return std::visit(
      Overloaded{
          [&](const ReplyEntry& r) { return fuse_reply_entry(req, &r.e); },
          [&](const ReplyAttr& r) { return fuse_reply_attr(req, &r.st, r.timeout); },
          [&](const ReplyOpen& r) { return fuse_reply_open(req, &r.fi); },
          [&](const ReplyCreate& r) { return fuse_reply_create(req, &r.e, &r.fi); },
          [&](const ReplyWrite& r) { return fuse_reply_write(req, r.count); },
          [&](const ReplyBuf& r) { return fuse_reply_buf(req, static_cast<const char*>(r.data), r.size); },
          [&](const ReplyBytes& r) { return fuse_reply_buf(req, r.data.data(), r.data.size()); },
          [&](const ReplyReadlink& r) { return fuse_reply_readlink(req, r.target.c_str()); },
          [&](const ReplyStatfs& r) { return fuse_reply_statfs(req, &r.st); },
          [&](const ReplyXattrSize& r) { return fuse_reply_xattr(req, r.size); },
          [&](const ReplyLseek& r) { return fuse_reply_lseek(req, r.offset); },
          [&](const ReplyOk&) { return fuse_reply_err(req, 0); },
          [&](const ReplyNone&) {
            fuse_reply_none(req);
            return 0;
          },
          [&](const ReplyLater&) { return 0; },
      },
      result.value());
}

}  // namespace cfs::fs
