#include "runtime/loaded_model.h"

#include <sys/resource.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <optional>

#include "chat/model_chat_template.h"
#include "security/encrypted_model.h"
#include "security/minisign.h"
#include "util/log.h"
#include "util/sha256.h"

namespace edgellm {

size_t available_memory_bytes() {
  if (const char* forced = std::getenv("EDGELLM_MEM_AVAILABLE_MB"); forced != nullptr && *forced != '\0') {
    char* end = nullptr;
    const unsigned long long mib = std::strtoull(forced, &end, 10);
    if (end != forced && *end == '\0') return static_cast<size_t>(mib) << 20;
    EDGELLM_LOG_WARN("EDGELLM_MEM_AVAILABLE_MB=%s is not a number of MiB; using /proc/meminfo", forced);
  }
  std::ifstream in("/proc/meminfo");
  std::string key;
  size_t value = 0;
  std::string unit;
  while (in >> key >> value >> unit) {
    if (key == "MemAvailable:") return value * 1024;
  }
  return 0;
}

size_t peak_rss_bytes() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<size_t>(usage.ru_maxrss) * 1024;
}

Expected<std::shared_ptr<LoadedModel>> LoadedModel::load(const std::string& path, const LoadOptions& options) {
  std::string pubkey = options.require_signature;
  if (pubkey.empty()) {
    if (const char* env = std::getenv("EDGELLM_REQUIRE_SIGNATURE"); env != nullptr) pubkey = env;
  }
  if (!pubkey.empty()) EDGELLM_TRY(verify_model_signature(path, pubkey));
  std::shared_ptr<LoadedModel> lm(new LoadedModel());
  ModelLoadOptions model_options;
  // Mapping reads nothing yet; the read-ahead waits until the memory check has passed.
  model_options.prefetch = false;
  model_options.key_file = options.key_file;
  std::optional<EncryptedModelInfo> encrypted;  // the header, read once
  if (is_encrypted_model_file(path)) {
    EDGELLM_ASSIGN_OR_RETURN(encrypted, read_encrypted_model_info(path));
  }
  if (encrypted && options.check_memory) {  // decryption fills memory at once: check before it
    const size_t available = available_memory_bytes();
    if (available > 0 && encrypted->plaintext_bytes > available) {
      return make_error(ErrorCode::kOutOfMemory, path + ": the decrypted model needs " +
                                                     std::to_string(encrypted->plaintext_bytes >> 20) + " MiB but only " +
                                                     std::to_string(available >> 20) +
                                                     " MiB of memory are available (MemAvailable; "
                                                     "EDGELLM_MEM_AVAILABLE_MB overrides)");
    }
  }
  EDGELLM_ASSIGN_OR_RETURN(lm->model_, Model::load(path, model_options));
  // (A decrypted model is already in memory here, which MemAvailable no longer counts: checked above instead.)
  if (options.check_memory && !encrypted) {
    const size_t available = available_memory_bytes();
    const size_t needed = lm->model_->weight_bytes();
    if (available > 0 && needed > available) {
      return make_error(ErrorCode::kOutOfMemory, path + ": the weights need " + std::to_string(needed >> 20) +
                                                     " MiB but only " + std::to_string(available >> 20) +
                                                     " MiB of memory are available (MemAvailable; "
                                                     "EDGELLM_MEM_AVAILABLE_MB overrides)");
    }
  }
  if (options.prefetch && lm->model_->gguf()) lm->model_->gguf()->prefetch();
  if (lm->model_->gguf()) {
    EDGELLM_ASSIGN_OR_RETURN(lm->tokenizer_, Tokenizer::from_gguf(*lm->model_->gguf()));
    lm->default_sampling_ = sampling_defaults_from_gguf(*lm->model_->gguf());
  } else {
    EDGELLM_ASSIGN_OR_RETURN(lm->tokenizer_, Tokenizer::from_path(path));
  }
  if (lm->tokenizer_->n_vocab() > lm->config().n_vocab) {
    return make_error(ErrorCode::kFormat, path + ": the tokenizer has " + std::to_string(lm->tokenizer_->n_vocab()) +
                                              " tokens but the model only " + std::to_string(lm->config().n_vocab));
  }

  const GgufFile* gguf = lm->model_->gguf();  // read again from the open file, never by path (it may be encrypted)
  if (!options.chat_template_name.empty()) {
    EDGELLM_ASSIGN_OR_RETURN(lm->chat_template_, ChatTemplate::from_name(options.chat_template_name));
    auto info = gguf ? read_model_chat_template(*gguf) : read_model_chat_template(path);
    if (info.ok()) {
      lm->chat_options_.bos_token = info->bos_token;
      lm->chat_options_.eos_token = info->eos_token;
    }
  } else if (gguf) {
    EDGELLM_ASSIGN_OR_RETURN(lm->chat_template_, chat_template_for_model(*gguf, &lm->chat_options_));
  } else {
    EDGELLM_ASSIGN_OR_RETURN(lm->chat_template_, chat_template_for_model(path, &lm->chat_options_));
  }

  // Stop tokens: EOS, end-of-turn texts that are single tokens, and generation_config's eos ids.
  std::vector<int32_t>& stops = lm->stop_token_ids_;
  if (auto eos = lm->tokenizer_->eos_id()) stops.push_back(*eos);
  for (const std::string& s : lm->chat_template_.stop_strings()) {
    if (auto id = lm->tokenizer_->token_id(s)) stops.push_back(*id);
  }
  if (const GgufFile* g = lm->model_->gguf()) {
    if (g->find("edgellm.generation.eos_token_ids")) {
      EDGELLM_ASSIGN_OR_RETURN(auto ids, g->get_int_array("edgellm.generation.eos_token_ids"));
      for (int64_t id : ids) stops.push_back(static_cast<int32_t>(id));
    }
  } else if (const HfDirectory* hf = lm->model_->hf(); hf && hf->generation_config) {
    const auto& e = (*hf->generation_config).value("eos_token_id", nlohmann::json());
    if (e.is_number_integer()) stops.push_back(e.get<int32_t>());
    if (e.is_array()) {
      for (const auto& x : e) {
        if (x.is_number_integer()) stops.push_back(x.get<int32_t>());
      }
    }
  }
  std::sort(stops.begin(), stops.end());
  stops.erase(std::unique(stops.begin(), stops.end()), stops.end());
  stops.erase(std::remove_if(stops.begin(), stops.end(),
                             [&](int32_t id) { return id < 0 || id >= lm->config().n_vocab; }),
              stops.end());

  lm->pool_ = std::make_unique<ThreadPool>(options.n_threads, options.pin_threads, options.cpus);
  lm->transformer_ = std::make_unique<Transformer>(*lm->model_);
  EDGELLM_LOG_INFO("loaded %s: %s, %lld layers, chat template %s (%s), %d threads", path.c_str(),
                   arch_name(lm->config().arch), static_cast<long long>(lm->config().n_layer),
                   lm->chat_template_.name().c_str(), lm->chat_template_.note().c_str(), lm->pool_->n_threads());
  // A decrypted model's repacked bytes are gone from memory after repacking, so its weights cannot be hashed
  // later: without a stored digest, the encrypted file's identity (key id and random stream header, bound
  // to its contents by authentication) names it instead.
  if (encrypted && gguf && !gguf->find("edgellm.content.sha256")) {
    std::call_once(lm->digest_once_, [&] {
      Sha256 h;
      h.update("edgellm-encrypted-model", 23);
      h.update(encrypted->key_id.data(), encrypted->key_id.size());
      h.update(encrypted->stream_header.data(), encrypted->stream_header.size());
      lm->digest_ = h.hex_digest();
    });
  }
  // Last, when the tokenizer's temporary load buffers are gone: the packed copies are the weights' size.
  lm->model_->repack_for_matmul(lm->pool_.get());
  lm->pool_->release_caller();  // a pinned pool leaves the loading thread's CPUs as they were
  return lm;
}

Status LoadedModel::load_lora(const std::string& name, const std::string& path) {
  if (name.empty()) return make_error(ErrorCode::kInvalidArgument, "a LoRA adapter needs a name");
  {
    std::lock_guard<std::mutex> lock(lora_mu_);
    if (loras_.count(name)) {
      return make_error(ErrorCode::kInvalidArgument, "a LoRA adapter named '" + name + "' is already loaded");
    }
  }
  EDGELLM_ASSIGN_OR_RETURN(std::shared_ptr<LoraAdapter> adapter, LoraAdapter::load(path, *model_));
  std::lock_guard<std::mutex> lock(lora_mu_);
  loras_.emplace(name, std::move(adapter));
  return {};
}

std::shared_ptr<const LoraAdapter> LoadedModel::find_lora(const std::string& name) const {
  std::lock_guard<std::mutex> lock(lora_mu_);
  auto it = loras_.find(name);
  return it == loras_.end() ? nullptr : it->second;
}

std::vector<std::string> LoadedModel::lora_names() const {
  std::lock_guard<std::mutex> lock(lora_mu_);
  std::vector<std::string> names;
  for (const auto& [name, adapter] : loras_) names.push_back(name);
  return names;
}

std::shared_ptr<const TokenTrie> LoadedModel::token_trie() const {
  std::call_once(trie_once_, [this] { trie_ = TokenTrie::build(*tokenizer_, stop_token_ids_); });
  return trie_;
}

Expected<std::shared_ptr<const CompiledGrammar>> LoadedModel::compile_grammar(const std::string& gbnf) const {
  constexpr size_t kCachedGrammars = 8;
  {
    std::lock_guard<std::mutex> lock(grammar_mu_);
    for (auto it = grammars_.begin(); it != grammars_.end(); ++it) {
      if (it->first == gbnf) {
        auto found = it->second;
        grammars_.erase(it);
        grammars_.emplace_back(gbnf, found);
        return found;
      }
    }
  }
  EDGELLM_ASSIGN_OR_RETURN(std::shared_ptr<CompiledGrammar> compiled, CompiledGrammar::from_gbnf(gbnf, token_trie()));
  std::lock_guard<std::mutex> lock(grammar_mu_);
  if (grammars_.size() >= kCachedGrammars) grammars_.erase(grammars_.begin());
  grammars_.emplace_back(gbnf, compiled);
  return std::shared_ptr<const CompiledGrammar>(compiled);
}

const std::string& LoadedModel::weights_digest() const {
  std::call_once(digest_once_, [this] {
    if (const GgufFile* g = model_->gguf()) {
      auto stored = g->get_string("edgellm.content.sha256");
      if (stored.ok()) {
        digest_ = *stored;
        return;
      }
      auto computed = gguf_content_digest(*g);
      digest_ = computed.ok() ? *computed : std::string();
      model_->release_repacked_file_pages();  // hashing read them back in; the packed copies are used
      return;
    }
    Sha256 h;
    for (const auto& t : model_->hf()->weights.tensors()) {
      h.update(t.ref.name.data(), t.ref.name.size());
      h.update(t.ref.data, t.ref.size_bytes);
    }
    digest_ = h.hex_digest();
  });
  return digest_;
}

}  // namespace edgellm
