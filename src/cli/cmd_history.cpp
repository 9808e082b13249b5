// edgellm history list|show|export|prune: reads (and trims) the conversation store that
// `edgellm serve --db FILE` writes (server/conversation_store.h). Safe beside a running server: SQLite's
// WAL lets readers in while it writes, and prune waits for its turn.
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "server/conversation_store.h"

namespace edgellm::cli {
namespace {

struct HistoryArgs {
  std::string db;
  std::string since, until, key, text;
  int64_t limit = 0;
  int64_t id = 0;
  std::string output;
  std::string older_than;
  int64_t max_mb = 0;
};

// "30s", "15m", "2h", "7d" as milliseconds; -1 if `s` is not a duration.
int64_t duration_ms(const std::string& s) {
  if (s.size() < 2) return -1;
  int64_t n = 0;
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9' || n > (int64_t{1} << 40)) return -1;
    n = n * 10 + (s[i] - '0');
  }
  switch (s.back()) {
    case 's': return n * 1000;
    case 'm': return n * 60 * 1000;
    case 'h': return n * 3600 * 1000;
    case 'd': return n * 86400 * 1000;
    default: return -1;
  }
}

// A point in time: a duration back from now ("2h", "7d"), or a local date and time ("2026-12-08",
// "2026-12-08T09:30", "2026-12-08 09:30:15"). Unix milliseconds, or -1 with a message printed.
int64_t parse_time(const std::string& s, const char* option) {
  if (const int64_t back = duration_ms(s); back >= 0) return server::unix_now_ms() - back;
  std::tm tm{};
  int n = 0;
  char sep = 0;
  int fields = std::sscanf(s.c_str(), "%4d-%2d-%2d%c%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &sep,
                           &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n);
  const bool date_only = fields == 3 && s.size() == 10;
  const bool minutes = fields == 6 && (sep == 'T' || sep == ' ') && s.size() == 16;
  const bool seconds = fields == 7 && (sep == 'T' || sep == ' ') && static_cast<size_t>(n) == s.size();
  if (!date_only && !minutes && !seconds) {
    std::fprintf(stderr,
                 "edgellm history: %s '%s' is not a time: give a date (2026-12-08), a local date and time "
                 "(2026-12-08T09:30) or a time back from now (30m, 2h, 7d)\n",
                 option, s.c_str());
    return -1;
  }
  if (date_only) tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
  if (minutes) tm.tm_sec = 0;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  tm.tm_isdst = -1;
  const std::time_t t = std::mktime(&tm);
  if (t == static_cast<std::time_t>(-1)) {
    std::fprintf(stderr, "edgellm history: %s '%s' is not a valid date\n", option, s.c_str());
    return -1;
  }
  return static_cast<int64_t>(t) * 1000;
}

std::string local_time(int64_t unix_ms) {
  const std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string iso_utc(int64_t unix_ms) {
  const std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char ms[8];
  std::snprintf(ms, sizeof ms, ".%03dZ", static_cast<int>(unix_ms % 1000));
  return std::string(buf) + ms;
}

bool open_store(const HistoryArgs& a, bool read_only, std::unique_ptr<server::ConversationStore>* out) {
  server::StoreOptions o;
  o.read_only = read_only;
  auto store = server::ConversationStore::open(a.db, o);
  if (!store.ok()) {
    std::fprintf(stderr, "edgellm history: %s\n", store.error().message.c_str());
    return false;
  }
  *out = std::move(*store);
  return true;
}

// The filters given on the command line; false (message printed) if a time does not parse.
bool read_query(const HistoryArgs& a, server::ExchangeQuery* q) {
  if (!a.since.empty()) {
    const int64_t t = parse_time(a.since, "--since");
    if (t < 0) return false;
    q->since_ms = t;
  }
  if (!a.until.empty()) {
    const int64_t t = parse_time(a.until, "--until");
    if (t < 0) return false;
    q->until_ms = t;
  }
  if (!a.key.empty()) q->key = a.key;
  if (!a.text.empty()) q->text = a.text;
  q->limit = a.limit;
  return true;
}

// The messages column as JSON (it is the request's JSON text), or as a string if it does not parse.
nlohmann::ordered_json messages_json(const std::string& text) {
  auto j = nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  return j.is_discarded() ? nlohmann::ordered_json(text) : j;
}

// What the user said last: the last user message's text (or the prompt), for one line of a list.
std::string last_user_text(const std::string& messages) {
  const nlohmann::ordered_json j = messages_json(messages);
  if (j.is_string()) return j.get<std::string>();
  if (j.is_array()) {
    for (auto it = j.rbegin(); it != j.rend(); ++it) {
      if (it->is_object() && it->value("role", "") == "user" && (*it)["content"].is_string()) {
        return (*it)["content"].get<std::string>();
      }
    }
  }
  return j.dump();
}

// `text` on one line, at most `max_chars` characters (whole UTF-8 characters; a cut one ends in "…").
std::string one_line(const std::string& text, size_t max_chars) {
  std::string out;
  size_t chars = 0;
  size_t fits = 0;  // bytes of the first max_chars - 1 characters, where "…" goes if the text is longer
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if ((c & 0xC0) != 0x80) {
      if (chars == max_chars - 1) fits = out.size();
      if (chars == max_chars) return out.substr(0, fits) + "…";
      ++chars;
    }
    out += (c == '\n' || c == '\r' || c == '\t') ? ' ' : static_cast<char>(c);
  }
  return out;
}

// The exchanges `query` selects in the store of --db (read-only), or false with the error printed.
bool find_exchanges(const HistoryArgs& a, const server::ExchangeQuery& query, std::vector<server::Exchange>* out) {
  std::unique_ptr<server::ConversationStore> store;
  if (!open_store(a, true, &store)) return false;
  auto rows = store->find(query);
  if (!rows.ok()) {
    std::fprintf(stderr, "edgellm history: %s\n", rows.error().message.c_str());
    return false;
  }
  *out = std::move(*rows);
  return true;
}

int run_history_list(const HistoryArgs& a) {
  server::ExchangeQuery q;
  std::vector<server::Exchange> rows;
  if (!read_query(a, &q) || !find_exchanges(a, q, &rows)) return 1;
  std::printf("%-6s %-19s %-12s %-16s %-14s %11s %8s  %s\n", "ID", "TIME", "KEY", "MODEL", "FINISH", "TOKENS",
              "SECONDS", "USER → REPLY");
  for (const server::Exchange& e : rows) {
    const std::string tokens = std::to_string(e.prompt_tokens) + "+" + std::to_string(e.generated_tokens);
    std::printf("%-6lld %-19s %-12s %-16s %-14s %11s %8.2f  %s → %s\n", static_cast<long long>(e.id),
                local_time(e.time_ms).c_str(), one_line(e.key.empty() ? "-" : e.key, 12).c_str(),
                one_line(e.model, 16).c_str(), e.finish_reason.c_str(), tokens.c_str(), e.total_ms / 1000.0,
                one_line(last_user_text(e.messages), 40).c_str(), one_line(e.reply, 40).c_str());
  }
  std::fprintf(stderr, "%zu exchange%s\n", rows.size(), rows.size() == 1 ? "" : "s");
  return 0;
}

int run_history_show(const HistoryArgs& a) {
  server::ExchangeQuery q;
  q.id = a.id;
  std::vector<server::Exchange> rows;
  if (!find_exchanges(a, q, &rows)) return 1;
  if (rows.empty()) {
    std::fprintf(stderr, "edgellm history: %s has no exchange %lld (`edgellm history list` shows the ids)\n",
                 a.db.c_str(), static_cast<long long>(a.id));
    return 1;
  }
  const server::Exchange& e = rows.front();
  std::printf("exchange %lld%s%s\n", static_cast<long long>(e.id), e.request_id.empty() ? "" : "  ",
              e.request_id.c_str());
  std::printf("time      %s (local)\n", local_time(e.time_ms).c_str());
  std::printf("key       %s\nclient    %s\nmodel     %s\nroute     %s\n", e.key.empty() ? "-" : e.key.c_str(),
              e.client.c_str(), e.model.c_str(), e.route.c_str());
  std::printf("finish    %s\ntokens    %lld prompt, %lld generated\n", e.finish_reason.c_str(),
              static_cast<long long>(e.prompt_tokens), static_cast<long long>(e.generated_tokens));
  std::printf("latency   %.3f s to the first token, %.3f s in all\n\n", e.ttft_ms / 1000.0, e.total_ms / 1000.0);
  const nlohmann::ordered_json m = messages_json(e.messages);
  if (m.is_array()) {
    for (const auto& msg : m) {
      if (msg.is_object() && msg.contains("role")) {
        const std::string content =
            msg["content"].is_string() ? msg["content"].get<std::string>() : msg["content"].dump();
        std::printf("[%s]\n%s\n\n", msg.value("role", "").c_str(), content.c_str());
      } else {
        std::printf("%s\n\n", msg.dump().c_str());
      }
    }
  } else {
    std::printf("[prompt]\n%s\n\n", m.is_string() ? m.get<std::string>().c_str() : m.dump().c_str());
  }
  std::printf("[reply]\n%s\n", e.reply.c_str());
  return 0;
}

int run_history_export(const HistoryArgs& a) {
  server::ExchangeQuery q;
  std::vector<server::Exchange> rows;
  if (!read_query(a, &q) || !find_exchanges(a, q, &rows)) return 1;
  std::ofstream file;
  if (!a.output.empty()) {
    file.open(a.output, std::ios::binary | std::ios::trunc);
    if (!file) {
      std::fprintf(stderr, "edgellm history: cannot write %s\n", a.output.c_str());
      return 1;
    }
  }
  std::ostream& out = a.output.empty() ? std::cout : file;
  for (const server::Exchange& e : rows) {
    nlohmann::ordered_json j;
    j["id"] = e.id;
    j["request_id"] = e.request_id;
    j["time"] = iso_utc(e.time_ms);
    j["time_ms"] = e.time_ms;
    j["key"] = e.key;
    j["client"] = e.client;
    j["model"] = e.model;
    j["route"] = e.route;
    j["messages"] = messages_json(e.messages);
    j["reply"] = e.reply;
    j["finish_reason"] = e.finish_reason;
    j["prompt_tokens"] = e.prompt_tokens;
    j["generated_tokens"] = e.generated_tokens;
    j["ttft_ms"] = e.ttft_ms;
    j["total_ms"] = e.total_ms;
    out << j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << '\n';
  }
  out.flush();
  if (!out) {
    std::fprintf(stderr, "edgellm history: cannot write the export\n");
    return 1;
  }
  std::fprintf(stderr, "exported %zu exchange%s\n", rows.size(), rows.size() == 1 ? "" : "s");
  return 0;
}

int run_history_prune(const HistoryArgs& a) {
  int64_t cutoff = 0;
  if (!a.older_than.empty()) {
    const int64_t back = duration_ms(a.older_than);
    cutoff = back >= 0 ? server::unix_now_ms() - back : parse_time(a.older_than, "--older-than");
    if (cutoff < 0) return 1;
  }
  if (cutoff == 0 && a.max_mb == 0) {
    std::fprintf(stderr, "edgellm history prune: give --older-than and/or --max-mb\n");
    return 1;
  }
  std::unique_ptr<server::ConversationStore> store;
  if (!open_store(a, false, &store)) return 1;
  auto report = store->prune(cutoff, a.max_mb * (int64_t{1} << 20));
  if (!report.ok()) {
    std::fprintf(stderr, "edgellm history: %s\n", report.error().message.c_str());
    return 1;
  }
  std::printf("deleted %lld exchange%s older than the cutoff and %lld for size; %.1f MiB -> %.1f MiB in use\n",
              static_cast<long long>(report->deleted_by_age), report->deleted_by_age == 1 ? "" : "s",
              static_cast<long long>(report->deleted_by_size), report->bytes_before / 1048576.0,
              report->bytes_after / 1048576.0);
  return 0;
}

void add_filters(CLI::App* cmd, HistoryArgs& a) {
  cmd->add_option("--since", a.since, "Only exchanges from this time on: 2026-12-08, 2026-12-08T09:30 (local), 2h, 7d");
  cmd->add_option("--until", a.until, "Only exchanges before this time (same forms as --since)");
  cmd->add_option("--key", a.key, "Only exchanges made with this API key (its name)");
  cmd->add_option("--grep", a.text, "Only exchanges whose messages or reply contain this text");
}

}  // namespace

void add_history_command(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<HistoryArgs>();
  auto* history = app.add_subcommand(
      "history", "The conversation store of `edgellm serve --db FILE`: list, show, export, prune");
  history->require_subcommand(1);
  const auto db_option = [&](CLI::App* cmd, bool must_exist) {
    auto* o = cmd->add_option("--db", a->db, "The store (SQLite file)")->required();
    if (must_exist) o->check(CLI::ExistingFile);
  };
  auto* list = history->add_subcommand("list", "One line per exchange, oldest first: time, key, model, finish, "
                                               "tokens, latency, what the user said and the reply's start");
  db_option(list, true);
  add_filters(list, *a);
  list->add_option("-n,--limit", a->limit, "Only the newest N (0: all)")->capture_default_str();
  list->callback([a, &exit_code] { exit_code = run_history_list(*a); });
  auto* show = history->add_subcommand("show", "One exchange in full: its messages and reply");
  show->add_option("id", a->id, "The exchange's id (from list)")->required();
  db_option(show, true);
  show->callback([a, &exit_code] { exit_code = run_history_show(*a); });
  auto* exp = history->add_subcommand("export", "Exchanges as JSON lines (one object per exchange), oldest first");
  db_option(exp, true);
  add_filters(exp, *a);
  exp->add_option("-n,--limit", a->limit, "Only the newest N (0: all)");
  exp->add_option("-o,--output", a->output, "Write to this file instead of standard output");
  exp->callback([a, &exit_code] { exit_code = run_history_export(*a); });
  auto* prune = history->add_subcommand(
      "prune", "Delete exchanges older than a time and/or the oldest until the store fits a size; frees the space");
  db_option(prune, true);
  prune->add_option("--older-than", a->older_than, "Delete exchanges older than this: 30d, 12h, or a date");
  prune->add_option("--max-mb", a->max_mb, "Then delete the oldest until the store uses at most this many MiB")
      ->check(CLI::NonNegativeNumber);
  prune->callback([a, &exit_code] { exit_code = run_history_prune(*a); });
}

}  // namespace edgellm::cli
