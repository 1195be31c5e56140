// The admin pages: /crane/repositories[/v1|/v2] as HTML or JSON (README, "Admin pages").
#include "api/admin_page.h"
#include "api/handlers.h"
#include "api/negotiation.h"
#include "crane/media_types.h"

namespace crane::api {

namespace {

Response admin_page(Context& c, bool v1) {
    AcceptSet accept(c.req.accept);
    Response r;
    if (accept.contains(kMediaJson) && !accept.contains("text/html")) {
        r.content_type = std::string(kMediaJson);
        r.body = v1 ? admin_v1_json(c.snap) : admin_v2_json(c.snap);
    } else {
        r.content_type = std::string(kHtmlType);
        r.body = v1 ? admin_v1_html(c.snap) : admin_v2_html(c.snap);
    }
    return r;
}

}  // namespace

Response admin_v1(Context& c) { return admin_page(c, true); }
Response admin_v2(Context& c) { return admin_page(c, false); }

}  // namespace crane::api
