// capsa — the control schema's enums (control.fbs) and the supervisor's.
//
// They agree value for value (checked here at compile time, so a new value
// added on one side only breaks the build), which makes a conversion a cast
// and lets `capsa audit` show the supervisor's own names. A value this
// build does not know (a newer supervisor answering) is named "unknown",
// never cast into an enum that has no such value.
#pragma once

#include <string_view>
#include <type_traits>

#include "control_generated.h"
#include "supervisor/audit/audit_log.h"
#include "supervisor/control/proc_fds.h"
#include "supervisor/supervisor.h"

namespace capsa::supervisor {

template <typename To, typename From>
constexpr To enum_cast(From v) noexcept {
  static_assert(std::is_same_v<std::underlying_type_t<To>, std::underlying_type_t<From>>);
  return static_cast<To>(static_cast<std::underlying_type_t<From>>(v));
}

static_assert(enum_cast<control::GrantOrigin>(GrantOrigin::kPolicy) == control::GrantOrigin::Policy);
static_assert(enum_cast<control::GrantOrigin>(GrantOrigin::kReturned) == control::GrantOrigin::Returned);
static_assert(enum_cast<control::GrantOrigin>(GrantOrigin::kAttenuated) == control::GrantOrigin::Attenuated);
static_assert(enum_cast<control::GrantOrigin>(GrantOrigin::kDelegated) == control::GrantOrigin::Delegated);
static_assert(control::GrantOrigin::MAX == control::GrantOrigin::Delegated);
static_assert(enum_cast<control::GrantState>(GrantState::kLive) == control::GrantState::Live);
static_assert(enum_cast<control::GrantState>(GrantState::kRevoked) == control::GrantState::Revoked);
static_assert(enum_cast<control::GrantState>(GrantState::kReleased) == control::GrantState::Released);
static_assert(control::GrantState::MAX == control::GrantState::Released);
static_assert(enum_cast<control::GrantKind>(GrantKind::kServed) == control::GrantKind::Served);
static_assert(enum_cast<control::GrantKind>(GrantKind::kServerEnd) == control::GrantKind::ServerEnd);
static_assert(enum_cast<control::GrantKind>(GrantKind::kDirectEnd) == control::GrantKind::DirectEnd);
static_assert(enum_cast<control::GrantKind>(GrantKind::kObject) == control::GrantKind::Object);
static_assert(control::GrantKind::MAX == control::GrantKind::Object);
static_assert(enum_cast<control::KernelVerdict>(KernelVerdict::kUnknown) == control::KernelVerdict::Unknown);
static_assert(enum_cast<control::KernelVerdict>(KernelVerdict::kHeld) == control::KernelVerdict::Held);
static_assert(enum_cast<control::KernelVerdict>(KernelVerdict::kNotHeld) == control::KernelVerdict::NotHeld);
static_assert(enum_cast<control::KernelVerdict>(KernelVerdict::kHeldByOther) ==
              control::KernelVerdict::HeldByOther);
static_assert(control::KernelVerdict::MAX == control::KernelVerdict::HeldByOther);

inline control::GrantOrigin to_wire(GrantOrigin o) { return enum_cast<control::GrantOrigin>(o); }
inline control::GrantState to_wire(GrantState s) { return enum_cast<control::GrantState>(s); }
inline control::KernelVerdict to_wire(KernelVerdict v) { return enum_cast<control::KernelVerdict>(v); }
inline control::GrantKind to_wire(GrantKind k) { return enum_cast<control::GrantKind>(k); }

inline std::string_view wire_name(control::GrantOrigin o) {
  return o > control::GrantOrigin::MAX ? "unknown" : grant_origin_name(enum_cast<GrantOrigin>(o));
}
inline std::string_view wire_name(control::GrantState s) {
  return s > control::GrantState::MAX ? "unknown" : grant_state_name(enum_cast<GrantState>(s));
}
inline std::string_view wire_name(control::GrantKind k) {
  return k > control::GrantKind::MAX ? "unknown" : grant_kind_name(enum_cast<GrantKind>(k));
}
inline std::string_view wire_name(control::KernelVerdict v) {
  return v > control::KernelVerdict::MAX ? "unknown" : kernel_verdict_name(enum_cast<KernelVerdict>(v));
}
// The KERNEL column: kernel_check_text() of a report's verdict; an unknown
// verdict counts as kUnknown (its detail still says why).
inline std::string wire_kernel_text(control::KernelVerdict v, std::string_view detail) {
  return kernel_check_text(v > control::KernelVerdict::MAX ? KernelVerdict::kUnknown
                                                           : enum_cast<KernelVerdict>(v),
                           detail);
}

}  // namespace capsa::supervisor
