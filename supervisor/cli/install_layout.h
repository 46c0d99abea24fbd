// capsa — finding capsa-launcher next to an installed `capsa`.
//
// The sandbox runs every worker through capsa-launcher, and by default looks
// for it where the build put it (sandbox::default_launcher_path()). An
// installed capsa (`cmake --install`, the .deb) has it at
// <prefix>/<libexecdir>/capsa/capsa-launcher instead: this finds it from the
// directory of the running `capsa` (/proc/self/exe, so a relocated prefix
// works too). The launcher is as trusted as capsa itself: it comes from the
// same installation.
#pragma once

#include <string>

namespace capsa::cli {

// The installed launcher beside this executable, or "" (then the sandbox's
// default applies: $CAPSA_LAUNCHER, else the build tree's). $CAPSA_LAUNCHER,
// when set, wins, so an operator can always say which one runs.
std::string installed_launcher_path();

}  // namespace capsa::cli
