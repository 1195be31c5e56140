// Google Search Appliance XML -> search results, with expat (see
// crane/search.h for the rules). Hostile bodies are refused: entity
// declarations stop the parser, so no entity is ever expanded or fetched.
#include <expat.h>

#include <cstring>
#include <memory>
#include <new>
#include <type_traits>

#include "search/search_internal.h"

namespace crane::search_detail {

namespace {

struct GsaParse {
    XML_Parser parser = nullptr;
    ResultList list;
    int depth = 0;        // of the element being parsed; the root is 1
    bool in_res = false;  // inside /ROOT/RES
    bool in_r = false;    // inside /ROOT/RES/R
    std::optional<std::string> name;
    std::string description;
    std::string refused;  // why the handlers stopped the parser
};

// Namespaced names come as "uri\x01local", so RES in any namespace does not
// match, as with ElementTree's "{uri}RES".
constexpr XML_Char kNamespaceSeparator = '\x01';

const XML_Char* attribute(const XML_Char** atts, const char* wanted) {
    for (; atts[0] != nullptr; atts += 2) {
        if (std::strcmp(atts[0], wanted) == 0) return atts[1];
    }
    return nullptr;
}

void stop(GsaParse& p, const char* why) {
    if (p.refused.empty()) p.refused = why;
    XML_StopParser(p.parser, XML_FALSE);
}

void XMLCALL on_start(void* user, const XML_Char* element, const XML_Char** atts) {
    auto& p = *static_cast<GsaParse*>(user);
    ++p.depth;
    try {
        if (p.depth == 2 && std::strcmp(element, "RES") == 0) {
            p.in_res = true;
        } else if (p.depth == 3 && p.in_res && std::strcmp(element, "R") == 0) {
            p.in_r = true;
            p.name.reset();
            p.description.clear();
        } else if (p.depth == 4 && p.in_r && std::strcmp(element, "MT") == 0) {
            const XML_Char* n = attribute(atts, "N");
            const XML_Char* v = attribute(atts, "V");
            // an MT without V is ignored (Crane failed the whole search)
            if (n == nullptr || v == nullptr) return;
            if (std::strcmp(n, "portal_name") == 0) {
                p.name = v;
            } else if (std::strcmp(n, "portal_short_description") == 0) {
                p.description = v;
            }
        }
    } catch (const std::bad_alloc&) {
        stop(p, "out of memory");
    }
}

void XMLCALL on_end(void* user, const XML_Char* /*element*/) {
    auto& p = *static_cast<GsaParse*>(user);
    try {
        if (p.depth == 3 && p.in_r) {
            p.in_r = false;
            if (p.name && !p.list.fits(*p.name, p.description)) {
                stop(p, "");  // the limits are reached: keep what fitted
            } else if (p.name) {
                SearchResult r;
                r.name = std::move(*p.name);
                r.description = std::move(p.description);
                r.should_filter = true;  // Crane's SearchResult.result_defaults
                p.list.results.push_back(std::move(r));
            }
        } else if (p.depth == 2 && p.in_res) {
            p.in_res = false;
        }
    } catch (const std::bad_alloc&) {
        stop(p, "out of memory");
    }
    --p.depth;
}

void XMLCALL on_entity_decl(void* user, const XML_Char* /*name*/, int /*is_parameter*/,
                            const XML_Char* /*value*/, int /*value_length*/,
                            const XML_Char* /*base*/, const XML_Char* /*system_id*/,
                            const XML_Char* /*public_id*/, const XML_Char* /*notation*/) {
    stop(*static_cast<GsaParse*>(user), "entity declarations are refused");
}

struct ParserDeleter {
    void operator()(XML_Parser p) const { XML_ParserFree(p); }
};

}  // namespace

Result<std::vector<SearchResult>> parse_gsa_xml(std::string_view body, bool* cut) {
    if (body.size() > kMaxSearchBodyBytes) {
        return Result<std::vector<SearchResult>>::failure(
            "body larger than " + std::to_string(kMaxSearchBodyBytes) + " bytes");
    }
    std::unique_ptr<std::remove_pointer_t<XML_Parser>, ParserDeleter> parser(
        XML_ParserCreateNS(nullptr, kNamespaceSeparator));
    if (!parser) {
        return Result<std::vector<SearchResult>>::failure("cannot create an XML parser");
    }
    GsaParse p;
    p.parser = parser.get();
    XML_SetUserData(parser.get(), &p);
    XML_SetElementHandler(parser.get(), on_start, on_end);
    XML_SetEntityDeclHandler(parser.get(), on_entity_decl);
    // never read an external DTD or parameter entity (the default, made explicit)
    XML_SetParamEntityParsing(parser.get(), XML_PARAM_ENTITY_PARSING_NEVER);

    if (XML_Parse(parser.get(), body.data(), static_cast<int>(body.size()), XML_TRUE) !=
            XML_STATUS_OK &&
        !p.list.cut) {
        if (!p.refused.empty()) return Result<std::vector<SearchResult>>::failure(p.refused);
        return Result<std::vector<SearchResult>>::failure(
            std::string("XML error: ") + XML_ErrorString(XML_GetErrorCode(parser.get())) +
            " at line " + std::to_string(XML_GetCurrentLineNumber(parser.get())));
    }
    if (cut != nullptr) *cut = p.list.cut;
    return std::move(p.list.results);
}

}  // namespace crane::search_detail
