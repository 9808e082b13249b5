#include "server/metrics.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "util/check.h"

namespace edgellm::server {

std::string escape_label_value(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::vector<double> latency_buckets_seconds() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};
}

namespace {

// A sample value: integers without a fraction, others with enough digits to round-trip.
std::string format_value(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  char buf[64];
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
  }
  // The shortest form that reads back as the same double (0.005, not 0.0050000000000000001).
  for (int digits = 6; digits <= 17; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

std::string label_set(const std::vector<std::string>& names, const std::vector<std::string>& values,
                      const std::string& extra_name = {}, const std::string& extra_value = {}) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    out += (out.empty() ? "" : ",") + names[i] + "=\"" + escape_label_value(values[i]) + "\"";
  }
  if (!extra_name.empty()) out += (out.empty() ? "" : ",") + extra_name + "=\"" + extra_value + "\"";
  return out.empty() ? std::string() : "{" + out + "}";
}

}  // namespace

Metrics::Family& Metrics::declare(const std::string& name, const std::string& help, Kind kind,
                                  std::vector<std::string> label_names) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& f : families_) EDGELLM_CHECK(f->name != name);
  auto f = std::make_unique<Family>();
  f->name = name;
  f->help = help;
  f->kind = kind;
  f->label_names = std::move(label_names);
  families_.push_back(std::move(f));
  return *families_.back();
}

void Metrics::declare_counter(const std::string& name, const std::string& help, std::vector<std::string> label_names) {
  declare(name, help, Kind::kCounter, std::move(label_names));
}

void Metrics::declare_gauge(const std::string& name, const std::string& help, std::vector<std::string> label_names) {
  declare(name, help, Kind::kGauge, std::move(label_names));
}

void Metrics::declare_histogram(const std::string& name, const std::string& help, std::vector<double> buckets,
                                std::vector<std::string> label_names) {
  for (size_t i = 1; i < buckets.size(); ++i) EDGELLM_CHECK(buckets[i - 1] < buckets[i]);
  Family& f = declare(name, help, Kind::kHistogram, std::move(label_names));
  std::lock_guard<std::mutex> lock(mu_);
  f.buckets = std::move(buckets);
}

void Metrics::declare_collected(const std::string& name, const std::string& help, const std::string& type,
                                std::function<std::vector<Sample>()> collect) {
  EDGELLM_CHECK(type == "gauge" || type == "counter");
  Family& f = declare(name, help, Kind::kCollected, {});
  std::lock_guard<std::mutex> lock(mu_);
  f.collected_type = type;
  f.collect = std::move(collect);
}

Metrics::Family& Metrics::family(const std::string& name, Kind kind, size_t n_labels) {
  for (auto& f : families_) {
    if (f->name == name) {
      EDGELLM_CHECK(f->kind == kind && f->label_names.size() == n_labels);
      return *f;
    }
  }
  EDGELLM_CHECK(false && "metric not declared");
  return *families_.front();
}

const Metrics::Family* Metrics::find(const std::string& name) const {
  for (const auto& f : families_) {
    if (f->name == name) return f.get();
  }
  return nullptr;
}

void Metrics::add(const std::string& name, const std::vector<std::string>& label_values, double amount) {
  std::lock_guard<std::mutex> lock(mu_);
  family(name, Kind::kCounter, label_values.size()).values[label_values] += amount;
}

void Metrics::set(const std::string& name, const std::vector<std::string>& label_values, double value) {
  std::lock_guard<std::mutex> lock(mu_);
  family(name, Kind::kGauge, label_values.size()).values[label_values] = value;
}

void Metrics::observe(const std::string& name, const std::vector<std::string>& label_values, double value) {
  std::lock_guard<std::mutex> lock(mu_);
  Family& f = family(name, Kind::kHistogram, label_values.size());
  HistogramValues& h = f.histograms[label_values];
  if (h.bucket_counts.empty()) h.bucket_counts.assign(f.buckets.size(), 0);
  for (size_t i = 0; i < f.buckets.size(); ++i) {
    if (value <= f.buckets[i]) {
      ++h.bucket_counts[i];
      break;
    }
  }
  h.sum += value;
  ++h.count;
}

double Metrics::value(const std::string& name, const std::vector<std::string>& label_values) const {
  std::lock_guard<std::mutex> lock(mu_);
  const Family* f = find(name);
  if (f == nullptr) return 0;
  const auto it = f->values.find(label_values);
  return it == f->values.end() ? 0 : it->second;
}

std::string Metrics::render() const {
  // Collectors run outside the lock (they read files and engine statistics, never this registry).
  std::vector<std::pair<const Family*, std::vector<Sample>>> collected;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& f : families_) {
      if (f->kind == Kind::kCollected) collected.push_back({f.get(), {}});
    }
  }
  for (auto& [f, samples] : collected) samples = f->collect();

  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  size_t next_collected = 0;
  for (const auto& f : families_) {
    const std::vector<Sample>* samples = nullptr;
    if (f->kind == Kind::kCollected) {
      samples = &collected[next_collected++].second;
      if (samples->empty()) continue;  // an absent source is not exported
    }
    const char* type = f->kind == Kind::kCounter     ? "counter"
                       : f->kind == Kind::kGauge     ? "gauge"
                       : f->kind == Kind::kHistogram ? "histogram"
                                                     : f->collected_type.c_str();
    out += "# HELP " + f->name + " " + escape_label_value(f->help) + "\n";
    out += "# TYPE " + f->name + " " + type + "\n";
    switch (f->kind) {
      case Kind::kCounter:
      case Kind::kGauge:
        if (f->values.empty() && f->label_names.empty()) out += f->name + " 0\n";
        for (const auto& [labels, v] : f->values) out += f->name + label_set(f->label_names, labels) + " " + format_value(v) + "\n";
        break;
      case Kind::kHistogram:
        for (const auto& [labels, h] : f->histograms) {
          uint64_t cumulative = 0;
          for (size_t i = 0; i < f->buckets.size(); ++i) {
            cumulative += h.bucket_counts[i];
            out += f->name + "_bucket" + label_set(f->label_names, labels, "le", format_value(f->buckets[i])) + " " +
                   std::to_string(cumulative) + "\n";
          }
          out += f->name + "_bucket" + label_set(f->label_names, labels, "le", "+Inf") + " " +
                 std::to_string(h.count) + "\n";
          out += f->name + "_sum" + label_set(f->label_names, labels) + " " + format_value(h.sum) + "\n";
          out += f->name + "_count" + label_set(f->label_names, labels) + " " + std::to_string(h.count) + "\n";
        }
        break;
      case Kind::kCollected:
        for (const Sample& s : *samples) {
          std::string labels;
          for (const auto& [n, v] : s.labels) labels += (labels.empty() ? "" : ",") + n + "=\"" + escape_label_value(v) + "\"";
          out += f->name + (labels.empty() ? "" : "{" + labels + "}") + " " + format_value(s.value) + "\n";
        }
        break;
    }
  }
  return out;
}

}  // namespace edgellm::server
