// Result<T>: a value or a non-OK Status.
// Thread safety: a value type, like T.
#pragma once

#include <cassert>
#include <cstdlib>
#include <utility>
#include <variant>

#include "common/status.h"

namespace cfs {

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}            // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {      // NOLINT: implicit by design
    if (std::get<Status>(v_).ok()) std::abort();       // an OK status carries no value
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(v_); }

  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }  // std::move(*r) moves
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace cfs

// CFS_ASSIGN_OR_RETURN(auto x, Expr()): x = value, or return the error.
#define CFS_ASSIGN_OR_RETURN(lhs, expr) \
  CFS_ASSIGN_OR_RETURN_IMPL(CFS_CONCAT(cfs_result_, __LINE__), lhs, expr)
#define CFS_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()
