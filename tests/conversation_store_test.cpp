// The conversation store of `edgellm serve --db`: rows written by the writer thread and on the caller's
// thread come back with every field; queries by id, time, key and text; retention by age and by size gives
// space back; files that are not stores are refused with a message naming them; a store that cannot be
// written (its quota, SQLite's page limit, standing in for a full disk) fails the row and keeps the writer.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <fstream>

#include "server/conversation_store.h"
#include "support/test_env.h"

namespace edgellm::server {
namespace {

Exchange exchange(int i, int64_t time_ms, const std::string& key = "alice") {
  Exchange e;
  e.request_id = "chatcmpl-" + std::to_string(i);
  e.time_ms = time_ms;
  e.key = key;
  e.client = "127.0.0.1";
  e.model = "qwen2-tiny";
  e.route = "/v1/chat/completions";
  e.messages = R"([{"role":"user","content":"turn on the lights )" + std::to_string(i) + R"("}])";
  e.reply = "Done: the lights are on (" + std::to_string(i) + ") 灯已打开";
  e.finish_reason = "stop";
  e.prompt_tokens = 10 + i;
  e.generated_tokens = 5 + i;
  e.ttft_ms = 12.5;
  e.total_ms = 80.25;
  return e;
}

std::unique_ptr<ConversationStore> open_store(const std::string& path, StoreOptions o = {}) {
  auto s = ConversationStore::open(path, o);
  EXPECT_TRUE(s.ok()) << s.error().message;
  return s.ok() ? std::move(*s) : nullptr;
}

TEST(ConversationStore, RowsComeBackWithEveryField) {
  test::TempDir dir;
  const std::string path = dir.file("c.db");
  {
    auto store = open_store(path);
    ASSERT_TRUE(store);
    std::vector<std::future<bool>> pending;
    for (int i = 0; i < 5; ++i) pending.push_back(store->submit(exchange(i, 1000 + i)));
    for (auto& p : pending) EXPECT_TRUE(p.get());
    ASSERT_TRUE(store->write(exchange(5, 2000, "bob")).ok());
    EXPECT_EQ(store->rows_written(), 6);
    EXPECT_EQ(store->rows_failed(), 0);
  }
  StoreOptions ro;
  ro.read_only = true;
  auto store = open_store(path, ro);
  ASSERT_TRUE(store);
  auto all = store->find({});
  ASSERT_TRUE(all.ok()) << all.error().message;
  ASSERT_EQ(all->size(), 6u);
  const Exchange want = exchange(3, 1003);
  const Exchange& got = (*all)[3];
  EXPECT_EQ(got.id, 4);
  EXPECT_EQ(got.request_id, want.request_id);
  EXPECT_EQ(got.time_ms, want.time_ms);
  EXPECT_EQ(got.key, want.key);
  EXPECT_EQ(got.client, want.client);
  EXPECT_EQ(got.model, want.model);
  EXPECT_EQ(got.route, want.route);
  EXPECT_EQ(got.messages, want.messages);
  EXPECT_EQ(got.reply, want.reply);
  EXPECT_EQ(got.finish_reason, want.finish_reason);
  EXPECT_EQ(got.prompt_tokens, want.prompt_tokens);
  EXPECT_EQ(got.generated_tokens, want.generated_tokens);
  EXPECT_DOUBLE_EQ(got.ttft_ms, want.ttft_ms);
  EXPECT_DOUBLE_EQ(got.total_ms, want.total_ms);

  ExchangeQuery q;
  q.key = "bob";
  EXPECT_EQ(store->find(q)->size(), 1u);
  q = {};
  q.since_ms = 1002;
  q.until_ms = 1004;
  auto window = store->find(q);
  ASSERT_EQ(window->size(), 2u);
  EXPECT_EQ((*window)[0].time_ms, 1002);
  q = {};
  q.text = "LIGHTS 4";  // case-insensitive, in the messages
  EXPECT_EQ(store->find(q)->size(), 1u);
  q.text = "灯已打开";  // in the reply
  EXPECT_EQ(store->find(q)->size(), 6u);
  q.text = "100%_";  // LIKE's wildcards are literal
  EXPECT_EQ(store->find(q)->size(), 0u);
  q = {};
  q.limit = 2;  // the newest two, oldest first
  auto newest = store->find(q);
  ASSERT_EQ(newest->size(), 2u);
  EXPECT_EQ((*newest)[0].id, 5);
  EXPECT_EQ((*newest)[1].id, 6);
  q = {};
  q.id = 2;
  EXPECT_EQ(store->find(q)->at(0).request_id, "chatcmpl-1");
  EXPECT_FALSE(store->prune(0, 1).ok());  // read-only
}

TEST(ConversationStore, RetentionByAgeAndBySizeFreesSpace) {
  test::TempDir dir;
  const std::string path = dir.file("c.db");
  auto store = open_store(path);
  ASSERT_TRUE(store);
  const std::string big(4000, 'x');
  for (int i = 0; i < 400; ++i) {
    Exchange e = exchange(i, 1000 + i);
    e.reply = big;
    ASSERT_TRUE(store->write(e).ok());
  }
  auto report = store->prune(/*older_than_ms=*/1100, 0);
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(report->deleted_by_age, 100);
  EXPECT_EQ(store->find({})->front().time_ms, 1100);
  const int64_t used = *store->used_bytes();
  EXPECT_GT(used, 1'000'000);
  report = store->prune(0, 400'000);
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_GT(report->deleted_by_size, 150);
  EXPECT_LE(report->bytes_after, 400'000);
  auto left = store->find({});
  ASSERT_FALSE(left->empty());
  EXPECT_EQ(left->back().time_ms, 1399);  // the newest are kept
  EXPECT_EQ(store->rows_pruned(), report->deleted_by_size + 100);
  // The file itself shrank (auto_vacuum = incremental, WAL checkpointed).
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_LE(st.st_size, 500'000);
}

TEST(ConversationStore, RefusesFilesThatAreNotStores) {
  test::TempDir dir;
  const std::string text = dir.file("notes.txt");
  std::ofstream(text) << "this is not a database, but it is long enough to be read as one............"
                         "..................................................................";
  auto r = ConversationStore::open(text, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("notes.txt: not an SQLite database"), std::string::npos) << r.error().message;

  const std::string other = dir.file("other.db");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(other.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE t (x)", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  r = ConversationStore::open(other, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("other.db: an SQLite database with other tables"), std::string::npos)
      << r.error().message;

  const std::string newer = dir.file("newer.db");
  ASSERT_EQ(sqlite3_open(newer.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 7", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  r = ConversationStore::open(newer, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("schema version 7; this edgellm reads up to 1"), std::string::npos)
      << r.error().message;

  StoreOptions ro;
  ro.read_only = true;
  r = ConversationStore::open(dir.file("missing.db"), ro);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("missing.db: cannot open the conversation store"), std::string::npos)
      << r.error().message;
  r = ConversationStore::open(dir.path() + "/no/such/dir/c.db", {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("cannot open or create"), std::string::npos) << r.error().message;
}

TEST(ConversationStore, AFullStoreFailsWritesAndRecoversWhenThereIsRoomAgain) {
  test::TempDir dir;
  StoreOptions o;
  o.quota_bytes = 256 * 1024;  // SQLite's page limit, standing in for a full disk
  auto store = open_store(dir.file("c.db"), o);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->submit(exchange(0, 1000)).get());
  Exchange big = exchange(1, 1001);
  big.reply.assign(300 * 1024, 'y');
  EXPECT_FALSE(store->submit(big).get());  // does not fit: rolled back, counted
  EXPECT_EQ(store->rows_failed(), 1);
  EXPECT_EQ(store->rows_written(), 1);
  // The writer goes on: a small row still fits, and the failed one left nothing behind.
  ASSERT_TRUE(store->submit(exchange(2, 1002)).get());
  auto rows = store->find({});
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[1].request_id, "chatcmpl-2");
}

}  // namespace
}  // namespace edgellm::server
