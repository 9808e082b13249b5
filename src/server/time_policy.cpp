#include "server/time_policy.h"

#include <algorithm>
#include <ctime>

namespace edgellm::server {

bool PolicyRule::covers(int minute, const std::string& key) const {
  const bool in_window = from_minute <= to_minute ? (minute >= from_minute && minute < to_minute)
                                                  : (minute >= from_minute || minute < to_minute);
  if (!in_window) return false;
  return keys.empty() || std::find(keys.begin(), keys.end(), key) != keys.end();
}

int parse_clock_time(const std::string& text) {
  if (text.size() != 5 || text[2] != ':') return -1;
  for (int i : {0, 1, 3, 4}) {
    if (text[static_cast<size_t>(i)] < '0' || text[static_cast<size_t>(i)] > '9') return -1;
  }
  const int h = (text[0] - '0') * 10 + (text[1] - '0');
  const int m = (text[3] - '0') * 10 + (text[4] - '0');
  if (m > 59 || h > 24 || (h == 24 && m != 0)) return -1;
  return h * 60 + m;
}

const PolicyRule* find_policy(const std::vector<PolicyRule>& rules, int minute_of_day, const std::string& key) {
  for (const PolicyRule& r : rules) {
    if (r.covers(minute_of_day, key)) return &r;
  }
  return nullptr;
}

int local_minute_of_day() {
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  return local.tm_hour * 60 + local.tm_min;
}

}  // namespace edgellm::server
