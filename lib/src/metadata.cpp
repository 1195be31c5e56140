// Parsing of one metadata file into a V1Repo or V2Repo (see metadata.h).
#include "crane/metadata.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <algorithm>

#include "crane/url.h"
#include "pyjson.h"

namespace crane {

namespace {

using rapidjson::Value;

constexpr int kMaxDepth = 64;

// Python's json keeps the last of repeated keys; so do we.
const Value* member(const Value& obj, const char* name) {
    const Value* found = nullptr;
    for (auto it = obj.MemberBegin(); it != obj.MemberEnd(); ++it) {
        if (it->name == name) found = &it->value;
    }
    return found;
}

bool depth_ok(const Value& v, int depth) {
    if (depth > kMaxDepth) return false;
    if (v.IsArray()) {
        for (const auto& e : v.GetArray()) {
            if (!depth_ok(e, depth + 1)) return false;
        }
    } else if (v.IsObject()) {
        for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
            if (!depth_ok(it->value, depth + 1)) return false;
        }
    }
    return true;
}

std::string str(const Value& v) { return std::string(v.GetString(), v.GetStringLength()); }

// Reads a list of strings into a sorted, de-duplicated vector.
bool string_list(const Value* v, std::vector<std::string>& out) {
    if (!v || !v->IsArray()) return false;
    for (const auto& e : v->GetArray()) {
        if (!e.IsString()) return false;
        out.push_back(str(e));
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return true;
}

struct Failure {
    std::string reason;
};

void read_common(const Value& root, int version, const std::string& source, RepoCommon& c) {
    const Value* id = member(root, "repo-registry-id");
    if (!id) throw Failure{"missing field 'repo-registry-id'"};
    if (!id->IsString() || id->GetStringLength() == 0) {
        throw Failure{"'repo-registry-id' must be a non-empty string"};
    }
    const Value* url = member(root, "url");
    if (!url) throw Failure{"missing field 'url'"};
    if (!url->IsString()) throw Failure{"'url' must be a string"};
    c.id = str(*id);
    c.url = str(*url);
    c.url_path = url_path_of(c.url);
    c.version = version;
    c.source_path = source;
    const Value* prot = member(root, "protected");
    if (prot && !prot->IsNull()) {
        if (!prot->IsBool()) throw Failure{"'protected' must be true or false"};
        c.is_protected = prot->GetBool();
    }
    const Value* repo = member(root, "repository");
    if (repo && !repo->IsNull()) {
        if (!repo->IsString()) throw Failure{"'repository' must be a string"};
        c.repository = str(*repo);
    }
    if (c.repository.empty()) c.repository = c.id;
}

std::shared_ptr<const V1Repo> read_v1(const Value& root, const std::string& source) {
    auto r = std::make_shared<V1Repo>();
    read_common(root, 1, source, *r);
    const Value* images = member(root, "images");
    if (!images) throw Failure{"missing field 'images'"};
    if (!images->IsArray()) throw Failure{"'images' must be a list"};
    for (const auto& img : images->GetArray()) {
        const Value* id = img.IsObject() ? member(img, "id") : nullptr;
        if (!id || !id->IsString()) throw Failure{"every entry of 'images' needs a string 'id'"};
        r->image_ids.push_back(str(*id));
    }
    const Value* tags = member(root, "tags");
    if (!tags) throw Failure{"missing field 'tags'"};
    if (!tags->IsObject()) throw Failure{"'tags' must be an object"};
    for (auto it = tags->MemberBegin(); it != tags->MemberEnd(); ++it) {
        if (!it->value.IsString()) throw Failure{"tag '" + str(it->name) + "' must name an image id"};
    }
    // last value of a repeated tag wins, as in Python
    for (auto it = tags->MemberBegin(); it != tags->MemberEnd(); ++it) {
        const Value* last = member(*tags, it->name.GetString());
        if (last == &it->value) r->tags.emplace_back(str(it->name), str(it->value));
    }
    std::sort(r->tags.begin(), r->tags.end());
    append_python_json(r->images_json, *images);
    append_python_json(r->tags_json, *tags);
    return r;
}

Referrer read_descriptor(const Value& d) {
    if (!d.IsObject()) throw Failure{"every referrer must be an object"};
    Referrer out;
    const Value* mt = member(d, "mediaType");
    if (!mt || !mt->IsString()) throw Failure{"every referrer needs a string 'mediaType'"};
    out.media_type = str(*mt);
    const Value* digest = member(d, "digest");
    if (!digest || !digest->IsString()) throw Failure{"every referrer needs a string 'digest'"};
    out.digest = str(*digest);
    const Value* size = member(d, "size");
    if (!size || !size->IsInt64() || size->GetInt64() < 0) {
        throw Failure{"every referrer needs a non-negative integer 'size'"};
    }
    out.size = size->GetInt64();
    const Value* at = member(d, "artifactType");
    if (at && !at->IsNull()) {
        if (!at->IsString()) throw Failure{"a referrer's 'artifactType' must be a string"};
        out.artifact_type = str(*at);
    }
    const Value* ann = member(d, "annotations");
    if (ann && !ann->IsNull()) {
        if (!ann->IsObject()) throw Failure{"a referrer's 'annotations' must be an object"};
        for (auto it = ann->MemberBegin(); it != ann->MemberEnd(); ++it) {
            if (!it->value.IsString()) throw Failure{"a referrer's annotations must be strings"};
            if (member(*ann, it->name.GetString()) != &it->value) continue;
            out.annotations.emplace_back(str(it->name), str(it->value));
        }
        std::sort(out.annotations.begin(), out.annotations.end());
    }
    return out;
}

// The optional OCI keys of a version 4 file.
void read_oci(const Value& root, V2Repo& r) {
    if (const Value* v = member(root, "oci_index_data"); v && !v->IsNull()) {
        if (!string_list(v, r.oci_index_data)) throw Failure{"'oci_index_data' must be a list of strings"};
    }
    if (const Value* v = member(root, "oci_manifest_data"); v && !v->IsNull()) {
        if (!string_list(v, r.oci_manifest_data)) throw Failure{"'oci_manifest_data' must be a list of strings"};
    }
    if (const Value* v = member(root, "tags"); v && !v->IsNull()) {
        if (!string_list(v, r.tags)) throw Failure{"'tags' must be a list of strings"};
        r.has_tags = true;
    }
    if (const Value* v = member(root, "referrers"); v && !v->IsNull()) {
        if (!v->IsObject()) throw Failure{"'referrers' must be an object"};
        for (auto it = v->MemberBegin(); it != v->MemberEnd(); ++it) {
            if (!it->value.IsArray()) throw Failure{"'referrers' entry '" + str(it->name) + "' must be a list"};
            if (member(*v, it->name.GetString()) != &it->value) continue;
            ReferrerList list;
            list.subject = str(it->name);
            for (const auto& d : it->value.GetArray()) list.descriptors.push_back(read_descriptor(d));
            r.referrers.push_back(std::move(list));
        }
        std::sort(r.referrers.begin(), r.referrers.end(),
                  [](const ReferrerList& a, const ReferrerList& b) { return a.subject < b.subject; });
    }
}

std::shared_ptr<const V2Repo> read_v2(const Value& root, int version, const std::string& source) {
    auto r = std::make_shared<V2Repo>();
    read_common(root, version, source, *r);
    if (version >= 3) {
        r->has_schema2_fields = true;
        const Value* s2 = member(root, "schema2_data");
        if (!s2) throw Failure{"missing field 'schema2_data'"};
        if (!string_list(s2, r->schema2_data)) throw Failure{"'schema2_data' must be a list of strings"};
    }
    if (version == 4) {
        const Value* ml = member(root, "manifest_list_data");
        if (!ml) throw Failure{"missing field 'manifest_list_data'"};
        if (!string_list(ml, r->manifest_list_data)) {
            throw Failure{"'manifest_list_data' must be a list of strings"};
        }
        const Value* amd = member(root, "manifest_list_amd64_tags");
        if (!amd) throw Failure{"missing field 'manifest_list_amd64_tags'"};
        if (!amd->IsObject()) throw Failure{"'manifest_list_amd64_tags' must be an object"};
        for (auto it = amd->MemberBegin(); it != amd->MemberEnd(); ++it) {
            const Value& v = it->value;
            if (!v.IsArray() || v.Size() != 2 || !v[0].IsString() || !v[1].IsInt() ||
                (v[1].GetInt() != 1 && v[1].GetInt() != 2)) {
                throw Failure{"'manifest_list_amd64_tags' entry '" + str(it->name) +
                              "' must be [digest, 1 or 2]"};
            }
            if (member(*amd, it->name.GetString()) != &v) continue;
            r->manifest_list_amd64_tags.push_back({str(it->name), str(v[0]), v[1].GetInt()});
        }
        std::sort(r->manifest_list_amd64_tags.begin(), r->manifest_list_amd64_tags.end(),
                  [](const Amd64Tag& a, const Amd64Tag& b) { return a.tag < b.tag; });
        read_oci(root, *r);
    }
    return r;
}

}  // namespace

const std::string* V1Repo::find_tag(std::string_view tag) const {
    auto it = std::lower_bound(tags.begin(), tags.end(), tag,
                               [](const auto& p, std::string_view t) { return p.first < t; });
    return it != tags.end() && it->first == tag ? &it->second : nullptr;
}

bool V2Repo::in_schema2(std::string_view ref) const {
    return std::binary_search(schema2_data.begin(), schema2_data.end(), ref);
}

bool V2Repo::in_manifest_list(std::string_view ref) const {
    return std::binary_search(manifest_list_data.begin(), manifest_list_data.end(), ref);
}

bool V2Repo::in_oci_index(std::string_view ref) const {
    return std::binary_search(oci_index_data.begin(), oci_index_data.end(), ref);
}

bool V2Repo::in_oci_manifest(std::string_view ref) const {
    return std::binary_search(oci_manifest_data.begin(), oci_manifest_data.end(), ref);
}

const std::vector<Referrer>* V2Repo::find_referrers(std::string_view digest) const {
    auto it = std::lower_bound(referrers.begin(), referrers.end(), digest,
                               [](const ReferrerList& l, std::string_view d) { return l.subject < d; });
    return it != referrers.end() && it->subject == digest ? &it->descriptors : nullptr;
}

const Amd64Tag* V2Repo::find_amd64(std::string_view ref) const {
    auto it = std::lower_bound(manifest_list_amd64_tags.begin(), manifest_list_amd64_tags.end(), ref,
                               [](const Amd64Tag& a, std::string_view t) { return a.tag < t; });
    return it != manifest_list_amd64_tags.end() && it->tag == ref ? &*it : nullptr;
}


MetadataResult parse_metadata(std::string_view text, const std::string& source_path) {
    MetadataResult result;
    rapidjson::Document doc;
    // full precision: floats come back out exactly as Python would print them
    doc.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseFullPrecisionFlag>(text.data(), text.size());
    if (doc.HasParseError()) {
        result.error = std::string("not valid JSON (") + rapidjson::GetParseError_En(doc.GetParseError()) +
                       " at offset " + std::to_string(doc.GetErrorOffset()) + ")";
        return result;
    }
    if (!doc.IsObject()) {
        result.error = "the top level is not a JSON object";
        return result;
    }
    if (!depth_ok(doc, 0)) {
        result.error = "nested deeper than " + std::to_string(kMaxDepth) + " levels";
        return result;
    }
    try {
        const Value* version = member(doc, "version");
        if (!version) throw Failure{"missing field 'version'"};
        if (!version->IsInt()) throw Failure{"'version' must be an integer"};
        int v = version->GetInt();
        if (v == 1) {
            result.v1 = read_v1(doc, source_path);
        } else if (v >= 2 && v <= 4) {
            result.v2 = read_v2(doc, v, source_path);
        } else {
            throw Failure{"metadata version " + std::to_string(v) + " not supported (1 to 4)"};
        }
    } catch (const Failure& f) {
        result.error = f.reason;
    }
    return result;
}

}  // namespace crane
