// edgellm keys add|list|remove: the API keys file of `edgellm serve --api-keys-file` (server/api_keys.h).
// `add` prints the new key once; the file keeps only its hash. The file is rewritten whole (a temporary
// file renamed over it), readable by its owner only.
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/commands.h"
#include "server/api_keys.h"

namespace edgellm::cli {
namespace {

struct KeysArgs {
  std::string file;
  std::string name;
};

// The file's lines (comments kept) or an empty list for a file that does not exist yet.
bool read_lines(const std::string& path, std::vector<std::string>* lines) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return true;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "edgellm keys: cannot read %s\n", path.c_str());
    return false;
  }
  std::stringstream text;
  text << in.rdbuf();
  const auto parsed = server::ApiKeys::parse(text.str(), path);
  if (!parsed.ok()) {
    std::fprintf(stderr, "edgellm keys: %s\n", parsed.error().message.c_str());
    return false;
  }
  std::string line;
  std::stringstream ss(text.str());
  while (std::getline(ss, line)) lines->push_back(line);
  return true;
}

bool write_lines(const std::string& path, const std::vector<std::string>& lines) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    ::chmod(tmp.c_str(), 0600);
    for (const std::string& l : lines) out << l << '\n';
    out.flush();
    if (!out) {
      std::fprintf(stderr, "edgellm keys: cannot write %s\n", tmp.c_str());
      std::remove(tmp.c_str());
      return false;
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::fprintf(stderr, "edgellm keys: cannot replace %s\n", path.c_str());
    std::remove(tmp.c_str());
    return false;
  }
  return true;
}

std::string name_of(const std::string& line) {
  const size_t start = line.find_first_not_of(" \t");
  if (start == std::string::npos || line[start] == '#') return {};
  return line.substr(start, line.find_first_of(" \t", start) - start);
}

int run_add(const KeysArgs& a) {
  if (!server::ApiKeys::valid_name(a.name)) {
    std::fprintf(stderr, "edgellm keys: the name '%s' must be 1-64 characters of A-Z a-z 0-9 . _ -\n", a.name.c_str());
    return 1;
  }
  std::vector<std::string> lines;
  if (!read_lines(a.file, &lines)) return 1;
  for (const std::string& l : lines) {
    if (name_of(l) == a.name) {
      std::fprintf(stderr, "edgellm keys: %s already has a key named '%s' (remove it first)\n", a.file.c_str(),
                   a.name.c_str());
      return 1;
    }
  }
  const std::string key = server::ApiKeys::generate();
  lines.push_back(a.name + " " + server::ApiKeys::hash_text(key));
  if (!write_lines(a.file, lines)) return 1;
  std::printf("%s\n", key.c_str());
  std::fprintf(stderr, "edgellm keys: added '%s' to %s; the key above is shown only now (the file keeps its hash). "
                       "A running server takes it on SIGHUP.\n",
               a.name.c_str(), a.file.c_str());
  return 0;
}

int run_list(const KeysArgs& a) {
  const auto keys = server::ApiKeys::read_file(a.file);
  if (!keys.ok()) {
    std::fprintf(stderr, "edgellm keys: %s\n", keys.error().message.c_str());
    return 1;
  }
  for (const server::ApiKey& k : *keys) std::printf("%s\n", k.name.c_str());
  return 0;
}

int run_remove(const KeysArgs& a) {
  std::vector<std::string> lines, kept;
  if (!read_lines(a.file, &lines)) return 1;
  for (const std::string& l : lines) {
    if (name_of(l) != a.name) kept.push_back(l);
  }
  if (kept.size() == lines.size()) {
    std::fprintf(stderr, "edgellm keys: %s has no key named '%s'\n", a.file.c_str(), a.name.c_str());
    return 1;
  }
  if (!write_lines(a.file, kept)) return 1;
  std::fprintf(stderr, "edgellm keys: removed '%s' from %s (a running server drops it on SIGHUP)\n", a.name.c_str(),
               a.file.c_str());
  return 0;
}

}  // namespace

void add_keys_command(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<KeysArgs>();
  auto* keys = app.add_subcommand("keys", "API keys of `edgellm serve --api-keys-file`: add, list, remove");
  keys->require_subcommand(1);
  auto* add = keys->add_subcommand("add", "Make a new random key named NAME, store its hash, print the key once");
  add->add_option("name", a->name, "Name of the key (shown in metrics, logs and the conversation store)")->required();
  add->add_option("-f,--file", a->file, "The keys file (created if missing)")->required();
  add->callback([a, &exit_code] { exit_code = run_add(*a); });
  auto* list = keys->add_subcommand("list", "Print the names of the keys in the file");
  list->add_option("-f,--file", a->file, "The keys file")->required()->check(CLI::ExistingFile);
  list->callback([a, &exit_code] { exit_code = run_list(*a); });
  auto* remove = keys->add_subcommand("remove", "Remove the key named NAME");
  remove->add_option("name", a->name, "Name of the key")->required();
  remove->add_option("-f,--file", a->file, "The keys file")->required()->check(CLI::ExistingFile);
  remove->callback([a, &exit_code] { exit_code = run_remove(*a); });
}

}  // namespace edgellm::cli
