// Prometheus metrics (README, "Metrics"): the shared counters the parent
// makes in post_config, what every crane request adds to them when it is
// logged, and the `SetHandler crane-metrics` page that sums them.
#pragma once

#include "apache_includes.h"
#include "crane/http.h"

namespace mod_crane {

// post_config, in the parent: the shared counters, kept across graceful
// restarts (ap_retained_data); none with CraneMetrics Off. False when they
// cannot be made (logged): httpd does not start.
bool start_metrics(server_rec* main_server);

// crane_handler: what the library answered, for count_request. A no-op
// with CraneMetrics Off.
void note_answer(request_rec* r, const crane::Response& resp);

// The log_transaction hook: counts a request the crane handler answered.
int count_request(request_rec* r);

// The crane-metrics handler: the Prometheus text exposition.
int metrics_handler(request_rec* r);

}  // namespace mod_crane
