// capsa — dispatch of a service's calls by method ordinal.
//
// The envelope carries a method's ordinal (its capsa_method in the .fbs),
// and the supervisor has already checked it against the interface and the
// grant's rights before a ServiceObject sees the call. A service therefore
// needs no name comparison: the ordinal indexes a table of member functions
// (as Mojo's generated stubs and Cap'n Proto's dispatch do). Names stay in
// the table for humans and for one check:
//
//   class DirectoryService final : public ServiceObject {
//     void handle(Call call) override { methods().dispatch(*this, std::move(call)); }
//     // Checked against the loaded fs.Directory in directory_service_test.cc.
//     static const MethodTable<DirectoryService, 4>& methods();
//    private:
//     void open(Call call); ...
//   };
//
//   const MethodTable<DirectoryService, 4>& DirectoryService::methods() {
//     static constexpr MethodTable<DirectoryService, 4> kTable{interfaces::kDirectory, {{
//         {0, "Open", &DirectoryService::open}, ...}}};
//     return kTable;
//   }
//
// Two checks keep the table and the schema together:
// - at compile time, entry i must declare ordinal i (a table edited out of
//   order does not build); a schema whose ordinals have a gap (a retired
//   method) gets a gap entry `{i, {}, nullptr}` there;
// - check(iface), at run time against the loaded interface: every entry's
//   name is the schema's name for that ordinal, a gap is a gap in the
//   schema too, and every method of the schema has an entry. A .fbs whose ordinals were reordered or that gained
//   a method fails the service's unit test instead of running the wrong
//   handler in production. (A defining member function, as above, can name
//   the private handlers.)
//
// Any ServiceObject can use it (the built-in services, the Bootstrap and
// capsa.Control services): the handler type is `void (Service::*)(Call)`.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "capabilities/error.h"
#include "capabilities/interface_registry.h"
#include "supervisor/services/service.h"

namespace capsa::supervisor {

template <typename Service>
struct MethodEntry {
  std::uint32_t ordinal = 0;
  std::string_view name;  // the schema's method name, for check(); empty for a gap
  void (Service::*handler)(Call) = nullptr;  // nullptr exactly for a gap
};

template <typename Service, std::size_t N>
class MethodTable {
  static_assert(N > 0 && N <= kMaxMethodsPerInterface,
                "an interface has 1..kMaxMethodsPerInterface methods");

 public:
  using Entries = std::array<MethodEntry<Service>, N>;

  // `interface` is the fully qualified name (e.g. interfaces::kDirectory).
  // Entry i serves ordinal i; consteval, so a wrong order is a compile
  // error ("call to consteval function is not a constant expression"
  // pointing at the throw). A name without a handler, or the reverse, is
  // found by check() instead: GCC cannot compare a member function pointer
  // in a constant expression under -fsanitize=undefined.
  consteval MethodTable(std::string_view interface, Entries entries)
      : interface_(interface), entries_(entries) {
    for (std::size_t i = 0; i < N; ++i) {
      if (entries_[i].ordinal != i) throw "MethodTable: entry i must declare ordinal i";
    }
  }

  constexpr std::string_view interface() const noexcept { return interface_; }
  constexpr const Entries& entries() const noexcept { return entries_; }

  // Runs the handler of the call's ordinal. An ordinal past the table or on
  // a gap is one the supervisor's validator accepted from a schema this
  // table does not cover: our bug (check() catches it in tests), answered
  // `failed`, never a crash or a wrong handler.
  void dispatch(Service& service, Call call) const {
    const std::uint32_t ordinal = call.method().ordinal;
    if (ordinal >= N || entries_[ordinal].handler == nullptr) {
      std::string text = std::string(interface_) + "." + call.method().name + " is not implemented";
      return call.fail(Errc::kFailed, text);
    }
    (service.*entries_[ordinal].handler)(std::move(call));
  }

  // kInvalidArgument naming the first disagreement between this table and
  // `iface` (the interface as loaded from its .bfbs).
  Result<void> check(const Interface& iface) const {
    if (iface.name() != interface_) {
      return mismatch("the table serves " + std::string(interface_) + ", not " +
                      std::string(iface.name()));
    }
    for (const auto& e : entries_) {
      const Method* m = iface.method(e.ordinal);
      if ((e.handler == nullptr) != e.name.empty()) {
        return mismatch("ordinal " + std::to_string(e.ordinal) +
                        " needs both a name and a handler, or neither (a gap)");
      }
      if (e.handler == nullptr) {
        if (m == nullptr) continue;
        return mismatch(m->name + " (ordinal " + std::to_string(e.ordinal) + ") has no handler");
      }
      if (m == nullptr) {
        return mismatch("ordinal " + std::to_string(e.ordinal) + " (" + std::string(e.name) +
                        ") is not in the schema");
      }
      if (m->name != e.name) {
        return mismatch("ordinal " + std::to_string(e.ordinal) + " is " + m->name +
                        " in the schema, " + std::string(e.name) + " in the table");
      }
    }
    for (const Method& m : iface.methods()) {
      if (m.ordinal >= N) {
        return mismatch(m.name + " (ordinal " + std::to_string(m.ordinal) + ") has no handler");
      }
    }
    return {};
  }

 private:
  std::unexpected<Error> mismatch(const std::string& what) const {
    return make_error(Errc::kInvalidArgument,
                      "method table of " + std::string(interface_) + ": " + what);
  }

  std::string_view interface_;
  Entries entries_;
};

}  // namespace capsa::supervisor
