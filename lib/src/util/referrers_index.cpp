// The referrers' OCI image index (see crane/referrers_index.h).
#include "crane/referrers_index.h"

#include "crane/media_types.h"

namespace crane {

ReferrersIndexWriter::ReferrersIndexWriter() {
    w_.begin_object().key("schemaVersion").integer(2).key("mediaType").string(kMediaOciIndex);
    w_.key("manifests").begin_array();
}

void ReferrersIndexWriter::begin_descriptor(std::string_view media_type, std::string_view digest, std::int64_t size,
                                            std::string_view artifact_type) {
    w_.begin_object().key("mediaType").string(media_type).key("digest").string(digest);
    w_.key("size").integer(size);
    if (!artifact_type.empty()) w_.key("artifactType").string(artifact_type);
}

void ReferrersIndexWriter::annotation(std::string_view key, std::string_view value) {
    if (!in_annotations_) {
        w_.key("annotations").begin_object();
        in_annotations_ = true;
    }
    w_.key(key).string(value);
}

void ReferrersIndexWriter::end_descriptor() {
    if (in_annotations_) {
        w_.end_object();
        in_annotations_ = false;
    }
    w_.end_object();
}

std::string ReferrersIndexWriter::take() {
    w_.end_array().end_object();
    return w_.take();
}

}  // namespace crane
