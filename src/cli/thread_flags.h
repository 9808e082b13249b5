// Thread placement flags shared by `edgellm run`, `chat` and `bench`: -t/--threads, --pin, --cpus.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace edgellm::cli {

struct ThreadFlags {
  int threads = 0;
  bool pin = false;
  std::string cpus;  // a CPU list ("4-7", "0,2"), empty: any
};

void add_thread_flags(CLI::App* cmd, ThreadFlags& flags);

// The --cpus list as CPU ids (empty when not given). False, with the error printed as
// "edgellm COMMAND: --cpus ..." ("edgellm: ..." when command is null), when it is not a CPU list of ids
// below 64.
bool thread_flags_cpus(const ThreadFlags& flags, const char* command, std::vector<int>* cpus);

}  // namespace edgellm::cli
