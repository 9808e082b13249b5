// The pieces of `edgellm serve` below the HTTP routes: the Prometheus exposition, the board's sensors
// read from a fake /sys tree, the reasoning splitter, request field checks, and the server's health
// while its models load (the routes themselves are driven by real clients in tests/python/test_serve.py).
#include <gtest/gtest.h>

#include <httplib.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "server/http_server.h"
#include "server/metrics.h"
#include "server/reasoning_splitter.h"
#include "server/request_fields.h"
#include "server/system_metrics.h"
#include "support/test_env.h"
#include "support/tiny_models.h"

namespace edgellm::server {
namespace {

TEST(Metrics, RendersTheExpositionFormat) {
  Metrics m;
  m.declare_counter("t_requests_total", "Requests.", {"route", "status"});
  m.declare_gauge("t_depth", "Depth \"now\".");
  m.declare_histogram("t_latency_seconds", "Latency.", {0.1, 1}, {"model"});
  m.declare_collected("t_absent", "Never there.", "gauge", [] { return std::vector<Sample>{}; });
  m.declare_collected("t_sensor", "A sensor.", "gauge", [] {
    return std::vector<Sample>{{{{"zone", "a\"b"}}, 1.5}};
  });
  m.add("t_requests_total", {"/v1/x", "200"});
  m.add("t_requests_total", {"/v1/x", "200"}, 2);
  m.set("t_depth", {}, 3);
  m.observe("t_latency_seconds", {"m1"}, 0.05);
  m.observe("t_latency_seconds", {"m1"}, 0.5);
  m.observe("t_latency_seconds", {"m1"}, 7);
  EXPECT_EQ(m.value("t_requests_total", {"/v1/x", "200"}), 3);
  const std::string text = m.render();
  EXPECT_EQ(text,
            "# HELP t_requests_total Requests.\n"
            "# TYPE t_requests_total counter\n"
            "t_requests_total{route=\"/v1/x\",status=\"200\"} 3\n"
            "# HELP t_depth Depth \\\"now\\\".\n"
            "# TYPE t_depth gauge\n"
            "t_depth 3\n"
            "# HELP t_latency_seconds Latency.\n"
            "# TYPE t_latency_seconds histogram\n"
            "t_latency_seconds_bucket{model=\"m1\",le=\"0.1\"} 1\n"
            "t_latency_seconds_bucket{model=\"m1\",le=\"1\"} 2\n"
            "t_latency_seconds_bucket{model=\"m1\",le=\"+Inf\"} 3\n"
            "t_latency_seconds_sum{model=\"m1\"} 7.55\n"
            "t_latency_seconds_count{model=\"m1\"} 3\n"
            "# HELP t_sensor A sensor.\n"
            "# TYPE t_sensor gauge\n"
            "t_sensor{zone=\"a\\\"b\"} 1.5\n");
}

void write(const std::filesystem::path& p, const std::string& text) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

TEST(SystemMetrics, ReadsTheBoardsSensorsWhereTheyExist) {
  test::TempDir dir;
  const std::string root = dir.path();
  EXPECT_TRUE(thermal_zone_celsius(root).empty());
  EXPECT_TRUE(cpu_frequency_hertz(root).empty());
  EXPECT_TRUE(rknpu_load_ratio(root).empty());
  write(root + "/sys/class/thermal/thermal_zone0/temp", "45230\n");
  write(root + "/sys/class/thermal/thermal_zone0/type", "soc-thermal\n");
  write(root + "/sys/class/thermal/thermal_zone10/temp", "38000\n");
  write(root + "/sys/class/thermal/thermal_zone1/temp", "garbage\n");
  write(root + "/sys/devices/system/cpu/cpu4/cpufreq/scaling_cur_freq", "2256000\n");
  write(root + "/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq", "408000\n");
  write(root + "/sys/devices/system/cpu/cpufreq/policy0/scaling_cur_freq", "1\n");  // not a cpuN directory
  write(root + "/sys/kernel/debug/rknpu/load", "NPU load:  Core0: 12%, Core1:  0%, Core2: 100%,\n");
  const auto temps = thermal_zone_celsius(root);
  ASSERT_EQ(temps.size(), 2u);
  EXPECT_EQ(temps[0].labels, (Labels{{"zone", "thermal_zone0"}, {"type", "soc-thermal"}}));
  EXPECT_DOUBLE_EQ(temps[0].value, 45.23);
  EXPECT_EQ(temps[1].labels, (Labels{{"zone", "thermal_zone10"}, {"type", "unknown"}}));
  const auto freqs = cpu_frequency_hertz(root);
  ASSERT_EQ(freqs.size(), 2u);
  EXPECT_EQ(freqs[0].labels, (Labels{{"cpu", "0"}}));
  EXPECT_DOUBLE_EQ(freqs[1].value, 2256000000.0);
  const auto npu = rknpu_load_ratio(root);
  ASSERT_EQ(npu.size(), 3u);
  EXPECT_DOUBLE_EQ(npu[0].value, 0.12);
  EXPECT_DOUBLE_EQ(npu[2].value, 1.0);
  write(root + "/sys/kernel/debug/rknpu/load", "NPU load:  35%\n");  // a one-core NPU (RK3576 older drivers)
  ASSERT_EQ(rknpu_load_ratio(root).size(), 1u);
  EXPECT_DOUBLE_EQ(rknpu_load_ratio(root)[0].value, 0.35);
  EXPECT_EQ(process_resident_memory_bytes().size(), 1u);
  EXPECT_GT(process_resident_memory_bytes()[0].value, 0);
}

ReasoningSplitter::Pieces split_all(const std::string& text, size_t piece, bool open) {
  ReasoningSplitter s(open);
  ReasoningSplitter::Pieces all;
  for (size_t i = 0; i < text.size(); i += piece) {
    const auto p = s.push(text.substr(i, piece));
    all.reasoning += p.reasoning;
    all.content += p.content;
  }
  const auto p = s.flush();
  all.reasoning += p.reasoning;
  all.content += p.content;
  return all;
}

TEST(ReasoningSplitter, SeparatesTheThinkBlockHoweverTheTextIsCut) {
  const std::string text = "<think>\nThe user greets me.\n</think>\n\nHello! How can I help?";
  for (size_t piece = 1; piece <= text.size(); ++piece) {
    const auto p = split_all(text, piece, false);
    EXPECT_EQ(p.reasoning, "\nThe user greets me.\n") << "pieces of " << piece;
    EXPECT_EQ(p.content, "Hello! How can I help?") << "pieces of " << piece;
  }
  // The template opened the block: only "</think>" closes it.
  auto p = split_all("Thinking...</think>\n\nAnswer", 3, true);
  EXPECT_EQ(p.reasoning, "Thinking...");
  EXPECT_EQ(p.content, "Answer");
  // No think block: all answer, including a "<" that starts like a tag.
  p = split_all("<b>bold</b> text", 1, false);
  EXPECT_EQ(p.reasoning, "");
  EXPECT_EQ(p.content, "<b>bold</b> text");
  // Cut off inside the reasoning: what there is, is reasoning.
  p = split_all("<think>still going </thi", 4, false);
  EXPECT_EQ(p.reasoning, "still going </thi");
  EXPECT_EQ(p.content, "");
}

TEST(RequestFields, CheckTypesAndRangesAndNameTheField) {
  const auto body = parse_json_object(R"({"a": 1.5, "n": 3, "f": 16.0, "s": "x", "b": true, "z": null,
                                          "o": {"t": "hot"}})");
  const Fields f(body, "");
  EXPECT_EQ(f.number("a", 0, 2), 1.5);
  EXPECT_EQ(f.integer("n", 1, 5), 3);
  EXPECT_EQ(f.integer("f", 0, 20), 16);  // 16.0 is an integer
  EXPECT_EQ(f.string("s"), "x");
  EXPECT_EQ(f.boolean("b"), true);
  EXPECT_FALSE(f.number("z", 0, 1).has_value());  // null is absent
  EXPECT_FALSE(f.has("missing"));
  auto expect_error = [](auto fn, const std::string& param, const std::string& needle) {
    try {
      fn();
      ADD_FAILURE() << "no error; expected " << needle;
    } catch (const RequestError& e) {
      EXPECT_EQ(e.error().status, 400);
      EXPECT_EQ(e.error().param, param);
      EXPECT_NE(e.error().message.find(needle), std::string::npos) << e.error().message;
    }
  };
  expect_error([&] { f.number("a", 0, 1); }, "a", "'a' must be between 0 and 1, got 1.5");
  expect_error([&] { f.integer("a", 0, 5); }, "a", "'a' must be an integer, got a fractional number");
  expect_error([&] { f.integer("n", 5, 9); }, "n", "between 5 and 9, got 3");
  expect_error([&] { f.boolean("s"); }, "s", "'s' must be true or false, got a string");
  expect_error([&] { Fields(body["o"], "options").number("t", 0, 1); }, "options.t", "'options.t' must be a number");
  expect_error([&] { parse_json_object("{\"a\": }"); }, "", "not valid JSON");
  expect_error([&] { parse_json_object("\"text\""); }, "", "must be a JSON object, got a string");
}

TEST(HttpServer, HealthAnswers503UntilTheModelsAreLoaded) {
  test::TempDir dir;
  ServeOptions o;
  o.models.push_back({test::write_tiny_gguf(dir.path(), test::tiny_config(Arch::kQwen2)), "tiny"});
  o.port = 0;
  o.engine.n_ctx = 64;
  o.load.n_threads = 1;
  HttpServer server(o);
  auto port = server.bind();
  ASSERT_TRUE(port.ok()) << port.error().message;
  std::thread serving([&] { server.serve(); });
  httplib::Client client("127.0.0.1", *port);
  auto health = client.Get("/health");
  for (int i = 0; i < 200 && !health; ++i) {  // the listener may take a moment to start
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    health = client.Get("/health");
  }
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 503);
  EXPECT_NE(health->body.find("loading"), std::string::npos);
  auto models = client.Get("/v1/models");
  ASSERT_TRUE(models);
  EXPECT_EQ(models->status, 503);
  EXPECT_NE(models->body.find("still loading"), std::string::npos);
  auto ollama = client.Post("/api/chat", "{}", "application/json");
  ASSERT_TRUE(ollama);
  EXPECT_EQ(ollama->status, 503);
  EXPECT_EQ(ollama->body.rfind("{\"error\":", 0), 0u) << ollama->body;  // Ollama's shape

  ASSERT_TRUE(server.load_models().ok());
  health = client.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  models = client.Get("/v1/models");
  ASSERT_TRUE(models);
  EXPECT_EQ(models->status, 200);
  EXPECT_NE(models->body.find("\"tiny\""), std::string::npos);
  server.shutdown();
  server.shutdown();  // idempotent
  serving.join();
}

TEST(HttpServer, AModelThatDoesNotLoadIsAnErrorNamingIt) {
  test::TempDir dir;
  ServeOptions o;
  o.models.push_back({dir.file("missing.gguf"), ""});
  o.port = 0;
  HttpServer server(o);
  const Status st = server.load_models();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("missing.gguf"), std::string::npos) << st.error().message;
  // A port that is taken.
  ServeOptions taken = o;
  HttpServer first(o);
  auto port = first.bind();
  ASSERT_TRUE(port.ok());
  taken.port = *port;
  HttpServer second(taken);
  auto again = second.bind();
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.error().message.find("cannot listen on 127.0.0.1:" + std::to_string(*port)), std::string::npos);
}

}  // namespace
}  // namespace edgellm::server
