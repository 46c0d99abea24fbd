// capsa — gathering `capsa report`'s data from an audit log (report_data.h).
#include "supervisor/cli/report_data.h"

#include <algorithm>
#include <deque>
#include <tuple>
#include <unordered_map>

namespace capsa::cli {
namespace {

// A log naming more workers than this was not written by one policy's
// run; the rest are counted under one row rather than grown without bound.
constexpr std::size_t kMaxWorkers = 1000;
constexpr std::string_view kOtherWorkers = "(other workers)";
constexpr std::string_view kOthers = "(others)";
constexpr std::size_t kMaxEventNames = 200;

// Fields shown first in a timeline row's details (the rest follow sorted);
// the envelope and the worker column are not repeated.
constexpr std::string_view kFirstKeys[] = {
    "of",     "count",  "grant",   "parent_grant", "parent", "from",      "to",
    "holder", "name",   "interface", "method",     "rights", "origin",    "syscall",
    "syscall_nr", "status", "exit_code", "signal", "reason", "action"};
constexpr std::string_view kEnvelope[] = {"ts", "run", "seq", "event", "worker"};

std::string scalar_text(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  // Arrays and objects (rights, constraints, args) as compact JSON;
  // `replace` keeps a stray byte from throwing (the parser already refuses
  // invalid UTF-8, so this is belt and braces).
  return v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string details_of(const AuditRecord& r) {
  std::string out;
  auto add = [&](std::string_view key, const nlohmann::json& v) {
    if (out.size() >= kMaxShownBytes) return;
    if (!out.empty()) out += ' ';
    out += key;
    out += '=';
    out += scalar_text(v);
  };
  for (std::string_view k : kFirstKeys) {
    if (auto it = r.line.find(k); it != r.line.end()) add(k, *it);
  }
  for (auto it = r.line.begin(); it != r.line.end() && out.size() < kMaxShownBytes; ++it) {
    const std::string& k = it.key();
    if (std::find(std::begin(kFirstKeys), std::end(kFirstKeys), k) != std::end(kFirstKeys)) continue;
    if (std::find(std::begin(kEnvelope), std::end(kEnvelope), k) != std::end(kEnvelope)) continue;
    add(k, it.value());
  }
  return cut_utf8(out, kMaxShownBytes);
}

std::string joined_workers(const AuditRecord& r) {
  std::string out;
  for (const std::string& w : r.workers()) {
    if (!out.empty()) out += ", ";
    out += w;
  }
  return cut_utf8(out, kMaxShownBytes);
}

// What a refusal was about: the identity the coalescer groups it by, so a
// coalesced line falls in the same row as the lines it summarises.
std::string refusal_what(const AuditRecord& r, std::string_view kind) {
  if (r.line.contains("various")) return "(various: the worker's 64 distinct kinds were exceeded)";
  std::string s;
  if (kind == "call_denied") {
    s = r.str("interface") + "." + r.str("method") + ": " + r.str("reason");
  } else if (kind == "seccomp_violation") {
    s = r.str("syscall") + " (" + std::to_string(r.unum("syscall_nr")) + "), " + r.str("action");
  } else if (kind == "violation_flood") {
    s = "more than " + std::to_string(r.unum("violations_per_second")) + "/s, " + r.str("action");
  } else if (kind == "bad_message") {
    s = r.str("reason") + " (" + r.str("action") + ")";
  } else {  // transfer_denied, grant_refused
    s = r.str("reason");
    if (!r.str("action").empty()) s += " (" + r.str("action") + ")";
  }
  return cut_utf8(s, kMaxShownBytes);
}

struct RefusalKey {
  std::string worker, kind, what;
  bool operator==(const RefusalKey&) const = default;
};
struct RefusalKeyHash {
  std::size_t operator()(const RefusalKey& k) const {
    const std::hash<std::string> h;
    return h(k.worker) ^ (h(k.kind) * 31) ^ (h(k.what) * 1000003);
  }
};

class Gatherer {
 public:
  explicit Gatherer(ReportData& d) : d_(d) {}

  void add(const AuditRecord& r) {
    ++d_.timeline_total;
    // Event names are the supervisor's, but a crafted log could hold any.
    if (d_.events.contains(r.event) || d_.events.size() < kMaxEventNames) ++d_.events[r.event];
    else ++d_.events[std::string(kOthers)];
    const bool coalesced = r.event == "coalesced";
    const std::string of = coalesced ? r.str("of") : std::string();
    const std::string_view kind = coalesced ? std::string_view(of) : std::string_view(r.event);
    const std::uint64_t count = coalesced ? r.unum("count") : 1;

    for (const std::string& w : r.workers()) worker(w);
    if (r.event == "worker_started" && !r.str("worker").empty()) {
      ReportWorker& w = worker(r.str("worker"));
      w.started_ms = r.ts_ms;
      if (r.line.contains("pid")) w.pid = scalar_text(r.line["pid"]);
    } else if (r.event == "worker_exited" && !r.str("worker").empty()) {
      ReportWorker& w = worker(r.str("worker"));
      w.ended_ms = r.ts_ms;
      w.status = exit_text(r);
      w.calls = signed_field(r, "calls");
      w.denials = signed_field(r, "denials");
      w.violations = signed_field(r, "violations");
    }
    if (is_refusal_kind(kind) && !r.str("worker").empty()) {
      ReportWorker& w = worker(r.str("worker"));
      w.refusals[std::string(kind)] += count;
      refusal(RefusalKey{w.name, std::string(kind), refusal_what(r, kind)}, count, r.ts_ms);
    }
    row(r, of, count);
  }

  void finish() {
    for (const auto& [key, row] : breakdown_) {
      d_.breakdown.push_back(RefusalRow{key.worker, key.kind, key.what, row.count, row.first_ms, row.last_ms});
    }
    auto kind_index = [](std::string_view k) {
      return std::find(std::begin(kRefusalKinds), std::end(kRefusalKinds), k) - std::begin(kRefusalKinds);
    };
    auto worker_index = [&](const std::string& name) { return worker_index_.at(name); };
    std::sort(d_.breakdown.begin(), d_.breakdown.end(), [&](const RefusalRow& a, const RefusalRow& b) {
      return std::make_tuple(worker_index(a.worker), kind_index(a.kind), b.count, a.what) <
             std::make_tuple(worker_index(b.worker), kind_index(b.kind), a.count, b.what);
    });
    d_.timeline_head = d_.timeline.size();
    for (TimelineRow& t : tail_) d_.timeline.push_back(std::move(t));
  }

 private:
  struct Tally {
    std::uint64_t count = 0;
    std::int64_t first_ms = 0, last_ms = 0;
  };

  // Valid until the next call (the vector may grow).
  ReportWorker& worker(const std::string& name) {
    auto it = worker_index_.find(name);
    if (it == worker_index_.end()) {
      const std::string key = worker_index_.size() >= kMaxWorkers ? std::string(kOtherWorkers) : name;
      it = worker_index_.find(key);
      if (it == worker_index_.end()) {
        it = worker_index_.emplace(key, d_.workers.size()).first;
        ReportWorker w;
        w.name = key;
        d_.workers.push_back(std::move(w));
      }
    }
    return d_.workers[it->second];
  }

  static std::int64_t signed_field(const AuditRecord& r, std::string_view key) {
    auto it = r.line.find(key);
    if (it == r.line.end() || !it->is_number_unsigned()) return -1;
    return static_cast<std::int64_t>(std::min<std::uint64_t>(it->get<std::uint64_t>(), INT64_MAX));
  }

  static std::string exit_text(const AuditRecord& r) {
    std::string s = r.str("status");
    if (s.empty()) s = "ended";
    if (s == "exited" && r.line.contains("exit_code")) s += " " + scalar_text(r.line["exit_code"]);
    if (r.unum("signal") != 0) s += " (signal " + std::to_string(r.unum("signal")) + ")";
    return cut_utf8(s, kMaxShownBytes);
  }

  void refusal(RefusalKey key, std::uint64_t count, std::int64_t ts) {
    auto it = breakdown_.find(key);
    if (it == breakdown_.end()) {
      if (breakdown_.size() >= kMaxBreakdownRows) {
        d_.breakdown_folded = true;
        key.what = std::string(kOthers);
        it = breakdown_.find(key);
      }
      if (it == breakdown_.end()) it = breakdown_.emplace(std::move(key), Tally{0, ts, ts}).first;
    }
    it->second.count += count;
    it->second.first_ms = std::min(it->second.first_ms, ts);
    it->second.last_ms = std::max(it->second.last_ms, ts);
  }

  void row(const AuditRecord& r, const std::string& of, std::uint64_t count) {
    TimelineRow t{.ts_ms = r.ts_ms,
                  .seq = r.seq,
                  .event = cut_utf8(r.event, kMaxShownBytes),
                  .of = cut_utf8(of, kMaxShownBytes),
                  .count = count,
                  .category = category_of(of.empty() ? r.event : of),
                  .workers = joined_workers(r),
                  .details = {}};
    if (d_.timeline.size() < kTimelineHead) {
      t.details = details_of(r);
      d_.timeline.push_back(std::move(t));
      return;
    }
    t.details = details_of(r);
    tail_.push_back(std::move(t));
    if (tail_.size() > kTimelineTail) {
      tail_.pop_front();
      ++d_.timeline_omitted;
    }
  }

  ReportData& d_;
  std::deque<TimelineRow> tail_;
  std::unordered_map<RefusalKey, Tally, RefusalKeyHash> breakdown_;
  std::unordered_map<std::string, std::size_t> worker_index_;
};

}  // namespace

std::string_view category_name(EventCategory c) {
  switch (c) {
    case EventCategory::kRun: return "run";
    case EventCategory::kWorker: return "worker";
    case EventCategory::kGrant: return "grant";
    case EventCategory::kTransfer: return "transfer";
    case EventCategory::kDelegation: return "delegation";
    case EventCategory::kRevocation: return "revocation";
    case EventCategory::kRelease: return "release";
    case EventCategory::kDenial: return "denial";
    case EventCategory::kBadMessage: return "bad-message";
    case EventCategory::kViolation: return "violation";
    case EventCategory::kOther: return "other";
  }
  return "other";
}

EventCategory category_of(std::string_view e) {
  if (e == "audit_opened" || e == "shutdown" || e == "audit_rotated" || e == "audit_rotate_failed" ||
      e == "control_connected") {
    return EventCategory::kRun;
  }
  if (e.starts_with("worker_") || e == "output_dropped") return EventCategory::kWorker;
  if (e == "grant_created" || e == "channel_created") return EventCategory::kGrant;
  if (e == "port_transferred" || e == "handle_passed") return EventCategory::kTransfer;
  if (e == "port_delegated") return EventCategory::kDelegation;
  if (e == "revoked") return EventCategory::kRevocation;
  if (e == "released") return EventCategory::kRelease;
  if (e == "call_denied" || e == "transfer_denied" || e == "grant_refused" || e == "control_refused") {
    return EventCategory::kDenial;
  }
  if (e == "bad_message") return EventCategory::kBadMessage;
  if (e == "seccomp_violation" || e == "violation_flood") return EventCategory::kViolation;
  return EventCategory::kOther;
}

bool is_refusal_kind(std::string_view event) {
  return std::find(std::begin(kRefusalKinds), std::end(kRefusalKinds), event) != std::end(kRefusalKinds);
}

const ReportWorker* ReportData::worker(std::string_view name) const {
  for (const ReportWorker& w : workers) {
    if (w.name == name) return &w;
  }
  return nullptr;
}

std::string cut_utf8(std::string_view s, std::size_t max) {
  if (s.size() <= max) return std::string(s);
  std::size_t n = max;
  // Back up over continuation bytes (10xxxxxx) so no character is split.
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return std::string(s.substr(0, n)) + "...";
}

Result<ReportData> gather_report(const std::string& log, const std::vector<std::string>& files,
                                 std::string_view run) {
  ReportData d;
  d.log = log;
  d.files = files;
  // Pass 1: the runs, in the order they begin.
  std::unordered_map<std::string, std::size_t> index;
  CAPSA_TRY(read_audit_files(
      files,
      [&](AuditRecord& r) {
        auto [it, fresh] = index.try_emplace(r.run, d.runs.size());
        if (fresh) d.runs.push_back(RunInfo{r.run, r.ts_ms, r.ts_ms, 0});
        RunInfo& info = d.runs[it->second];
        info.first_ms = std::min(info.first_ms, r.ts_ms);
        info.last_ms = std::max(info.last_ms, r.ts_ms);
        ++info.lines;
        return true;
      },
      d.stats));
  if (d.runs.empty()) {
    return make_error(Errc::kNotFound, "no audit record in " + log +
                                           (d.stats.bad ? " (" + std::to_string(d.stats.bad) +
                                                              " bad lines, the first at " + d.stats.first_bad + ")"
                                                        : std::string()));
  }
  if (run.empty()) {
    d.run_info = d.runs.back();
    d.run_defaulted = true;
  } else {
    std::vector<const RunInfo*> hits;
    for (const RunInfo& ri : d.runs) {
      if (ri.id == run) {
        hits = {&ri};
        break;
      }
      if (ri.id.starts_with(run)) hits.push_back(&ri);
    }
    if (hits.size() != 1) {
      std::string listed;
      if (hits.empty()) {
        for (const RunInfo& ri : d.runs) listed += " " + (ri.id.empty() ? std::string("(none)") : ri.id);
        return make_error(Errc::kNotFound, "no run " + std::string(run) + " in " + log + "; its runs:" + listed);
      }
      for (const RunInfo* ri : hits) listed += " " + ri->id;
      return make_error(Errc::kNotFound, "run " + std::string(run) + " is ambiguous in " + log + ":" + listed);
    }
    d.run_info = *hits.front();
  }
  d.run = d.run_info.id;
  // Pass 2: the run's lines. A record stream that changed between the
  // passes (a live log) is read as it is now; counts are of this pass.
  ReadStats second;
  Gatherer g(d);
  CAPSA_TRY(read_audit_files(
      files,
      [&](AuditRecord& r) {
        if (r.run == d.run) g.add(r);
        return true;
      },
      second));
  g.finish();
  return d;
}

}  // namespace capsa::cli
