// How fast this machine streams memory into the cores: the limit of single-stream decode, which reads every
// weight once per token. `edgellm bench --roofline` reports decode against it; `edgellm doctor` turns it
// into an expected decode speed for a model.
#pragma once

#include <cstddef>

#include "util/thread_pool.h"

namespace edgellm {

// Streams through a buffer much larger than the caches with all of `pool`'s threads, `reps` times, and
// returns the best rate in GB/s (0 if the buffer cannot be allocated). The buffer is in huge pages, as
// the packed weights are (model/model.cpp); over 4 KiB pages the same loop reads ~20% slower on this kind
// of machine, which would understate the limit. ~0.5 s for 256 MiB and 10 reps at 10 GB/s.
double measure_read_bandwidth_gbs(ThreadPool& pool, size_t bytes = size_t{256} << 20, int reps = 10);

}  // namespace edgellm
