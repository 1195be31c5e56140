// The version 4 metadata file of a v2 repository: the writer beside the
// parser (metadata.cpp), so that what crane-publish writes is what the index
// reads. Keys sorted and separators as Crane's json.dumps(sort_keys=True).
#include "crane/json_writer.h"
#include "crane/metadata.h"

namespace crane {

namespace {

void string_array(json::Writer& w, const std::vector<std::string>& items) {
    w.begin_array();
    for (const auto& s : items) w.string(s);
    w.end_array();
}

}  // namespace

std::string metadata_v4_json(const V2Repo& repo) {
    json::Writer w;
    w.begin_object();
    w.key("manifest_list_amd64_tags").begin_object();
    for (const auto& t : repo.manifest_list_amd64_tags) {
        w.key(t.tag).begin_array().string(t.digest).integer(t.schema_version).end_array();
    }
    w.end_object();
    w.key("manifest_list_data");
    string_array(w, repo.manifest_list_data);
    w.key("oci_index_data");
    string_array(w, repo.oci_index_data);
    w.key("oci_manifest_data");
    string_array(w, repo.oci_manifest_data);
    w.key("protected").boolean(repo.is_protected);
    w.key("referrers").begin_object();
    for (const auto& list : repo.referrers) {
        w.key(list.subject).begin_array();
        for (const auto& d : list.descriptors) {
            w.begin_object();
            if (!d.annotations.empty()) {
                w.key("annotations").begin_object();
                for (const auto& [k, v] : d.annotations) w.key(k).string(v);
                w.end_object();
            }
            if (!d.artifact_type.empty()) w.key("artifactType").string(d.artifact_type);
            w.key("digest").string(d.digest);
            w.key("mediaType").string(d.media_type);
            w.key("size").integer(d.size);
            w.end_object();
        }
        w.end_array();
    }
    w.end_object();
    w.key("repo-registry-id").string(repo.id);
    w.key("repository").string(repo.repository);
    w.key("schema2_data");
    string_array(w, repo.schema2_data);
    w.key("tags");
    string_array(w, repo.tags);
    w.key("url").string(repo.url);
    w.key("version").integer(4);
    w.end_object();
    return w.take() + "\n";
}

}  // namespace crane
