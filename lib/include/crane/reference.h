// The reference grammars, one copy each: tags and digests as the
// distribution spec and the OCI image spec define them. The metadata
// reader checks every ref of every file with them, the v2 API checks the
// digests clients send, crane-publish the tags and digests it writes.
//
// There is no lenient variant: Crane's own metadata files already hold
// only spec-shaped refs, and the module refuses a file with a malformed
// one. The one narrower rule is is_sha256_digest, for the places that
// name files by digest (crane-publish computes sha256 only, and content
// paths under blobs/sha256/ are sha256 by construction).
#pragma once

#include <string_view>

namespace crane {

// [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
bool is_tag(std::string_view s);

// ALGORITHM ":" ENCODED: algorithm components [a-z0-9]+ joined by one of
// . + _ -, encoded [a-zA-Z0-9=_-]+; the registered algorithms have their
// exact lowercase-hex length (sha256 64, sha512 128 digits).
bool is_digest(std::string_view s);

// "sha256:" followed by exactly 64 lowercase hex digits.
bool is_sha256_digest(std::string_view s);

// A tag or a digest: a tag has no ':', a digest always has one.
bool is_reference(std::string_view s);

}  // namespace crane
