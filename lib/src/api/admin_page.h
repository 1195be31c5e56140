// The /crane/repositories admin pages: JSON as Crane sent it, or a
// self-contained HTML page listing the same data. Internal to libcrane.
#pragma once

#include <string>

#include "crane/snapshot.h"

namespace crane {

std::string admin_v1_json(const Snapshot& snap);
std::string admin_v2_json(const Snapshot& snap);
std::string admin_v1_html(const Snapshot& snap);
std::string admin_v2_html(const Snapshot& snap);

}  // namespace crane
