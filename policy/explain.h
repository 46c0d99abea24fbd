// capsa policy — explaining a policy to a person or a tool.
//
// `capsa check` prints these. The text form is a readable table per worker:
// what it runs, its sandbox and limits, and each grant with its API, rights
// and constraints. The JSON form carries the same facts for tools; its keys
// follow policy.fbs field names so a tool can map them back to the file.
#pragma once

#include <string>

#include "policy/diagnostic.h"
#include "policy/model.h"

namespace capsa::policy {

std::string explain_text(const Policy& p);
std::string explain_json(const Policy& p);

// {"valid": false, "errors": [{"file":..., "line":..., "column":..., "message":...}]}
std::string diagnostics_json(const Diagnostics& diags);

// A JSON string literal (quotes included), escaping control characters and
// bytes that are not valid in JSON so hostile names cannot break the output.
std::string json_quote(std::string_view s);

}  // namespace capsa::policy
