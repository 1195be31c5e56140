// The /crane/repositories admin pages: JSON as Crane sent it, or a
// self-contained HTML page listing the same data. Internal to libcrane.
#pragma once

#include <string>

#include "crane/index.h"

namespace crane {

std::string admin_v1_json(const Index& index);
std::string admin_v2_json(const Index& index);
std::string admin_v1_html(const Index& index);
std::string admin_v2_html(const Index& index);

}  // namespace crane
