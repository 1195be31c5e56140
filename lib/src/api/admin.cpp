// The admin pages: /crane/repositories[/v1|/v2] as HTML or JSON (README, "Admin pages").
#include "crane/registry.h"

#include "api/admin_page.h"
#include "api/handler_support.h"
#include "api/negotiation.h"
#include "crane/media_types.h"

namespace crane {

using namespace api;

Response Registry::admin(const Request& req, const RouteMatch& m, const Snapshot& snap) const {
    const bool v1 = m.kind == RouteKind::AdminV1;
    AcceptSet accept(req.accept);
    Response r;
    if (accept.contains(kMediaJson) && !accept.contains("text/html")) {
        r.content_type = std::string(kMediaJson);
        r.body = v1 ? admin_v1_json(snap) : admin_v2_json(snap);
    } else {
        r.content_type = std::string(kHtmlType);
        r.body = v1 ? admin_v1_html(snap) : admin_v2_html(snap);
    }
    return r;
}

}  // namespace crane
