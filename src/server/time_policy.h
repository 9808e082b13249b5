// Time-of-day policy of `edgellm serve` ([[policy]] tables of the config file): caps on the tokens a reply
// may have, by the server's local time and optionally by API key — a household's board keeps answers short
// during the 08:00-10:00 peak:
//
//   [[policy]]
//   from = "08:00"            # local time, HH:MM; `to` is excluded; a window may cross midnight
//   to = "10:00"
//   max_tokens = 128
//   keys = ["kitchen"]        # optional: only these keys (default: every request)
//   [[policy]]
//   max_tokens = 512          # no from/to: all day
//
// The first rule (in file order) whose window holds the request's arrival and whose keys include its key
// applies: max_new_tokens = min(what the request asked for, max_tokens). The reply says so in the header
// X-Edgellm-Policy, and edgellm_policy_applied_total{rule} counts it. Reloaded on SIGHUP.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace edgellm::server {

struct PolicyRule {
  int from_minute = 0;   // minutes after local midnight
  int to_minute = 1440;  // exclusive; from > to wraps past midnight; 0..1440 = all day
  int32_t max_tokens = 0;
  std::vector<std::string> keys;  // empty: every key (and requests without one)
  std::string name;               // "1 (08:00-10:00)": the rule's number in the file and its window

  bool covers(int minute_of_day, const std::string& key) const;
};

// "HH:MM" (00:00-24:00) as minutes after midnight, or -1.
int parse_clock_time(const std::string& text);

// The rule that applies at `minute_of_day` (0-1439) to a request with API key `key`, or nullptr.
const PolicyRule* find_policy(const std::vector<PolicyRule>& rules, int minute_of_day, const std::string& key);

// The local time of day now, in minutes (the server's time zone: TZ, /etc/localtime).
int local_minute_of_day();

}  // namespace edgellm::server
