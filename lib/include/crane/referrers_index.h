// The OCI image index that lists a subject's referrers: the referrers API's
// answer and crane-publish's `sha256-<hex>` tag (the referrers tag schema)
// are written by this one writer, so the two give the same bytes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "crane/json_writer.h"

namespace crane {

class ReferrersIndexWriter {
public:
    ReferrersIndexWriter();
    // artifact_type empty: no artifactType member
    void begin_descriptor(std::string_view media_type, std::string_view digest, std::int64_t size,
                          std::string_view artifact_type);
    // in key order, after begin_descriptor
    void annotation(std::string_view key, std::string_view value);
    void end_descriptor();
    // the index; the writer is spent
    std::string take();

private:
    json::Writer w_;
    bool in_annotations_ = false;
};

}  // namespace crane
