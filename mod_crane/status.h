// The crane section of mod_status: each data dir's snapshot, as an HTML
// table and as `?auto` lines, both rendered from one field list.
#pragma once

#include "apache_includes.h"

namespace mod_crane {

// mod_status's status_hook.
int status_hook(request_rec* r, int flags);

}  // namespace mod_crane
