// Where the snapshots live and how often they are rebuilt (see snapshot_plan.h).
#include "crane/snapshot_plan.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "crane/fd.h"
#include "crane/strings.h"

namespace crane {

std::int64_t scan_interval(std::int64_t configured) { return configured > 0 ? configured : kDefaultScanInterval; }

std::string snapshot_file_path(std::string_view dir, std::string_view data_dir, std::string_view server) {
    const std::uint64_t h = fnv1a(server, fnv1a("\n", fnv1a(data_dir)));
    std::string name;
    for (char c : data_dir) {
        if (name.size() >= 48) break;
        name += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.') ? c : '_';
    }
    while (!name.empty() && name.front() == '_') name.erase(0, 1);
    char hex[17];
    std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(h));
    std::string path(dir);
    path += '/';
    path += name.empty() ? "root" : name;
    path += '-';
    path += hex;
    path += ".snap";
    return path;
}

std::string unreachable_for(const std::string& dir, SnapshotWriter writer) {
    std::string path;
    std::size_t from = 0;
    while (from != std::string::npos) {
        const std::size_t slash = dir.find('/', from + 1);
        path = dir.substr(0, slash == std::string::npos ? dir.size() : slash);
        from = slash;
        if (path.empty()) continue;
        struct stat st;
        if (::stat(path.c_str(), &st) != 0) return path + " (" + std::strerror(errno) + ")";
        const mode_t x = st.st_uid == writer.uid ? S_IXUSR : st.st_gid == writer.gid ? S_IXGRP : S_IXOTH;
        if (!(st.st_mode & x)) {
            char mode[8];
            std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
            return path + " (mode " + mode + ", owner uid " + std::to_string(st.st_uid) + ")";
        }
    }
    return {};
}

std::optional<std::string> prepare_snapshot_dir(const std::string& dir, SnapshotWriter writer, bool as_root) {
    struct stat st;
    const bool existed = ::stat(dir.c_str(), &st) == 0;
    if (existed && !S_ISDIR(st.st_mode)) return "CraneSnapshotDir " + dir + ": not a directory";
    if (!existed) {
        if (!make_directories(dir, 0700)) {  // errno says why
            return "CraneSnapshotDir " + dir + ": cannot be created: " + std::strerror(errno);
        }
        if (as_root && ::chown(dir.c_str(), writer.uid, writer.gid) != 0) {
            return "CraneSnapshotDir " + dir + ": cannot give it to User: " + std::strerror(errno);
        }
    } else if (as_root && st.st_uid != writer.uid) {
        return "CraneSnapshotDir " + dir + ": owned by uid " + std::to_string(st.st_uid) + ", not by User (uid " +
               std::to_string(writer.uid) + ") who writes the snapshots; chown it or name another directory";
    } else if (!as_root && ::access(dir.c_str(), W_OK | X_OK) != 0) {
        return "CraneSnapshotDir " + dir + ": not writable: " + std::strerror(errno);
    }
    if (as_root) {
        // the children run as User: every directory on the way must let them through
        const std::string blocked = unreachable_for(dir, writer);
        if (!blocked.empty()) {
            return "CraneSnapshotDir " + dir + ": User (uid " + std::to_string(writer.uid) +
                   ") cannot reach it: " + blocked;
        }
    }
    return std::nullopt;
}

}  // namespace crane
