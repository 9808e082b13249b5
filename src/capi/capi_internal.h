// Internal to src/capi/: the handle types and the conversions shared by the C API's translation units
// (edgellm_capi.cpp: models and sessions; engine_capi.cpp: the serving engine).
#pragma once

#include <exception>
#include <memory>
#include <new>
#include <string>

#include "edgellm/edgellm.h"
#include "grammar/json_schema_grammar.h"
#include "runtime/loaded_model.h"
#include "runtime/session.h"

struct edgellm_model {
  std::shared_ptr<edgellm::LoadedModel> model;
  std::string last_error;
};

namespace edgellm::capi {

using edgellm::ErrorCode;

// Messages of calls without a handle (per thread, by design).
std::string& thread_error();

inline edgellm_status to_status(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk: return EDGELLM_OK;
    case ErrorCode::kInvalidArgument: return EDGELLM_ERROR_INVALID_ARGUMENT;
    case ErrorCode::kIo: return EDGELLM_ERROR_IO;
    case ErrorCode::kFormat: return EDGELLM_ERROR_FORMAT;
    case ErrorCode::kUnsupported: return EDGELLM_ERROR_UNSUPPORTED;
    case ErrorCode::kNotFound: return EDGELLM_ERROR_NOT_FOUND;
    case ErrorCode::kOutOfMemory: return EDGELLM_ERROR_OUT_OF_MEMORY;
    case ErrorCode::kContextFull: return EDGELLM_ERROR_CONTEXT_FULL;
    case ErrorCode::kAborted: return EDGELLM_ERROR_ABORTED;
    case ErrorCode::kBusy: return EDGELLM_ERROR_BUSY;
    case ErrorCode::kInternal: return EDGELLM_ERROR_INTERNAL;
  }
  return EDGELLM_ERROR_INTERNAL;
}

inline edgellm_status fail(std::string& slot, edgellm_status status, std::string message) {
  slot = std::move(message);
  return status;
}

inline edgellm_status fail(std::string& slot, const edgellm::Error& e) { return fail(slot, to_status(e.code), e.message); }

// Runs `body` and turns exceptions (std::bad_alloc, anything else) into statuses.
template <class Fn>
edgellm_status guarded(std::string& slot, Fn&& body) {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return fail(slot, EDGELLM_ERROR_OUT_OF_MEMORY, "out of memory");
  } catch (const std::exception& e) {
    return fail(slot, EDGELLM_ERROR_INTERNAL, std::string("internal error: ") + e.what());
  } catch (...) {
    return fail(slot, EDGELLM_ERROR_INTERNAL, "internal error");
  }
}

inline edgellm::SamplingParams to_cpp(const edgellm_sampling_params& p) {
  edgellm::SamplingParams s;
  s.temperature = p.temperature;
  s.top_k = p.top_k;
  s.top_p = p.top_p;
  s.min_p = p.min_p;
  s.typical_p = p.typical_p;
  s.repetition_penalty = p.repetition_penalty;
  s.frequency_penalty = p.frequency_penalty;
  s.presence_penalty = p.presence_penalty;
  s.penalty_last_n = p.penalty_last_n;
  s.seed = p.seed;
  s.mirostat = p.mirostat;
  s.mirostat_tau = p.mirostat_tau;
  s.mirostat_eta = p.mirostat_eta;
  return s;
}

inline edgellm_sampling_params to_c(const edgellm::SamplingParams& s) {
  edgellm_sampling_params p{};
  p.temperature = s.temperature;
  p.top_k = s.top_k;
  p.top_p = s.top_p;
  p.min_p = s.min_p;
  p.typical_p = s.typical_p;
  p.repetition_penalty = s.repetition_penalty;
  p.frequency_penalty = s.frequency_penalty;
  p.presence_penalty = s.presence_penalty;
  p.penalty_last_n = s.penalty_last_n;
  p.seed = s.seed;
  p.mirostat = s.mirostat;
  p.mirostat_tau = s.mirostat_tau;
  p.mirostat_eta = s.mirostat_eta;
  return p;
}

inline edgellm::Expected<edgellm::GenerateOptions> to_cpp(const edgellm_generate_params* params) {
  edgellm::GenerateOptions o;
  if (params == nullptr) return edgellm::make_error(ErrorCode::kInvalidArgument, "generate params are NULL");
  o.sampling = to_cpp(params->sampling);
  o.max_new_tokens = params->max_new_tokens;
  o.ignore_stop_tokens = params->ignore_stop_tokens != 0;
  if (params->lora_name) {
    o.lora_name = std::string(params->lora_name);
    o.lora_scale = params->lora_scale;
  }
  if (params->n_stop_strings < 0 || (params->n_stop_strings > 0 && params->stop_strings == nullptr)) {
    return edgellm::make_error(ErrorCode::kInvalidArgument, "stop_strings is NULL but n_stop_strings is " +
                                                                std::to_string(params->n_stop_strings));
  }
  for (int32_t i = 0; i < params->n_stop_strings; ++i) {
    if (params->stop_strings[i] == nullptr || params->stop_strings[i][0] == '\0') {
      return edgellm::make_error(ErrorCode::kInvalidArgument, "stop_strings[" + std::to_string(i) + "] is empty");
    }
    o.stop_strings.emplace_back(params->stop_strings[i]);
  }
  if (params->grammar != nullptr && params->json_schema != nullptr) {
    return edgellm::make_error(ErrorCode::kInvalidArgument, "give grammar or json_schema, not both");
  }
  if (params->grammar != nullptr) o.grammar = params->grammar;
  o.lookup = params->lookup;
  if (params->tool_choice != nullptr) o.tool_choice = params->tool_choice;
  if (params->json_schema != nullptr) {
    auto schema = nlohmann::ordered_json::parse(params->json_schema, nullptr, /*allow_exceptions=*/false);
    if (schema.is_discarded()) return edgellm::make_error(ErrorCode::kInvalidArgument, "json_schema is not valid JSON");
    EDGELLM_ASSIGN_OR_RETURN(o.grammar, edgellm::json_schema_to_gbnf(schema));
  }
  return o;
}

}  // namespace edgellm::capi
