#include "policy/builtin_apis.h"

namespace capsa::policy {

ApiCatalog builtin_api_catalog() {
  ApiCatalog c;
  c.add({.name = "capsa.Bootstrap", .methods = {"Get", "List", "Attenuate", "NewChannel"}, .constraints = {},
         .grantable = false, .served = true, .served_note = ""});
  // read_only defaults to true: a policy that wants writes must say so.
  c.add({.name = "fs.Directory",
         .methods = {"Open", "OpenFile", "List", "Stat"},
         .constraints = {{"root", ConstraintType::kHostDir, true, ""},
                         {"read_only", ConstraintType::kBool, false, "true"}},
         .grantable = true, .served = true, .served_note = ""});
  c.add({.name = "fs.File", .methods = {"Read", "Seek", "Stat"}, .constraints = {},
         .grantable = true, .served = false,
         .served_note = "a File comes from fs.Directory.Open"});
  c.add({.name = "log.Sink", .methods = {"Write"}, .constraints = {}, .grantable = true,
         .served = true, .served_note = ""});
  c.add({.name = "demo.WordCount", .methods = {"Count"}, .constraints = {},
         .grantable = true, .served = false, .served_note = "a worker serves it"});
  return c;
}

}  // namespace capsa::policy
