// What a snapshot build does with a metadata file whose new content cannot
// be used (SnapshotBuilder::refresh): the fail-closed rule on its own, so
// that unit tests reach it.
#pragma once

namespace crane {

enum class FailedFileFate {
    KeepLastGood,  // a parse error: its last good content stays served
    Withdraw,      // its repository is not served until the file is fixed
    Skip,          // it had no content before: nothing to serve
};

// had_content: the file's last good content is in the base snapshot.
// unreadable: the file could not be read at all (permissions, I/O, size).
// marks_protected: the content that failed to parse marks the repository
// protected. A file that cannot be read, or whose new content asks for
// protection, never keeps serving its old content: fail closed.
FailedFileFate failed_file_fate(bool had_content, bool unreadable, bool marks_protected);

}  // namespace crane
