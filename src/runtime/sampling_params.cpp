#include "runtime/sampling_params.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "format/gguf.h"
#include "util/log.h"

namespace edgellm {
namespace {

std::string format_float(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

Error invalid(const std::string& what) { return make_error(ErrorCode::kInvalidArgument, "sampling: " + what); }

Status check_unit_interval(const char* field, float value, const char* off_note) {
  if (!(value >= 0.0f && value <= 1.0f)) {  // also rejects NaN
    return invalid(std::string(field) + " must be in [0, 1] (" + off_note + "), got " + format_float(value));
  }
  return {};
}

Status check_finite(const char* field, float value) {
  if (!std::isfinite(value)) return invalid(std::string(field) + " must be a finite number, got " + format_float(value));
  return {};
}

struct Preset {
  const char* name;
  float temperature;
  float top_p;
};

// Values from the runtime API issue (#5): the settings applications on these boards use per task.
constexpr Preset kPresets[] = {
    {"qa", 0.3f, 0.9f},
    {"creative", 0.8f, 0.95f},
    {"code", 0.5f, 0.85f},
};

}  // namespace

Status SamplingParams::validate(int32_t n_vocab) const {
  if (n_vocab <= 0) return invalid("n_vocab must be positive, got " + std::to_string(n_vocab));
  EDGELLM_TRY(check_finite("temperature", temperature));
  if (top_k < -1) {
    return invalid("top_k must be >= 0 (0 or -1 disables it), got " + std::to_string(top_k));
  }
  EDGELLM_TRY(check_unit_interval("top_p", top_p, "1 disables it"));
  EDGELLM_TRY(check_unit_interval("min_p", min_p, "0 disables it"));
  EDGELLM_TRY(check_unit_interval("typical_p", typical_p, "1 disables it"));
  if (!(std::isfinite(repetition_penalty) && repetition_penalty > 0.0f)) {
    return invalid("repetition_penalty must be a finite number > 0 (1 disables it), got " +
                   format_float(repetition_penalty));
  }
  EDGELLM_TRY(check_finite("frequency_penalty", frequency_penalty));
  EDGELLM_TRY(check_finite("presence_penalty", presence_penalty));
  if (penalty_last_n < -1 || penalty_last_n > kMaxPenaltyLastN) {
    return invalid("penalty_last_n must be in [-1, " + std::to_string(kMaxPenaltyLastN) +
                   "] (0 disables penalties, -1 covers the whole context), got " + std::to_string(penalty_last_n));
  }
  if (mirostat < 0 || mirostat > 2) {
    return invalid("mirostat must be 0 (off), 1 or 2, got " + std::to_string(mirostat));
  }
  // tau and eta matter only with mirostat on (a zero-filled C struct leaves them 0).
  if (mirostat != 0 && !(std::isfinite(mirostat_tau) && mirostat_tau > 0.0f)) {
    return invalid("mirostat_tau must be a finite number > 0, got " + format_float(mirostat_tau));
  }
  if (mirostat != 0 && !(std::isfinite(mirostat_eta) && mirostat_eta >= 0.0f)) {
    return invalid("mirostat_eta must be a finite number >= 0, got " + format_float(mirostat_eta));
  }
  if (logit_bias.empty()) return {};
  std::vector<bool> banned(static_cast<size_t>(n_vocab), false);
  size_t n_banned = 0;
  for (size_t i = 0; i < logit_bias.size(); ++i) {
    const auto [id, bias] = logit_bias[i];
    const std::string where = "logit_bias[" + std::to_string(i) + "]";
    if (id < 0 || id >= n_vocab) {
      return invalid(where + ": token id " + std::to_string(id) + " is out of range [0, " + std::to_string(n_vocab) + ")");
    }
    const bool is_ban = std::isinf(bias) && bias < 0.0f;
    if (!std::isfinite(bias) && !is_ban) {
      return invalid(where + ": bias for token " + std::to_string(id) + " must be finite or -inf, got " +
                     format_float(bias));
    }
    if (is_ban && !banned[static_cast<size_t>(id)]) {
      banned[static_cast<size_t>(id)] = true;
      ++n_banned;
    }
  }
  if (n_banned == static_cast<size_t>(n_vocab)) {
    return invalid("logit_bias bans all " + std::to_string(n_vocab) + " tokens; nothing could be sampled");
  }
  return {};
}

Expected<SamplingParams> sampling_preset(std::string_view name) {
  SamplingParams params;
  if (name == "greedy") {
    params.temperature = 0.0f;
    return params;
  }
  for (const Preset& preset : kPresets) {
    if (name == preset.name) {
      params.temperature = preset.temperature;
      params.top_p = preset.top_p;
      return params;
    }
  }
  std::string known;
  for (const std::string& n : sampling_preset_names()) known += (known.empty() ? "" : ", ") + n;
  return invalid("unknown preset '" + std::string(name) + "' (known: " + known + ")");
}

std::vector<std::string> sampling_preset_names() {
  std::vector<std::string> names;
  for (const Preset& preset : kPresets) names.emplace_back(preset.name);
  names.emplace_back("greedy");
  return names;
}

SamplingParams sampling_defaults_from_gguf(const GgufFile& gguf) {
  SamplingParams params;
  // Each key is applied on its own and checked with validate(), so one bad value only loses that value.
  auto apply = [&](const char* key, auto setter) {
    if (!gguf.find(key)) return;
    SamplingParams candidate = params;
    Status status = setter(candidate);
    if (status.ok()) status = candidate.validate(1);
    if (!status.ok()) {
      EDGELLM_LOG_WARN("%s: ignoring %s: %s", gguf.path().c_str(), key, status.error().message.c_str());
      return;
    }
    params = candidate;
  };
  auto float_field = [&](const char* key, float SamplingParams::*field) {
    apply(key, [&](SamplingParams& p) -> Status {
      auto v = gguf.get_float(key);
      if (!v.ok()) return v.take_error();
      p.*field = static_cast<float>(*v);
      return {};
    });
  };
  auto int_field = [&](const char* key, int32_t SamplingParams::*field) {
    apply(key, [&](SamplingParams& p) -> Status {
      auto v = gguf.get_int(key);
      if (!v.ok()) return v.take_error();
      if (*v < INT32_MIN || *v > INT32_MAX) {
        return invalid(std::string(key) + " does not fit in int32, got " + std::to_string(*v));
      }
      p.*field = static_cast<int32_t>(*v);
      return {};
    });
  };
  float_field("general.sampling.temp", &SamplingParams::temperature);
  int_field("general.sampling.top_k", &SamplingParams::top_k);
  float_field("general.sampling.top_p", &SamplingParams::top_p);
  float_field("general.sampling.min_p", &SamplingParams::min_p);
  float_field("general.sampling.penalty_repeat", &SamplingParams::repetition_penalty);
  int_field("general.sampling.penalty_last_n", &SamplingParams::penalty_last_n);
  return params;
}

}  // namespace edgellm
