// The request side: the crane handler (request_rec to crane::Request and
// crane::Response back, files through httpd's own machinery) and the hooks
// that keep httpd's access control in force on registry URLs.
#pragma once

#include "apache_includes.h"

namespace mod_crane {

// post_config: mod_ssl's variable lookup, the digest cache of this generation.
void init_handler(apr_pool_t* pconf);

int translate_name(request_rec* r);
int type_checker(request_rec* r);
int crane_handler(request_rec* r);

}  // namespace mod_crane
