// A model ready to serve: weights, tokenizer, chat template, default sampling, stop tokens and the
// thread pool its sessions run on. Immutable after load; shared by every session on it.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "chat/chat_template.h"
#include "grammar/compiled_grammar.h"
#include "grammar/token_trie.h"
#include "model/lora.h"
#include "model/model.h"
#include "model/transformer.h"
#include "runtime/sampler.h"
#include "tokenizer/tokenizer.h"
#include "util/expected.h"
#include "util/thread_pool.h"

namespace edgellm {

struct LoadOptions {
  int n_threads = 0;                // 0: ThreadPool's default (the fastest cluster, or one per cpus entry)
  bool pin_threads = false;         // pin threads to CPUs, fastest first (util/thread_pool.h)
  std::vector<int> cpus;            // run only on these CPUs (pinned); empty: any
  bool prefetch = false;            // read the weights ahead (preload) instead of paging them in lazily
  std::string chat_template_name;   // override the detected template ("" = from the model)
  bool check_memory = true;         // refuse to load when the weights exceed available memory
  // A minisign public key file: the model loads only if MODEL.minisig verifies with it (security/minisign.h).
  // "": the environment's EDGELLM_REQUIRE_SIGNATURE if set (a board-wide policy for every program), else none.
  std::string require_signature;
  // The key of an encrypted model file (security/encrypted_model.h): a key file, or "" to look in the
  // environment (EDGELLM_MODEL_KEY_FILE, EDGELLM_MODEL_KEY, $CREDENTIALS_DIRECTORY; security/model_key.h).
  std::string key_file;
};

class LoadedModel {
 public:
  // Loads a GGUF file or a Hugging Face directory. Errors name the file and what is wrong; with
  // check_memory, kOutOfMemory says how much is needed and how much is available.
  static Expected<std::shared_ptr<LoadedModel>> load(const std::string& path, const LoadOptions& options = {});

  const Model& model() const { return *model_; }
  const ModelConfig& config() const { return model_->config(); }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const Transformer& transformer() const { return *transformer_; }
  const ChatTemplate& chat_template() const { return chat_template_; }
  const ChatOptions& chat_options() const { return chat_options_; }
  const SamplingParams& default_sampling() const { return default_sampling_; }
  // Token ids that end generation: EOS, the template's end-of-turn tokens, generation_config's eos ids.
  const std::vector<int32_t>& stop_token_ids() const { return stop_token_ids_; }
  ThreadPool& pool() const { return *pool_; }
  // A digest identifying the weights (the GGUF content digest when stored, else computed once on first
  // use by hashing the weight files); prompt caches are bound to it.
  const std::string& weights_digest() const;

  // LoRA adapters, loaded by name (PEFT directory or GGUF adapter). Thread-safe; a name can be loaded once.
  Status load_lora(const std::string& name, const std::string& path);
  // nullptr if no adapter has that name.
  std::shared_ptr<const LoraAdapter> find_lora(const std::string& name) const;
  std::vector<std::string> lora_names() const;

  // The vocabulary as a byte trie for grammar-constrained decoding, built on first use (thread-safe).
  std::shared_ptr<const TokenTrie> token_trie() const;
  // Compiles GBNF text for this model's vocabulary; the last few grammars are cached by their text, so
  // requests that repeat a schema reuse its token masks. Errors name the line and column.
  Expected<std::shared_ptr<const CompiledGrammar>> compile_grammar(const std::string& gbnf) const;

 private:
  LoadedModel() = default;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<Transformer> transformer_;
  std::unique_ptr<ThreadPool> pool_;
  ChatTemplate chat_template_ = ChatTemplate::from_name("chatml").value();
  ChatOptions chat_options_;
  SamplingParams default_sampling_;
  std::vector<int32_t> stop_token_ids_;
  mutable std::mutex lora_mu_;
  std::map<std::string, std::shared_ptr<const LoraAdapter>> loras_;  // guarded by lora_mu_
  mutable std::once_flag trie_once_;
  mutable std::shared_ptr<const TokenTrie> trie_;
  mutable std::mutex grammar_mu_;
  mutable std::vector<std::pair<std::string, std::shared_ptr<const CompiledGrammar>>> grammars_;  // guarded by grammar_mu_, newest last
  mutable std::once_flag digest_once_;
  mutable std::string digest_;
};

// Bytes of memory the kernel reports available (MemAvailable in /proc/meminfo), or 0 if unknown.
// EDGELLM_MEM_AVAILABLE_MB=N overrides it (tests; or to load anyway when swap or zram will cover it).
size_t available_memory_bytes();
// Peak resident set size of this process so far.
size_t peak_rss_bytes();

}  // namespace edgellm
