#include "cli/thread_flags.h"

#include <cstdio>

#include "util/cpu_topology.h"

namespace edgellm::cli {

void add_thread_flags(CLI::App* cmd, ThreadFlags& flags) {
  cmd->add_option("-t,--threads", flags.threads,
                  "Threads (0: one per core of the fastest cluster, i.e. the big cores of a big.LITTLE board and "
                  "every core elsewhere; with --cpus, one per listed CPU)")
      ->capture_default_str();
  cmd->add_flag("--pin", flags.pin, "Pin each thread to its own CPU, fastest cores first");
  cmd->add_option("--cpus", flags.cpus, "Run only on these CPUs, pinned, fastest first (a list such as 4-7 or 0,2,4)");
}

bool thread_flags_cpus(const ThreadFlags& flags, const char* command, std::vector<int>* cpus) {
  cpus->clear();
  if (flags.cpus.empty()) return true;
  if (!parse_cpu_list(flags.cpus, cpus) || cpus->back() >= 64) {
    std::fprintf(stderr, "edgellm%s%s: --cpus '%s' is not a list of CPU ids 0-63 such as 4-7 or 0,2,4\n",
                 command ? " " : "", command ? command : "", flags.cpus.c_str());
    return false;
  }
  return true;
}

}  // namespace edgellm::cli
