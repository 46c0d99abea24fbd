#include "supervisor/audit/coalescer.h"

#include <utility>

namespace capsa::supervisor {
namespace {

constexpr std::chrono::seconds kWindow{1};

std::string key_of(std::string_view worker, std::string_view type, std::string_view identity) {
  std::string k;
  k.reserve(worker.size() + type.size() + identity.size() + 2);
  k.append(worker).append(1, '\0').append(type).append(1, '\0').append(identity);
  return k;
}

}  // namespace

void Coalescer::close(Window& w, Clock::time_point now, std::vector<Summary>& due) {
  w.flooding = w.suppressed > 0;
  if (w.flooding) {
    due.push_back(Summary{w.type, w.worker, w.identity, w.suppressed, std::move(w.first),
                          std::move(w.last)});
  }
  w.start = now;
  w.written = 0;
  w.suppressed = 0;
  w.first.clear();
  w.last.clear();
}

bool Coalescer::admit(std::string_view worker, std::string_view type, std::string_view identity,
                      Clock::time_point now, std::string_view ts, std::vector<Summary>& due) {
  if (after_ == 0) return true;
  std::string key = key_of(worker, type, identity);
  auto it = windows_.find(key);
  if (it == windows_.end()) {
    auto& tracked = per_worker_[std::string(worker)];
    if (tracked >= kMaxCoalesceKeysPerWorker) {
      // Past the bound, further identities share one key (see the header).
      identity = {};
      key = key_of(worker, type, identity);
      it = windows_.find(key);
    } else {
      ++tracked;
    }
    if (it == windows_.end()) {
      Window w;
      w.worker = worker;
      w.type = type;
      w.identity = identity;
      w.start = now;
      it = windows_.emplace(std::move(key), std::move(w)).first;
    }
  }
  Window& w = it->second;
  if (now - w.start >= kWindow) close(w, now, due);
  if (!w.flooding && w.written < after_) {
    ++w.written;
    return true;
  }
  if (w.suppressed++ == 0) w.first = ts;
  w.last = ts;
  return false;
}

void Coalescer::tick(Clock::time_point now, std::vector<Summary>& due) {
  for (auto it = windows_.begin(); it != windows_.end();) {
    Window& w = it->second;
    if (now - w.start < kWindow) {
      ++it;
      continue;
    }
    close(w, now, due);
    if (w.flooding) {
      ++it;
      continue;
    }
    // A quiet second: forget the key (and free its place for the worker).
    if (!w.identity.empty()) {
      if (auto p = per_worker_.find(w.worker); p != per_worker_.end() && --p->second == 0) {
        per_worker_.erase(p);
      }
    }
    it = windows_.erase(it);
  }
}

void Coalescer::flush(std::string_view worker, std::vector<Summary>& due) {
  for (auto it = windows_.begin(); it != windows_.end();) {
    if (!worker.empty() && it->second.worker != worker) {
      ++it;
      continue;
    }
    close(it->second, it->second.start, due);
    it = windows_.erase(it);
  }
  if (worker.empty()) {
    per_worker_.clear();
  } else if (auto p = per_worker_.find(worker); p != per_worker_.end()) {
    per_worker_.erase(p);
  }
}

}  // namespace capsa::supervisor
