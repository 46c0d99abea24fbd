// TEMPORARY until capabilities/error.h has the propagation macros (merged
// from the error-macros branch); then this header goes.
#pragma once
#include <utility>
#include "capabilities/error.h"
#ifndef CAPSA_TRY
#define CAPSA_CORE_CAT2(a, b) a##b
#define CAPSA_CORE_CAT(a, b) CAPSA_CORE_CAT2(a, b)
#define CAPSA_TRY(expr)                                                      \
  do {                                                                       \
    auto&& capsa_try_r = (expr);                                             \
    if (!capsa_try_r) return std::unexpected(std::move(capsa_try_r.error())); \
  } while (false)
#define CAPSA_ASSIGN_OR_RETURN(lhs, expr) \
  CAPSA_CORE_AOR(CAPSA_CORE_CAT(capsa_aor_, __LINE__), lhs, expr)
#define CAPSA_CORE_AOR(tmp, lhs, expr)                        \
  auto tmp = (expr);                                          \
  if (!tmp) return std::unexpected(std::move(tmp.error())); \
  lhs = std::move(*tmp)
#endif
