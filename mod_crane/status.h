// The crane section of mod_status: each data dir's snapshot, as an HTML
// table and as `?auto` lines, both rendered from one field list; the same
// list gives the metrics page its snapshot gauges.
#pragma once

#include "apache_includes.h"
#include "crane/metrics.h"

namespace mod_crane {

// mod_status's status_hook.
int status_hook(request_rec* r, int flags);

// The snapshot families of the metrics page, one sample per data dir
// (label data_dir).
void write_snapshot_metrics(crane::metrics::TextWriter& w);

}  // namespace mod_crane
