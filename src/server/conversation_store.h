// The conversation store of `edgellm serve --db FILE` ([store] in the config file): every finished exchange
// (request and reply) as one row of an SQLite database in WAL mode, and what `edgellm history` reads back.
//
//   [store]
//   path = "/var/lib/edgellm/conversations.db"
//   retention_days = 90      # rows older than this are deleted (0: kept)
//   max_mb = 512             # beyond this the oldest rows are deleted (0: no limit)
//   synchronous = "full"     # "full": each commit survives a power cut; "normal": a process kill only
//   quota_mb = 1024          # a hard cap: beyond it rows are not written (as on a full disk) until pruned
//
// Durability: the server writes an exchange's row and waits for its commit before the response's last
// byte goes out, so a reply the client has received in full is on disk even if the process is killed
// (SIGKILL) right after. Rows are written by one thread, in one transaction for all that finished
// together. A write that fails (a full disk, an I/O error) is logged and counted; the request still
// answers. Retention runs when the store opens and then hourly.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "util/expected.h"

namespace edgellm::server {

struct Exchange {
  int64_t id = 0;               // the store's row id (set when written)
  std::string request_id;       // the id the client saw ("chatcmpl-...")
  int64_t time_ms = 0;          // when the request arrived, Unix milliseconds
  std::string key;              // the API key's name ("" without keys)
  std::string client;           // the client's address
  std::string model;
  std::string route;            // "/v1/chat/completions", "/api/generate", ...
  std::string messages;         // the request's messages (chat) or prompt (completion), as JSON text
  std::string reply;            // the text the client received
  std::string finish_reason;    // stop, length, content_filter, cancelled, timeout, error, ...
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;
  double ttft_ms = 0;           // arrival -> first token
  double total_ms = 0;          // arrival -> last token
};

struct StoreOptions {
  bool synchronous_full = true;
  int64_t retention_days = 0;   // 0: keep every row
  int64_t max_bytes = 0;        // 0: no size limit (retention: the oldest rows are deleted)
  int64_t quota_bytes = 0;      // 0: none; beyond it writes fail like on a full disk (SQLite's max_page_count)
  bool read_only = false;       // `edgellm history list|show|export`: the store must exist
};

// Which rows to read: all conditions hold (unset ones are not checked).
struct ExchangeQuery {
  std::optional<int64_t> id;
  std::optional<int64_t> since_ms, until_ms;   // time_ms in [since, until)
  std::optional<std::string> key;
  std::optional<std::string> text;             // in the messages or the reply (case-insensitive for ASCII)
  int64_t limit = 0;                           // 0: all; otherwise the newest `limit` rows
};

struct PruneReport {
  int64_t deleted_by_age = 0;
  int64_t deleted_by_size = 0;
  int64_t bytes_before = 0;
  int64_t bytes_after = 0;
};

class ConversationStore {
 public:
  // Opens (or creates, unless read_only) the store. Errors name the file: it cannot be opened or created,
  // it is not an SQLite database, it is not an edgellm store, or a newer edgellm made it.
  static Expected<std::unique_ptr<ConversationStore>> open(const std::string& path, const StoreOptions& options);
  ~ConversationStore();  // writes what is queued, then stops the writer

  // Queues an exchange for the writer thread; the future says whether its row was committed.
  std::future<bool> submit(Exchange exchange);
  // Writes one exchange now, on the calling thread (tests, tools).
  Expected<int64_t> write(const Exchange& exchange);

  // Rows in time order (oldest first).
  Expected<std::vector<Exchange>> find(const ExchangeQuery& query);
  // Deletes rows older than `older_than_ms` (Unix ms; 0: none) and then the oldest rows until the store's
  // pages in use fit in `max_bytes` (0: no limit), and gives the freed pages back to the file system.
  Expected<PruneReport> prune(int64_t older_than_ms, int64_t max_bytes);
  // Bytes of the database's pages in use (the WAL not counted).
  Expected<int64_t> used_bytes();

  int64_t rows_written() const { return rows_written_.load(); }
  int64_t rows_failed() const { return rows_failed_.load(); }
  int64_t rows_pruned() const { return rows_pruned_.load(); }
  const std::string& path() const { return path_; }

  ConversationStore(const ConversationStore&) = delete;
  ConversationStore& operator=(const ConversationStore&) = delete;

 private:
  ConversationStore() = default;
  void writer_loop();
  struct Pending;
  void write_batch(std::deque<Pending>& batch);
  bool write_rows(std::deque<Pending>& rows, size_t begin, size_t end);  // one transaction, db_mu_ held
  void retention_if_due();
  Expected<void> exec(const char* sql);
  Expected<int64_t> used_bytes_locked();  // with db_mu_ held

  std::string path_;
  StoreOptions options_;
  void* db_ = nullptr;  // sqlite3*; used under db_mu_
  std::mutex db_mu_;
  struct Pending {
    Exchange exchange;
    std::promise<bool> committed;
  };
  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<Pending> queue_;          // guarded by queue_mu_
  bool stopping_ = false;              // guarded by queue_mu_
  std::thread writer_;
  int64_t next_retention_ms_ = 0;      // used by the writer thread only
  std::atomic<int64_t> rows_written_{0};
  std::atomic<int64_t> rows_failed_{0};
  std::atomic<int64_t> rows_pruned_{0};
};

// Unix milliseconds now.
int64_t unix_now_ms();

}  // namespace edgellm::server
