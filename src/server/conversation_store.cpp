#include "server/conversation_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>

#include "util/log.h"

namespace edgellm::server {
namespace {

// The schema's version (PRAGMA user_version): a store made by a newer edgellm is refused, not misread.
constexpr int kSchemaVersion = 1;

constexpr const char* kCreateSchema = R"sql(
CREATE TABLE IF NOT EXISTS exchanges (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  request_id TEXT NOT NULL,
  time_ms INTEGER NOT NULL,
  key TEXT NOT NULL,
  client TEXT NOT NULL,
  model TEXT NOT NULL,
  route TEXT NOT NULL,
  messages TEXT NOT NULL,
  reply TEXT NOT NULL,
  finish_reason TEXT NOT NULL,
  prompt_tokens INTEGER NOT NULL,
  generated_tokens INTEGER NOT NULL,
  ttft_ms REAL NOT NULL,
  total_ms REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS exchanges_by_time ON exchanges (time_ms);
)sql";

constexpr int64_t kRetentionPeriodMs = 3600 * 1000;

sqlite3* handle(void* db) { return static_cast<sqlite3*>(db); }

Error store_error(sqlite3* db, const std::string& path, const std::string& what) {
  return Error{ErrorCode::kIo, path + ": " + what + ": " + (db != nullptr ? sqlite3_errmsg(db) : "out of memory")};
}

// A prepared statement, finalized when it goes out of scope.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  ~Statement() { sqlite3_finalize(stmt_); }
  bool ok() const { return rc_ == SQLITE_OK; }
  sqlite3_stmt* get() { return stmt_; }
  void bind(int i, const std::string& s) {
    sqlite3_bind_text(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  }
  void bind(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  void bind(int i, double v) { sqlite3_bind_double(stmt_, i, v); }
  int step() { return sqlite3_step(stmt_); }
  std::string text(int col) {
    const auto* p = sqlite3_column_text(stmt_, col);
    return p != nullptr ? std::string(reinterpret_cast<const char*>(p), sqlite3_column_bytes(stmt_, col)) : "";
  }
  int64_t int64(int col) { return sqlite3_column_int64(stmt_, col); }
  double real(int col) { return sqlite3_column_double(stmt_, col); }

  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_ERROR;
};

Expected<int64_t> pragma_int(sqlite3* db, const std::string& path, const char* sql) {
  Statement st(db, sql);
  if (!st.ok() || st.step() != SQLITE_ROW) return store_error(db, path, std::string("cannot read ") + sql);
  return st.int64(0);
}

// `text` as a LIKE pattern that matches it anywhere, with \ as the escape character.
std::string like_anywhere(const std::string& text) {
  std::string out = "%";
  for (char c : text) {
    if (c == '%' || c == '_' || c == '\\') out += '\\';
    out += c;
  }
  return out + "%";
}

}  // namespace

int64_t unix_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Expected<std::unique_ptr<ConversationStore>> ConversationStore::open(const std::string& path,
                                                                      const StoreOptions& options) {
  std::unique_ptr<ConversationStore> store(new ConversationStore());
  store->path_ = path;
  store->options_ = options;
  sqlite3* db = nullptr;
  const int flags = options.read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  const int rc = sqlite3_open_v2(path.c_str(), &db, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  store->db_ = db;  // closed by the destructor, also on the errors below
  if (rc != SQLITE_OK) {
    return store_error(db, path, options.read_only ? "cannot open the conversation store"
                                                   : "cannot open or create the conversation store");
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, 5000);  // `edgellm history prune` beside a running server
  // Reading the schema version is the first read: a file that is not a database fails here.
  auto version = pragma_int(db, path, "PRAGMA user_version");
  if (!version.ok()) {
    return Error{ErrorCode::kFormat, path + ": not an SQLite database (" + sqlite3_errmsg(db) + ")"};
  }
  if (*version > kSchemaVersion) {
    return Error{ErrorCode::kFormat, path + ": the conversation store has schema version " +
                                                std::to_string(*version) + "; this edgellm reads up to " +
                                                std::to_string(kSchemaVersion) + " (made by a newer edgellm)"};
  }
  auto tables = pragma_int(db, path, "SELECT count(*) FROM sqlite_master WHERE type = 'table'");
  if (!tables.ok()) return tables.error();
  if (*version == 0 && *tables > 0) {
    return Error{ErrorCode::kFormat,
                 path + ": an SQLite database with other tables, not an edgellm conversation store"};
  }
  if (*version == 0 && options.read_only) {
    return Error{ErrorCode::kFormat, path + ": an empty database, not an edgellm conversation store"};
  }
  if (!options.read_only) {
    // auto_vacuum must be set before the first table exists: deleted rows' pages can then be handed
    // back to the file system (retention by size).
    if (*version == 0) {
      if (auto r = store->exec("PRAGMA auto_vacuum = INCREMENTAL"); !r.ok()) return r.error();
    }
    if (auto r = store->exec("PRAGMA journal_mode = WAL"); !r.ok()) return r.error();
    if (auto r = store->exec(options.synchronous_full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
        !r.ok()) {
      return r.error();
    }
    if (options.quota_bytes > 0) {
      auto page_size = pragma_int(db, path, "PRAGMA page_size");
      if (!page_size.ok()) return page_size.error();
      const int64_t pages = std::max<int64_t>(8, options.quota_bytes / *page_size);
      if (auto r = store->exec(("PRAGMA max_page_count = " + std::to_string(pages)).c_str()); !r.ok()) {
        return r.error();
      }
    }
    if (*version == 0) {
      if (auto r = store->exec(kCreateSchema); !r.ok()) return r.error();
      if (auto r = store->exec(("PRAGMA user_version = " + std::to_string(kSchemaVersion)).c_str()); !r.ok()) {
        return r.error();
      }
    }
    store->retention_if_due();
    store->writer_ = std::thread([s = store.get()] { s->writer_loop(); });
  }
  return store;
}

ConversationStore::~ConversationStore() {
  if (writer_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(queue_mu_);
      stopping_ = true;
    }
    queue_cv_.notify_all();
    writer_.join();
  }
  sqlite3_close_v2(handle(db_));
}

Expected<void> ConversationStore::exec(const char* sql) {
  char* message = nullptr;
  if (sqlite3_exec(handle(db_), sql, nullptr, nullptr, &message) != SQLITE_OK) {
    std::string what = message != nullptr ? message : sqlite3_errmsg(handle(db_));
    sqlite3_free(message);
    return Error{ErrorCode::kIo, path_ + ": " + what};
  }
  return {};
}

std::future<bool> ConversationStore::submit(Exchange exchange) {
  Pending p;
  p.exchange = std::move(exchange);
  std::future<bool> committed = p.committed.get_future();
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    queue_.push_back(std::move(p));
  }
  queue_cv_.notify_one();
  return committed;
}

namespace {

constexpr const char* kInsert =
    "INSERT INTO exchanges (request_id, time_ms, key, client, model, route, messages, reply, finish_reason, "
    "prompt_tokens, generated_tokens, ttft_ms, total_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

bool insert_row(Statement& st, const Exchange& e) {
  sqlite3_reset(st.get());
  st.bind(1, e.request_id);
  st.bind(2, e.time_ms);
  st.bind(3, e.key);
  st.bind(4, e.client);
  st.bind(5, e.model);
  st.bind(6, e.route);
  st.bind(7, e.messages);
  st.bind(8, e.reply);
  st.bind(9, e.finish_reason);
  st.bind(10, e.prompt_tokens);
  st.bind(11, e.generated_tokens);
  st.bind(12, e.ttft_ms);
  st.bind(13, e.total_ms);
  return st.step() == SQLITE_DONE;
}

}  // namespace

Expected<int64_t> ConversationStore::write(const Exchange& exchange) {
  std::lock_guard<std::mutex> lock(db_mu_);
  Statement st(handle(db_), kInsert);
  if (!st.ok() || !insert_row(st, exchange)) return store_error(handle(db_), path_, "cannot write the exchange");
  rows_written_.fetch_add(1);
  return sqlite3_last_insert_rowid(handle(db_));
}

void ConversationStore::writer_loop() {
  for (;;) {
    std::deque<Pending> batch;
    {
      std::unique_lock<std::mutex> lock(queue_mu_);
      queue_cv_.wait_for(lock, std::chrono::minutes(1), [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty() && stopping_) return;
      batch.swap(queue_);
    }
    if (!batch.empty()) write_batch(batch);
    retention_if_due();
  }
}

bool ConversationStore::write_rows(std::deque<Pending>& rows, size_t begin, size_t end) {
  sqlite3* db = handle(db_);
  bool ok = sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK;
  Statement st(db, kInsert);
  ok = ok && st.ok();
  for (size_t i = begin; ok && i < end; ++i) ok = insert_row(st, rows[i].exchange);
  ok = ok && sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) == SQLITE_OK;
  if (!ok) {
    const std::string why = sqlite3_errmsg(db);
    if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    if (end - begin == 1) {
      EDGELLM_LOG_ERROR("serve: conversation store %s: exchange %s not saved: %s", path_.c_str(),
                        rows[begin].exchange.request_id.c_str(), why.c_str());
    }
  }
  return ok;
}

void ConversationStore::write_batch(std::deque<Pending>& batch) {
  // Everything that finished meanwhile in one transaction: one sync to disk for all of them. If that
  // fails, each row alone, so that one row that cannot be written does not take the others with it.
  std::lock_guard<std::mutex> lock(db_mu_);
  if (write_rows(batch, 0, batch.size())) {
    rows_written_.fetch_add(static_cast<int64_t>(batch.size()));
    for (Pending& p : batch) p.committed.set_value(true);
    return;
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    const bool ok = batch.size() > 1 && write_rows(batch, i, i + 1);  // a batch of one was tried alone already
    (ok ? rows_written_ : rows_failed_).fetch_add(1);
    batch[i].committed.set_value(ok);
  }
}

void ConversationStore::retention_if_due() {
  if (options_.retention_days <= 0 && options_.max_bytes <= 0) return;
  const int64_t now = unix_now_ms();
  if (now < next_retention_ms_) return;
  next_retention_ms_ = now + kRetentionPeriodMs;
  const int64_t cutoff = options_.retention_days > 0 ? now - options_.retention_days * 86400 * 1000 : 0;
  auto report = prune(cutoff, options_.max_bytes);
  if (!report.ok()) {
    EDGELLM_LOG_ERROR("serve: conversation store retention: %s", report.error().message.c_str());
  } else if (report->deleted_by_age + report->deleted_by_size > 0) {
    EDGELLM_LOG_INFO("serve: conversation store %s: retention deleted %lld old and %lld for size", path_.c_str(),
                     static_cast<long long>(report->deleted_by_age), static_cast<long long>(report->deleted_by_size));
  }
}

Expected<int64_t> ConversationStore::used_bytes() {
  std::lock_guard<std::mutex> lock(db_mu_);
  return used_bytes_locked();
}

Expected<int64_t> ConversationStore::used_bytes_locked() {
  sqlite3* db = handle(db_);
  auto pages = pragma_int(db, path_, "PRAGMA page_count");
  if (!pages.ok()) return pages.error();
  auto free_pages = pragma_int(db, path_, "PRAGMA freelist_count");
  if (!free_pages.ok()) return free_pages.error();
  auto page_size = pragma_int(db, path_, "PRAGMA page_size");
  if (!page_size.ok()) return page_size.error();
  return (*pages - *free_pages) * *page_size;
}

Expected<PruneReport> ConversationStore::prune(int64_t older_than_ms, int64_t max_bytes) {
  if (options_.read_only) return Error{ErrorCode::kInvalidArgument, path_ + ": opened read-only"};
  std::lock_guard<std::mutex> lock(db_mu_);
  sqlite3* db = handle(db_);
  PruneReport report;
  auto before = used_bytes_locked();
  if (!before.ok()) return before.error();
  report.bytes_before = *before;
  if (older_than_ms > 0) {
    Statement st(db, "DELETE FROM exchanges WHERE time_ms < ?");
    st.bind(1, older_than_ms);
    if (!st.ok() || st.step() != SQLITE_DONE) return store_error(db, path_, "cannot delete old exchanges");
    report.deleted_by_age = sqlite3_changes(db);
  }
  if (max_bytes > 0) {
    // The oldest rows, a tenth of what is left at a time, until the pages in use fit.
    for (;;) {
      auto used = used_bytes_locked();
      if (!used.ok()) return used.error();
      if (*used <= max_bytes) break;
      auto rows = pragma_int(db, path_, "SELECT count(*) FROM exchanges");
      if (!rows.ok()) return rows.error();
      if (*rows == 0) break;
      Statement st(db, "DELETE FROM exchanges WHERE id IN (SELECT id FROM exchanges ORDER BY id LIMIT ?)");
      st.bind(1, std::max<int64_t>(1, *rows / 10));
      if (!st.ok() || st.step() != SQLITE_DONE) return store_error(db, path_, "cannot delete the oldest exchanges");
      report.deleted_by_size += sqlite3_changes(db);
    }
  }
  if (report.deleted_by_age + report.deleted_by_size > 0) {
    sqlite3_exec(db, "PRAGMA incremental_vacuum", nullptr, nullptr, nullptr);
    sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr);
  }
  auto after = used_bytes_locked();
  report.bytes_after = after.ok() ? *after : 0;
  rows_pruned_.fetch_add(report.deleted_by_age + report.deleted_by_size);
  return report;
}

Expected<std::vector<Exchange>> ConversationStore::find(const ExchangeQuery& q) {
  std::string sql =
      "SELECT id, request_id, time_ms, key, client, model, route, messages, reply, finish_reason, prompt_tokens, "
      "generated_tokens, ttft_ms, total_ms FROM exchanges WHERE 1";
  if (q.id) sql += " AND id = ?1";
  if (q.since_ms) sql += " AND time_ms >= ?2";
  if (q.until_ms) sql += " AND time_ms < ?3";
  if (q.key) sql += " AND key = ?4";
  if (q.text) sql += " AND (messages LIKE ?5 ESCAPE '\\' OR reply LIKE ?5 ESCAPE '\\')";
  sql += " ORDER BY id DESC";
  if (q.limit > 0) sql += " LIMIT ?6";
  std::lock_guard<std::mutex> lock(db_mu_);
  Statement st(handle(db_), sql.c_str());
  if (!st.ok()) return store_error(handle(db_), path_, "cannot read the exchanges");
  if (q.id) st.bind(1, *q.id);
  if (q.since_ms) st.bind(2, *q.since_ms);
  if (q.until_ms) st.bind(3, *q.until_ms);
  if (q.key) st.bind(4, *q.key);
  if (q.text) st.bind(5, like_anywhere(*q.text));
  if (q.limit > 0) st.bind(6, q.limit);
  std::vector<Exchange> out;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) {
    Exchange e;
    e.id = st.int64(0);
    e.request_id = st.text(1);
    e.time_ms = st.int64(2);
    e.key = st.text(3);
    e.client = st.text(4);
    e.model = st.text(5);
    e.route = st.text(6);
    e.messages = st.text(7);
    e.reply = st.text(8);
    e.finish_reason = st.text(9);
    e.prompt_tokens = st.int64(10);
    e.generated_tokens = st.int64(11);
    e.ttft_ms = st.real(12);
    e.total_ms = st.real(13);
    out.push_back(std::move(e));
  }
  if (rc != SQLITE_DONE) return store_error(handle(db_), path_, "cannot read the exchanges");
  std::reverse(out.begin(), out.end());
  return out;
}

}  // namespace edgellm::server
