// Prometheus metrics in the text exposition format 0.0.4 (prometheus.io/docs/instrumenting/exposition_formats):
// counters, gauges and histograms with labels, plus values read when scraped (collectors). Names follow
// Prometheus's rules: base units in the name (_seconds, _bytes), counters end in _total, labels of low
// cardinality only. Debian has no Prometheus C++ client, so this is a small one; `promtool check metrics`
// checks its output (tests/python/test_serve.py).
//
// Thread-safe: handlers on every HTTP thread record into it while /metrics renders it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace edgellm::server {

using Labels = std::vector<std::pair<std::string, std::string>>;  // name -> value, in the family's order

// One sample a collector reports at scrape time.
struct Sample {
  Labels labels;
  double value = 0;
};

class Metrics {
 public:
  // Families are declared once (a name declared twice is a programmer error). `label_names` fixes the
  // labels every sample of the family carries.
  void declare_counter(const std::string& name, const std::string& help, std::vector<std::string> label_names = {});
  void declare_gauge(const std::string& name, const std::string& help, std::vector<std::string> label_names = {});
  // Histogram with upper bounds `buckets` (ascending; +Inf is implied).
  void declare_histogram(const std::string& name, const std::string& help, std::vector<double> buckets,
                         std::vector<std::string> label_names = {});
  // A family whose samples are read from `collect` at each scrape (process RSS, engine pool, sensors);
  // `type` is "gauge" or "counter". A collector that returns no sample exports nothing (absent source).
  void declare_collected(const std::string& name, const std::string& help, const std::string& type,
                         std::function<std::vector<Sample>()> collect);

  // Label values in the order of the family's label names.
  void add(const std::string& name, const std::vector<std::string>& label_values, double amount = 1.0);
  void set(const std::string& name, const std::vector<std::string>& label_values, double value);
  void observe(const std::string& name, const std::vector<std::string>& label_values, double value);

  // The current value of a counter or gauge sample (0 if never written), for tests.
  double value(const std::string& name, const std::vector<std::string>& label_values) const;

  // Everything in the text exposition format, families in declaration order.
  std::string render() const;

 private:
  enum class Kind { kCounter, kGauge, kHistogram, kCollected };
  struct HistogramValues {
    std::vector<uint64_t> bucket_counts;  // per bound, not cumulative
    double sum = 0;
    uint64_t count = 0;
  };
  struct Family {
    std::string name, help, collected_type;
    Kind kind = Kind::kCounter;
    std::vector<std::string> label_names;
    std::vector<double> buckets;
    std::map<std::vector<std::string>, double> values;                // counter / gauge
    std::map<std::vector<std::string>, HistogramValues> histograms;  // histogram
    std::function<std::vector<Sample>()> collect;
  };
  Family& declare(const std::string& name, const std::string& help, Kind kind, std::vector<std::string> label_names);
  Family& family(const std::string& name, Kind kind, size_t n_labels);
  const Family* find(const std::string& name) const;

  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Family>> families_;  // guarded by mu_
};

// A label value or HELP text escaped for the exposition format (\\, \", \n).
std::string escape_label_value(const std::string& value);

// Standard buckets for request latencies in seconds (a board answers in tens of ms to minutes).
std::vector<double> latency_buckets_seconds();

}  // namespace edgellm::server
