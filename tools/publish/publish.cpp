// crane-publish: skopeo dir: layout or OCI image layout in, Pulp's v2 web
// layout (plus OCI paths) and version 4 metadata out (see publish.h).
#include "publish/publish.h"

#include <dirent.h>
#include <fcntl.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <memory>
#include <set>
#include <utility>

#include "crane/fd.h"
#include "crane/json_members.h"
#include "crane/json_writer.h"
#include "crane/read_file.h"
#include "crane/referrers_index.h"
#include "crane/sha256.h"

namespace crane::publish {

namespace {

using rapidjson::Value;

constexpr std::int64_t kMaxManifestBytes = 4 << 20;  // containers/image's limit
std::string finish_sha256(Sha256& sha) {
    auto hex = sha.hex();
    if (!hex) throw Error("OpenSSL cannot compute sha256.");
    return "sha256:" + *hex;
}

std::string errno_text(int err) { return std::strerror(err); }

std::string hex_of(const std::string& digest) { return digest.substr(std::strlen("sha256:")); }

// ---- files ----

bool exists_no_follow(const std::string& path, struct stat* st = nullptr) {
    struct stat s {};
    if (::lstat(path.c_str(), &s) != 0) return false;
    if (st) *st = s;
    return true;
}

bool is_regular_file(const std::string& path) {
    struct stat s {};
    return ::stat(path.c_str(), &s) == 0 && S_ISREG(s.st_mode);
}

bool is_directory(const std::string& path) {
    struct stat s {};
    return ::stat(path.c_str(), &s) == 0 && S_ISDIR(s.st_mode);
}

// The whole file, at most `limit` bytes (more is an error).
std::string read_file(const std::string& path, std::int64_t limit) {
    auto bytes = crane::read_whole_file(path, static_cast<std::size_t>(limit));
    if (bytes) return std::move(*bytes);
    if (bytes.error().kind == crane::FileReadError::Kind::TooLarge) {
        throw Error(path + " is larger than " + std::to_string(limit) + " bytes.");
    }
    throw Error("Cannot read " + path + ": " + errno_text(bytes.error().errno_value) + ".");
}

void write_or_throw(int fd, const char* data, std::size_t size, const std::string& path) {
    if (!crane::write_all(fd, data, size)) throw Error("Cannot write " + path + ": " + errno_text(errno) + ".");
}

// `bytes` in a file beside its final place (crane::ReplacementFile), synced
// and closed; commit() renames it into place.
void write_replacement(crane::ReplacementFile& file, const std::string& dir, std::string_view bytes) {
    if (!file.created()) {
        throw Error("Cannot create a temporary file in " + dir + ": " + errno_text(file.error_number()) + ".");
    }
    if (!file.ok()) throw Error("Cannot chmod " + file.temp_path() + ": " + errno_text(file.error_number()) + ".");
    if (!file.write(bytes) || !file.close(true)) {
        throw Error("Cannot write " + file.temp_path() + ": " + errno_text(file.error_number()) + ".");
    }
}

void sync_and_close(Fd& fd, const std::string& path) {
    if (::fsync(fd.get()) != 0)
        throw Error("Cannot write " + path + ": " + errno_text(errno) + ".");
    if (::close(fd.release()) != 0) {
        throw Error("Cannot write " + path + ": " + errno_text(errno) + ".");
    }
}

// A new file (must not exist) holding exactly `bytes`, mode 0644.
void write_new_file(const std::string& path, std::string_view bytes) {
    Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (fd.get() < 0) throw Error("Cannot create " + path + ": " + errno_text(errno) + ".");
    if (::fchmod(fd.get(), 0644) != 0)
        throw Error("Cannot chmod " + path + ": " + errno_text(errno) + ".");
    write_or_throw(fd.get(), bytes.data(), bytes.size(), path);
    sync_and_close(fd, path);
}

// mkdir -p with mode 0755 for every directory it creates.
void make_dirs(const std::string& path) {
    if (path.empty()) return;
    const auto made = make_directories(path, 0755);
    if (!made) throw Error(std::string(1, static_cast<char>(std::toupper(made.error()[0]))) + made.error().substr(1) + ".");
}

void sync_dir(const std::string& path) {
    Fd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.get() >= 0) ::fsync(fd.get());
}

// rm -rf without following symlinks; best effort.
void remove_tree(const std::string& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return;
    if (S_ISDIR(st.st_mode)) {
        if (DIR* d = ::opendir(path.c_str())) {
            std::vector<std::string> names;
            while (dirent* e = ::readdir(d)) {
                std::string name = e->d_name;
                if (name != "." && name != "..") names.push_back(name);
            }
            ::closedir(d);
            for (const auto& n : names) remove_tree(path + "/" + n);
        }
        ::rmdir(path.c_str());
    } else {
        ::unlink(path.c_str());
    }
}

std::string parent_of(const std::string& path) {
    auto slash = path.find_last_of('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

std::string base_of(const std::string& path) {
    auto slash = path.find_last_of('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

constexpr std::string_view kTempPrefix = ".crane-publish.";     // + BASE.XXXXXX: a new tree
constexpr std::string_view kOldPrefix = ".crane-publish-old.";  // + BASE.XXXXXX: the replaced one

// A fresh empty directory "DIR/PREFIXBASE.XXXXXX", mode 0755.
std::string make_temp_dir(const std::string& dir, std::string_view prefix,
                          const std::string& base) {
    std::string tmpl = dir + "/" + std::string(prefix) + base + ".XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!::mkdtemp(buf.data())) {
        throw Error("Cannot create a temporary directory in " + dir + ": " + errno_text(errno) +
                    ".");
    }
    std::string path(buf.data());
    ::chmod(path.c_str(), 0755);
    return path;
}

// Removes a temp tree unless released.
class TreeGuard {
  public:
    explicit TreeGuard(std::string path) : path_(std::move(path)) {}
    ~TreeGuard() {
        if (!path_.empty()) remove_tree(path_);
    }
    TreeGuard(const TreeGuard&) = delete;
    TreeGuard& operator=(const TreeGuard&) = delete;
    void release() { path_.clear(); }

  private:
    std::string path_;
};

// ---- JSON ----

// the last of repeated keys, as Go's encoding/json
const Value* member(const Value& obj, const char* name) { return json::last_member(obj, name); }

std::string str(const Value& v) { return std::string(json::string_of(v)); }

std::string optional_string(const Value& obj, const char* name, const std::string& what) {
    const Value* v = member(obj, name);
    if (!v || v->IsNull()) return {};
    if (!v->IsString()) throw Error(what + ": '" + name + "' must be a string.");
    return str(*v);
}

rapidjson::Document parse_json(std::string_view bytes, const std::string& what) {
    rapidjson::Document doc;
    doc.Parse<rapidjson::kParseValidateEncodingFlag>(bytes.data(), bytes.size());
    if (doc.HasParseError()) {
        throw Error(what + " is not valid JSON (" +
                    rapidjson::GetParseError_En(doc.GetParseError()) + " at offset " +
                    std::to_string(doc.GetErrorOffset()) + ").");
    }
    if (!doc.IsObject()) throw Error(what + " is not a JSON object.");
    return doc;
}

// Media type of a parsed manifest (mediaType, else guessed from its shape).
std::string media_type_of(const Value& root, const std::string& what) {
    std::string mt = optional_string(root, "mediaType", what);
    if (!mt.empty()) return mt;
    const Value* sv = member(root, "schemaVersion");
    if (sv && sv->IsInt() && sv->GetInt() == 1) return std::string(kMediaSchema1);
    if (member(root, "manifests")) return std::string(kMediaOciIndex);
    if (member(root, "config")) return std::string(kMediaOciManifest);
    return {};
}

[[noreturn]] void unsupported(const std::string& what, const std::string& media_type,
                              const std::string& wanted) {
    std::string hint;
    if (media_type == kMediaSchema1 || media_type == kMediaSchema1Signed) {
        hint =
            " Schema 1 images are not published; copy the image with "
            "`skopeo copy --format v2s2`.";
    }
    throw Error(what + " has media type '" + (media_type.empty() ? "(none)" : media_type) +
                "', not " + wanted + "." + hint);
}

std::int64_t size_field(const Value& obj, const std::string& what) {
    const Value* size = member(obj, "size");
    if (!size || !size->IsInt64() || size->GetInt64() < 0) {
        throw Error(what + ": 'size' must be a non-negative integer.");
    }
    return size->GetInt64();
}

std::string digest_field(const Value& obj, const std::string& what) {
    const Value* d = member(obj, "digest");
    if (!d || !d->IsString()) throw Error(what + ": 'digest' is missing.");
    std::string digest = str(*d);
    if (!is_sha256_digest(digest)) {
        throw Error(what + ": digest '" + digest + "' is not sha256:<64 lowercase hex digits>.");
    }
    return digest;
}

BlobRef blob_ref(const Value& v, const std::string& what) {
    if (!v.IsObject()) throw Error(what + " is not a JSON object.");
    BlobRef b;
    b.digest = digest_field(v, what);
    b.size = size_field(v, what);
    b.media_type = optional_string(v, "mediaType", what);
    b.foreign = b.media_type == kMediaForeignLayer ||
                b.media_type.rfind(kMediaOciNondistributablePrefix, 0) == 0;
    return b;
}

// An "annotations" object (string -> string), sorted by key.
std::vector<std::pair<std::string, std::string>> annotations_of(const Value& obj,
                                                                const std::string& what) {
    std::map<std::string, std::string> out;  // the last of repeated keys wins
    const Value* a = member(obj, "annotations");
    if (!a || a->IsNull()) return {};
    if (!a->IsObject()) throw Error(what + ": 'annotations' must be an object.");
    for (auto it = a->MemberBegin(); it != a->MemberEnd(); ++it) {
        if (!it->value.IsString()) {
            throw Error(what + ": annotation '" + str(it->name) + "' must be a string.");
        }
        out[str(it->name)] = str(it->value);
    }
    return {out.begin(), out.end()};
}

void check_schema_version_2(const Value& doc, const std::string& what) {
    const Value* sv = member(doc, "schemaVersion");
    if (!sv || !sv->IsInt() || sv->GetInt() != 2)
        throw Error(what + ": 'schemaVersion' must be 2.");
}

bool is_list_type(const std::string& media_type) {
    return media_type == kMediaManifestList || media_type == kMediaOciIndex;
}

// Every config and layer blob of the image's manifests: `locate` gives the
// file a digest is stored in; a missing file is an error (foreign layers
// excepted: clients fetch them from their urls).
template <typename Locate>
void find_blobs(DirImage& image, const std::string& where, Locate locate) {
    for (const auto& m : image.manifests) {
        std::vector<const BlobRef*> refs{&m.config};
        for (const auto& l : m.layers) refs.push_back(&l);
        for (const BlobRef* b : refs) {
            std::string path = locate(b->digest);
            if (!is_regular_file(path)) {
                if (b->foreign) continue;
                throw Error("Blob " + b->digest + " of manifest " + m.digest + " is missing from " +
                            where + " (no file " + path + ").");
            }
            image.blob_files.emplace(b->digest, path);
        }
    }
}

// Checks bytes read for a descriptor against its digest and size.
void check_against(const std::string& bytes, const std::string& path, const std::string& digest,
                   std::int64_t size, const std::string& by) {
    std::string actual = sha256_digest(bytes);
    if (actual != digest) {
        throw Error(path + " hashes to " + actual + ", not to " + digest + " as " + by +
                    " says (corrupt or modified).");
    }
    if (static_cast<std::int64_t>(bytes.size()) != size) {
        throw Error(path + " is " + std::to_string(bytes.size()) + " bytes, " + by + " says " +
                    std::to_string(size) + ".");
    }
}

void string_array(json::Writer& w, const std::vector<std::string>& items) {
    w.begin_array();
    for (const auto& s : items) w.string(s);
    w.end_array();
}

void add_sorted_unique(std::vector<std::string>& v) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
}

}  // namespace

// ---- pure helpers ----

std::string sha256_digest(std::string_view bytes) {
    Sha256 sha;
    sha.update(bytes);
    return finish_sha256(sha);
}

bool is_valid_repo_id(std::string_view id) {
    if (id.empty() || id.size() > 255) return false;
    auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
    while (true) {
        auto slash = id.find('/');
        std::string_view comp = id.substr(0, slash);
        // [a-z0-9]+ ( ( '.' | '_' | '__' | '-'+ ) [a-z0-9]+ )*
        if (comp.empty() || !alnum(comp.front()) || !alnum(comp.back())) return false;
        for (std::size_t i = 0; i < comp.size();) {
            if (alnum(comp[i])) {
                ++i;
                continue;
            }
            std::size_t j = i;
            while (j < comp.size() && !alnum(comp[j])) ++j;
            std::string_view sep = comp.substr(i, j - i);
            bool dashes = sep.find_first_not_of('-') == std::string_view::npos;
            if (!(sep == "." || sep == "_" || sep == "__" || dashes)) return false;
            i = j;
        }
        if (slash == std::string_view::npos) return true;
        id.remove_prefix(slash + 1);
    }
}

bool is_valid_repository_dir(std::string_view dir) {
    if (dir.empty() || dir.size() > 255) return false;
    while (true) {
        auto slash = dir.find('/');
        std::string_view comp = dir.substr(0, slash);
        if (comp.empty() || comp.front() == '.') return false;
        for (char c : comp) {
            bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '_' || c == '-';
            if (!ok) return false;
        }
        if (slash == std::string_view::npos) return true;
        dir.remove_prefix(slash + 1);
    }
}

std::string slashes_to_dashes(std::string_view s) {
    std::string out(s);
    std::replace(out.begin(), out.end(), '/', '-');
    return out;
}

const ListInstance* ManifestList::amd64() const {
    const ListInstance* any = nullptr;
    for (const auto& i : instances) {
        if (i.architecture != "amd64") continue;
        if (i.os == "linux") return &i;
        if (!any) any = &i;
    }
    return any;
}

ImageManifest parse_image_manifest(std::string_view bytes, const std::string& what) {
    rapidjson::Document doc = parse_json(bytes, what);
    std::string mt = media_type_of(doc, what);
    if (mt != kMediaManifestV2 && mt != kMediaOciManifest) {
        unsupported(what, mt, "a Docker schema 2 or OCI image manifest");
    }
    check_schema_version_2(doc, what);
    ImageManifest m;
    m.media_type = mt;
    m.bytes = std::string(bytes);
    m.digest = sha256_digest(bytes);
    const Value* config = member(doc, "config");
    if (!config) throw Error(what + ": 'config' is missing.");
    m.config = blob_ref(*config, what + " config");
    const Value* layers = member(doc, "layers");
    if (!layers || !layers->IsArray()) throw Error(what + ": 'layers' must be a list.");
    std::size_t n = 0;
    for (const auto& l : layers->GetArray()) {
        m.layers.push_back(blob_ref(l, what + " layer " + std::to_string(n++)));
    }
    if (m.is_oci()) {
        if (const Value* subject = member(doc, "subject"); subject && !subject->IsNull()) {
            if (!subject->IsObject()) throw Error(what + ": 'subject' must be an object.");
            m.subject = digest_field(*subject, what + " subject");
        }
        m.artifact_type = optional_string(doc, "artifactType", what);
        if (m.artifact_type.empty()) m.artifact_type = m.config.media_type;
        m.annotations = annotations_of(doc, what);
    }
    return m;
}

ManifestList parse_manifest_list(std::string_view bytes, const std::string& what) {
    rapidjson::Document doc = parse_json(bytes, what);
    std::string mt = media_type_of(doc, what);
    if (!is_list_type(mt)) unsupported(what, mt, "a Docker manifest list or OCI image index");
    check_schema_version_2(doc, what);
    ManifestList list;
    list.media_type = mt;
    list.bytes = std::string(bytes);
    list.digest = sha256_digest(bytes);
    const Value* manifests = member(doc, "manifests");
    if (!manifests || !manifests->IsArray()) throw Error(what + ": 'manifests' must be a list.");
    if (manifests->Empty()) throw Error(what + " lists no manifests.");
    // one family per list: what a client reads from the list it can read
    // from its instances too
    const std::string_view entry_type = list.is_oci() ? kMediaOciManifest : kMediaManifestV2;
    std::size_t n = 0;
    for (const auto& e : manifests->GetArray()) {
        std::string ewhat = what + " entry " + std::to_string(n++);
        if (!e.IsObject()) throw Error(ewhat + " is not a JSON object.");
        ListInstance i;
        i.digest = digest_field(e, ewhat);
        i.size = size_field(e, ewhat);
        i.media_type = optional_string(e, "mediaType", ewhat);
        if (i.media_type != entry_type) {
            throw Error(ewhat + " (" + i.digest + ") has media type '" +
                        (i.media_type.empty() ? "(none)" : i.media_type) + "', not " +
                        (list.is_oci() ? "an OCI image manifest (nested indexes and Docker "
                                         "manifests in an OCI index are not published)"
                                       : "a Docker schema 2 manifest") +
                        ".");
        }
        const Value* platform = member(e, "platform");
        if (platform && platform->IsObject()) {
            i.architecture = optional_string(*platform, "architecture", ewhat);
            i.os = optional_string(*platform, "os", ewhat);
            i.variant = optional_string(*platform, "variant", ewhat);
        } else if (platform && !platform->IsNull()) {
            throw Error(ewhat + ": 'platform' must be an object.");
        }
        list.instances.push_back(std::move(i));
    }
    return list;
}

namespace {

std::string instance_what(const ListInstance& inst, const std::string& list_what) {
    return "the " + (inst.architecture.empty() ? std::string("?") : inst.architecture) +
           " instance " + inst.digest + " of " + list_what;
}

// An instance's manifest, which must have the type its list entry says.
ImageManifest parse_instance(const std::string& bytes, const ListInstance& inst,
                             const std::string& path) {
    ImageManifest m = parse_image_manifest(bytes, path);
    if (m.media_type != inst.media_type) {
        throw Error(path + " is a '" + m.media_type + "', not a '" + inst.media_type +
                    "' as its list entry says.");
    }
    return m;
}

}  // namespace

// ---- dir: layout ----

DirImage read_dir_image(const std::string& dir) {
    if (!is_directory(dir)) throw Error(dir + " is not a directory.");
    DirImage image;
    image.dir = dir;
    const std::string version_path = dir + "/version";
    bool old_layout = false;
    if (is_regular_file(version_path)) {
        std::string v = read_file(version_path, 4096);
        if (v.rfind("Directory Transport Version: 1.", 0) != 0) {
            throw Error(dir + " is not an image in skopeo's dir: layout (" + version_path +
                        " says '" + v.substr(0, v.find('\n')) + "').");
        }
        old_layout = v.rfind("Directory Transport Version: 1.0", 0) == 0;
    }
    const std::string top_path = dir + "/manifest.json";
    if (!is_regular_file(top_path)) {
        throw Error(dir +
                    " is not an image in skopeo's dir: layout (no manifest.json; write it with "
                    "`skopeo copy SOURCE dir:" +
                    dir + "`, or give an OCI image layout as oci:DIR:REF).");
    }
    std::string top = read_file(top_path, kMaxManifestBytes);
    {
        rapidjson::Document doc = parse_json(top, top_path);
        if (is_list_type(media_type_of(doc, top_path))) {
            image.list = parse_manifest_list(top, top_path);
        }
    }
    if (image.list) {
        for (const auto& inst : image.list->instances) {
            std::string path = dir + "/" + hex_of(inst.digest) + ".manifest.json";
            if (!is_regular_file(path)) {
                throw Error(instance_what(inst, top_path) + " is missing (" + path +
                            "); copy every instance with `skopeo copy --all`.");
            }
            std::string bytes = read_file(path, kMaxManifestBytes);
            check_against(bytes, path, inst.digest, inst.size, "the manifest list");
            image.manifests.push_back(parse_instance(bytes, inst, path));
        }
    } else {
        image.manifests.push_back(parse_image_manifest(top, top_path));
    }
    find_blobs(image, dir, [&dir, old_layout](const std::string& digest) {
        std::string path = dir + "/" + hex_of(digest);
        if (!is_regular_file(path) && old_layout && is_regular_file(path + ".tar")) path += ".tar";
        return path;
    });
    return image;
}

// ---- OCI image layout ----

DirImage read_oci_layout(const std::string& dir, const std::string& ref) {
    if (!is_directory(dir)) throw Error(dir + " is not a directory.");
    const std::string layout_path = dir + "/oci-layout";
    if (!is_regular_file(layout_path)) {
        throw Error(dir + " is not an OCI image layout (no oci-layout file).");
    }
    {
        rapidjson::Document doc = parse_json(read_file(layout_path, 4096), layout_path);
        std::string version = optional_string(doc, "imageLayoutVersion", layout_path);
        if (version != "1.0.0") {
            throw Error(layout_path + ": imageLayoutVersion is '" + version + "', not '1.0.0'.");
        }
    }
    const std::string index_path = dir + "/index.json";
    if (!is_regular_file(index_path)) {
        throw Error(dir + " is not an OCI image layout (no index.json).");
    }
    rapidjson::Document index = parse_json(read_file(index_path, kMaxManifestBytes), index_path);
    check_schema_version_2(index, index_path);
    const Value* entries = member(index, "manifests");
    if (!entries || !entries->IsArray()) throw Error(index_path + ": 'manifests' must be a list.");

    auto blob_path = [&dir](const std::string& digest) {
        return dir + "/blobs/sha256/" + hex_of(digest);
    };
    std::map<std::string, std::string> read_cache;  // digest -> bytes
    auto read_blob = [&](const std::string& digest, std::int64_t size, const std::string& what) {
        if (auto it = read_cache.find(digest); it != read_cache.end()) return it->second;
        std::string path = blob_path(digest);
        if (!is_regular_file(path)) throw Error(what + " is missing (no file " + path + ").");
        std::string bytes = read_file(path, kMaxManifestBytes);
        check_against(bytes, path, digest, size, what);
        read_cache[digest] = bytes;
        return bytes;
    };

    struct Entry {
        std::string digest, media_type, name, what;
        std::int64_t size = 0;
        std::optional<ImageManifest> manifest;  // OCI image manifests, parsed
    };
    std::vector<Entry> all;
    std::size_t n = 0;
    for (const auto& e : entries->GetArray()) {
        Entry entry;
        entry.what = index_path + " entry " + std::to_string(n++);
        if (!e.IsObject()) throw Error(entry.what + " is not a JSON object.");
        entry.digest = digest_field(e, entry.what);
        entry.size = size_field(e, entry.what);
        entry.media_type = optional_string(e, "mediaType", entry.what);
        for (const auto& [key, value] : annotations_of(e, entry.what)) {
            if (key == kAnnotationRefName) entry.name = value;
        }
        if (entry.media_type == kMediaOciManifest) {
            // read now: whether it has a subject decides whether it is an image
            entry.manifest = parse_image_manifest(read_blob(entry.digest, entry.size, entry.what),
                                                  blob_path(entry.digest));
        }
        all.push_back(std::move(entry));
    }

    const Entry* chosen = nullptr;
    std::set<std::string> names;
    for (const auto& entry : all) {
        bool artifact = entry.manifest && !entry.manifest->subject.empty();
        if (!entry.name.empty()) names.insert("'" + entry.name + "'");
        bool match = ref.empty() ? !artifact : entry.name == ref;
        if (!match) continue;
        if (chosen && chosen->digest != entry.digest) {
            throw Error(dir + " holds more than one image" +
                        (ref.empty() ? std::string() : " named '" + ref + "'") +
                        "; choose one with oci:" + dir + ":REF.");
        }
        chosen = &entry;
    }
    if (!chosen) {
        std::string known;
        for (const auto& name : names) known += (known.empty() ? "" : ", ") + name;
        throw Error(dir + " holds no image" +
                    (ref.empty() ? std::string() : " named '" + ref + "'") +
                    (known.empty() ? std::string(".") : " (names: " + known + ")."));
    }

    DirImage image;
    image.dir = dir;
    if (is_list_type(chosen->media_type)) {
        std::string path = blob_path(chosen->digest);
        image.list =
            parse_manifest_list(read_blob(chosen->digest, chosen->size, chosen->what), path);
        for (const auto& inst : image.list->instances) {
            std::string ipath = blob_path(inst.digest);
            std::string bytes = read_blob(inst.digest, inst.size, instance_what(inst, path));
            image.manifests.push_back(parse_instance(bytes, inst, ipath));
        }
    } else if (chosen->manifest) {
        image.manifests.push_back(*chosen->manifest);
    } else if (chosen->media_type == kMediaManifestV2) {
        ImageManifest m = parse_image_manifest(
            read_blob(chosen->digest, chosen->size, chosen->what), blob_path(chosen->digest));
        image.manifests.push_back(std::move(m));
    } else {
        unsupported(chosen->what, chosen->media_type, "an image manifest, list or index");
    }
    find_blobs(image, dir, blob_path);
    for (const auto& entry : all) {
        if (!entry.manifest || entry.manifest->subject.empty() || entry.digest == chosen->digest) {
            continue;
        }
        image.artifacts.push_back(*entry.manifest);
        const ImageManifest& a = image.artifacts.back();
        std::vector<const BlobRef*> refs{&a.config};
        for (const auto& l : a.layers) refs.push_back(&l);
        for (const BlobRef* b : refs) {
            if (is_regular_file(blob_path(b->digest))) {
                image.blob_files.emplace(b->digest, blob_path(b->digest));
            }
        }
    }
    return image;
}

DirImage read_image(const std::string& source) {
    if (source.rfind("oci:", 0) == 0) {
        std::string rest = source.substr(4);
        auto colon = rest.find(':');
        std::string path = rest.substr(0, colon);
        std::string ref = colon == std::string::npos ? std::string() : rest.substr(colon + 1);
        if (path.empty()) throw Error("'" + source + "' names no directory (oci:DIR[:REF]).");
        return read_oci_layout(path, ref);
    }
    if (source.rfind("dir:", 0) == 0) return read_dir_image(source.substr(4));
    if (is_regular_file(source + "/oci-layout") && !is_regular_file(source + "/manifest.json")) {
        return read_oci_layout(source, "");
    }
    return read_dir_image(source);
}

// ---- the plan ----

Options normalized(Options o) {
    if (o.repo_id.empty()) throw Error("--repo-id is required.");
    if (!is_valid_repo_id(o.repo_id)) {
        throw Error(
            "Repository id '" + o.repo_id +
            "' is not a valid Docker repository name (lowercase letters, digits, separators "
            "'.', '_', '__', '-', components joined by '/').");
    }
    if (o.repository.empty()) o.repository = slashes_to_dashes(o.repo_id);
    if (!is_valid_repository_dir(o.repository)) {
        throw Error(
            "Repository directory '" + o.repository +
            "' must be a relative path of [A-Za-z0-9._-] components not starting with '.'.");
    }
    while (o.base_url.size() > 1 && o.base_url.back() == '/') o.base_url.pop_back();
    if (o.base_url.empty()) throw Error("--base-url is required.");
    if (o.web_dir.empty()) throw Error("--out is required.");
    if (o.metadata_dir.empty()) throw Error("--metadata is required.");
    while (o.web_dir.size() > 1 && o.web_dir.back() == '/') o.web_dir.pop_back();
    while (o.metadata_dir.size() > 1 && o.metadata_dir.back() == '/') o.metadata_dir.pop_back();
    if (o.tags.empty()) throw Error("Nothing to publish: give at least one TAG=DIR.");
    std::set<std::string> seen;
    for (const auto& [tag, dir] : o.tags) {
        if (!is_tag(tag)) {
            throw Error("Tag '" + tag +
                        "' is not a valid Docker tag ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}).");
        }
        if (dir.empty()) throw Error("Tag '" + tag + "' has no image directory.");
        if (!seen.insert(tag).second) throw Error("Tag '" + tag + "' is given twice.");
    }
    return o;
}

Plan make_plan(const Options& o, const std::vector<std::pair<std::string, DirImage>>& tagged) {
    Plan p;
    p.repo_id = o.repo_id;
    p.repository = o.repository;
    p.url = o.base_url + "/" + o.repository + "/";
    p.is_protected = o.is_protected;
    std::map<std::string, const ImageManifest*> published;  // every manifest, by digest
    std::set<std::string> lists;                            // list and index digests
    auto add_manifest = [&p, &published](const ImageManifest& m, const DirImage& image) {
        if (m.is_oci()) {
            p.files["manifests/oci/" + m.digest] = m.bytes;
            p.oci_manifest_data.push_back(m.digest);
        } else {
            p.files["manifests/2/" + m.digest] = m.bytes;
            p.schema2_data.push_back(m.digest);
        }
        published.emplace(m.digest, &m);
        std::vector<const BlobRef*> refs{&m.config};
        for (const auto& l : m.layers) refs.push_back(&l);
        for (const BlobRef* b : refs) {
            auto file = image.blob_files.find(b->digest);
            if (file == image.blob_files.end()) {
                if (b->foreign) continue;
                throw Error("Blob " + b->digest + " of manifest " + m.digest + " is missing from " +
                            image.dir + ".");
            }
            p.blobs.emplace(b->digest, std::make_pair(file->second, b->size));
        }
    };
    for (const auto& [tag, image] : tagged) {
        p.tags.push_back(tag);
        if (image.list) {
            const ManifestList& list = *image.list;
            const std::string dir = list.is_oci() ? "manifests/oci-index/" : "manifests/list/";
            auto& data = list.is_oci() ? p.oci_index_data : p.manifest_list_data;
            p.files[dir + tag] = list.bytes;
            p.files[dir + list.digest] = list.bytes;
            data.push_back(tag);
            data.push_back(list.digest);
            lists.insert(list.digest);
            // clients without lists get amd64 only from a Docker list: the
            // fallback path is a schema 2 one
            if (const ListInstance* amd = list.amd64(); amd && !list.is_oci()) {
                p.amd64_tags[tag] = amd->digest;
            }
        } else {
            const ImageManifest& m = image.manifests.at(0);
            p.files[(m.is_oci() ? "manifests/oci/" : "manifests/2/") + tag] = m.bytes;
            (m.is_oci() ? p.oci_manifest_data : p.schema2_data).push_back(tag);
        }
        for (const auto& m : image.manifests) add_manifest(m, image);
    }
    // artifacts about what is published, and artifacts about those (the
    // signature of an SBOM), until nothing more is added
    std::map<std::string, std::pair<const ImageManifest*, const DirImage*>> candidates;
    for (const auto& [tag, image] : tagged) {
        for (const auto& a : image.artifacts)
            candidates.emplace(a.digest, std::make_pair(&a, &image));
    }
    for (bool added = true; added;) {
        added = false;
        for (auto it = candidates.begin(); it != candidates.end();) {
            const std::string& subject = it->second.first->subject;
            if (published.count(it->first)) {
                it = candidates.erase(it);
            } else if (published.count(subject) || lists.count(subject)) {
                add_manifest(*it->second.first, *it->second.second);
                added = true;
                it = candidates.erase(it);
            } else {
                ++it;
            }
        }
    }
    for (const auto& [digest, m] : published) {
        if (m->subject.empty() || !(published.count(m->subject) || lists.count(m->subject))) {
            continue;
        }
        Referrer r;
        r.media_type = m->media_type;
        r.digest = digest;
        r.size = static_cast<std::int64_t>(m->bytes.size());
        r.artifact_type = m->artifact_type;
        r.annotations = m->annotations;
        p.referrers[m->subject].push_back(std::move(r));  // in digest order: `published` is sorted
    }
    // the referrers tag schema (OCI distribution spec 1.1) for clients that
    // do not ask the referrers API: tag sha256-<hex of the subject> names an
    // OCI image index of the same descriptors; a tag given on the command
    // line of that name wins
    const std::set<std::string> given(p.tags.begin(), p.tags.end());
    for (const auto& [subject, descriptors] : p.referrers) {
        const std::string tag = referrers_tag(subject);
        if (given.count(tag)) continue;
        const std::string bytes = referrers_index_json(descriptors);
        const std::string digest = sha256_digest(bytes);
        p.files["manifests/oci-index/" + tag] = bytes;
        p.files["manifests/oci-index/" + digest] = bytes;
        p.tags.push_back(tag);
        p.oci_index_data.push_back(tag);
        p.oci_index_data.push_back(digest);
    }
    add_sorted_unique(p.tags);
    add_sorted_unique(p.schema2_data);
    add_sorted_unique(p.manifest_list_data);
    add_sorted_unique(p.oci_manifest_data);
    add_sorted_unique(p.oci_index_data);
    p.files["tags/list"] = tags_list_json(p.repo_id, p.tags);
    return p;
}

std::string referrers_tag(const std::string& subject) {
    std::string tag = subject;
    const auto colon = tag.find(':');
    if (colon != std::string::npos) tag[colon] = '-';
    return tag;
}

std::string referrers_index_json(const std::vector<Referrer>& descriptors) {
    ReferrersIndexWriter index;
    for (const Referrer& d : descriptors) {
        index.begin_descriptor(d.media_type, d.digest, d.size, d.artifact_type);
        for (const auto& [k, v] : d.annotations) index.annotation(k, v);
        index.end_descriptor();
    }
    return index.take();
}

std::string tags_list_json(const std::string& repo_id, const std::vector<std::string>& tags) {
    json::Writer w;
    w.begin_object().key("name").string(repo_id).key("tags");
    string_array(w, tags);
    w.end_object();
    return w.take();
}

std::string metadata_json(const Plan& p) {
    V2Repo repo;
    repo.id = p.repo_id;
    repo.repository = p.repository;
    repo.url = p.url;
    repo.is_protected = p.is_protected;
    repo.has_schema2_fields = true;
    repo.schema2_data = p.schema2_data;
    repo.manifest_list_data = p.manifest_list_data;
    for (const auto& [tag, digest] : p.amd64_tags) repo.manifest_list_amd64_tags.push_back({tag, digest, 2});
    repo.oci_index_data = p.oci_index_data;
    repo.oci_manifest_data = p.oci_manifest_data;
    repo.has_tags = true;
    repo.tags = p.tags;
    for (const auto& [subject, descriptors] : p.referrers) repo.referrers.push_back({subject, descriptors});
    return metadata_v4_json(repo);
}

std::vector<std::pair<std::string, std::string>> error_documents() {
    auto body = [](const char* code, const char* message) {
        json::Writer w;
        w.begin_object().key("errors").begin_array().begin_object();
        w.key("code").string(code).key("message").string(message);
        w.end_object().end_array().end_object();
        return w.take();
    };
    return {{"blob-unknown.json", body("BLOB_UNKNOWN", "blob unknown to registry")},
            {"manifest-unknown.json", body("MANIFEST_UNKNOWN", "manifest unknown")},
            {"name-unknown.json", body("NAME_UNKNOWN", "repository name not known to registry")}};
}

std::string metadata_file_name(const std::string& repo_id) {
    return slashes_to_dashes(repo_id) + ".json";
}

void copy_verified(const std::string& src, const std::string& dst, const std::string& digest,
                   std::int64_t size) {
    Fd in(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
    if (in.get() < 0) throw Error("Cannot read " + src + ": " + errno_text(errno) + ".");
    Fd out(::open(dst.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (out.get() < 0) throw Error("Cannot create " + dst + ": " + errno_text(errno) + ".");
    bool done = false;
    struct Unlink {
        const std::string& path;
        bool& done;
        ~Unlink() {
            if (!done) ::unlink(path.c_str());
        }
    } unlink_on_error{dst, done};
    if (::fchmod(out.get(), 0644) != 0)
        throw Error("Cannot chmod " + dst + ": " + errno_text(errno) + ".");
    Sha256 sha;
    std::vector<char> buf(1 << 20);
    std::int64_t total = 0;
    for (;;) {
        ssize_t n = ::read(in.get(), buf.data(), buf.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            throw Error("Cannot read " + src + ": " + errno_text(errno) + ".");
        }
        if (n == 0) break;
        total += n;
        sha.update(buf.data(), static_cast<std::size_t>(n));
        if (size < 0 || total <= size)
            write_or_throw(out.get(), buf.data(), static_cast<std::size_t>(n), dst);
    }
    if (size >= 0 && total != size) {
        throw Error("Blob " + digest + " (" + src + ") is " + std::to_string(total) +
                    " bytes, the manifest says " + std::to_string(size) +
                    " (corrupt or truncated).");
    }
    std::string actual = finish_sha256(sha);
    if (actual != digest) {
        throw Error("Blob " + digest + " (" + src + ") hashes to " + actual +
                    " (corrupt or modified).");
    }
    sync_and_close(out, dst);
    done = true;  // NOLINT(clang-analyzer-deadcode.DeadStores): read by unlink_on_error
}

// ---- publishing ----

namespace {

// Is `path` (an existing dir, or symlink to one) something we may replace:
// an earlier publication (has tags/list) or an empty directory?
bool replaceable(const std::string& path) {
    if (!is_directory(path)) return false;
    if (is_regular_file(path + "/tags/list")) return true;
    DIR* d = ::opendir(path.c_str());
    if (!d) return false;
    bool empty = true;
    while (dirent* e = ::readdir(d)) {
        std::string name = e->d_name;
        if (name != "." && name != "..") empty = false;
    }
    ::closedir(d);
    return empty;
}

// The repo-registry-id in an existing metadata file, or "" if unreadable.
std::string existing_repo_id(const std::string& path) {
    try {
        std::string text = read_file(path, 64 << 20);
        rapidjson::Document doc;
        doc.Parse(text.data(), text.size());
        if (doc.HasParseError() || !doc.IsObject()) return {};
        const Value* id = member(doc, "repo-registry-id");
        return id && id->IsString() ? str(*id) : std::string();
    } catch (const Error&) {
        return {};
    }
}

// Holds an exclusive flock(2) on a directory for its lifetime (no lock
// file to leave behind or to race over).
class DirLock {
  public:
    explicit DirLock(const std::string& dir)
        : fd_(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) {
        if (fd_.get() < 0) throw Error("Cannot open " + dir + ": " + errno_text(errno) + ".");
        while (::flock(fd_.get(), LOCK_EX) != 0) {
            if (errno != EINTR) throw Error("Cannot lock " + dir + ": " + errno_text(errno) + ".");
        }
    }

  private:
    Fd fd_;
};

// Names in dir that are PREFIX + base + "." + 6 characters (mkdtemp/mkstemp's).
std::vector<std::string> temp_names(const std::string& dir, const std::string& prefix_and_base) {
    std::vector<std::string> out;
    DIR* d = ::opendir(dir.c_str());
    if (!d) return out;
    while (dirent* e = ::readdir(d)) {
        std::string name = e->d_name;
        if (name.size() == prefix_and_base.size() + 7 &&
            name.compare(0, prefix_and_base.size(), prefix_and_base) == 0 &&
            name[prefix_and_base.size()] == '.') {
            out.push_back(dir + "/" + name);
        }
    }
    ::closedir(d);
    return out;
}

}  // namespace

Result publish(const Options& options) {
    const Options o = normalized(options);
    Result r;
    r.repo_dir = o.web_dir + "/" + o.repository;
    r.metadata_file = o.metadata_dir + "/" + metadata_file_name(o.repo_id);

    // 1. read and check every input before anything is written
    std::vector<std::pair<std::string, DirImage>> images;
    for (const auto& [tag, dir] : o.tags) {
        try {
            images.emplace_back(tag, read_image(dir));
        } catch (const Error& e) {
            throw Error("Tag '" + tag + "': " + e.what());
        }
    }
    const Plan plan = make_plan(o, images);
    const std::string metadata = metadata_json(plan);
    if (!is_directory(o.metadata_dir)) {
        throw Error("Metadata directory " + o.metadata_dir + " does not exist.");
    }
    // one publisher per data dir at a time; it may clear what an earlier,
    // killed run for the same repository left behind
    const std::string meta_name = metadata_file_name(o.repo_id);
    DirLock lock(o.metadata_dir);
    struct stat st {};
    if (::lstat(r.metadata_file.c_str(), &st) == 0) {
        std::string other = existing_repo_id(r.metadata_file);
        if (!other.empty() && other != o.repo_id) {
            throw Error(r.metadata_file + " holds repository '" + other + "', not '" + o.repo_id +
                        "'; refusing to overwrite it.");
        }
    }
    const bool replacing = exists_no_follow(r.repo_dir);
    if (replacing && !replaceable(r.repo_dir)) {
        throw Error("Refusing to replace " + r.repo_dir +
                    ": it is neither an earlier publication (no tags/list) nor empty.");
    }

    const std::string parent = parent_of(r.repo_dir);
    const std::string base = base_of(r.repo_dir);
    for (std::string_view prefix : {kTempPrefix, kOldPrefix}) {
        for (const auto& stale : temp_names(parent, std::string(prefix) + base)) remove_tree(stale);
    }
    // (mkstemp's temporary files: six characters after ".tmp.")
    crane::remove_temp_files(o.metadata_dir, "." + meta_name + ".tmp.",
                             [](std::string_view suffix) { return suffix.size() == 6; });

    // 2. the metadata file's text, in a temp file (not *.json: mod_crane
    // must never load it half-written)
    crane::ReplacementFile mfile(r.metadata_file, o.metadata_dir + "/." + meta_name + ".tmp.XXXXXX");
    write_replacement(mfile, o.metadata_dir, metadata);

    // 3. the new tree, in a temp dir beside its final place
    make_dirs(parent);
    const std::string tmp = make_temp_dir(parent, kTempPrefix, base_of(r.repo_dir));
    TreeGuard guard(tmp);
    for (const char* sub : {"manifests", "manifests/1", "manifests/2", "manifests/list",
                            "manifests/oci", "manifests/oci-index", "blobs", "tags"}) {
        make_dirs(tmp + "/" + sub);
    }
    for (const auto& [rel, bytes] : plan.files) {
        write_new_file(tmp + "/" + rel, bytes);
        if (rel.rfind("manifests/", 0) == 0) ++r.manifests;
    }
    for (const auto& [digest, source] : plan.blobs) {
        copy_verified(source.first, tmp + "/blobs/" + digest, digest, source.second);
        r.blob_bytes += source.second;
    }
    r.blobs = plan.blobs.size();
    r.tags = plan.tags.size();
    for (const auto& [subject, descriptors] : plan.referrers) r.referrers += descriptors.size();
    for (const char* sub : {"manifests/1", "manifests/2", "manifests/list", "manifests/oci",
                            "manifests/oci-index", "blobs", "tags", "manifests"}) {
        sync_dir(tmp + "/" + sub);
    }
    sync_dir(tmp);

    // 4. swap it in
    if (!replacing) {
        if (::rename(tmp.c_str(), r.repo_dir.c_str()) != 0) {
            throw Error("Cannot move " + tmp + " to " + r.repo_dir + ": " + errno_text(errno) +
                        ".");
        }
        guard.release();
    } else {
        std::string old;
        if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, r.repo_dir.c_str(), RENAME_EXCHANGE) ==
            0) {
            old = tmp;  // now holds the earlier publication
        } else if (errno == EINVAL || errno == ENOSYS || errno == ENOTSUP) {
            // no atomic exchange on this file system: two renames
            old = make_temp_dir(parent, kOldPrefix, base_of(r.repo_dir));
            if (::rename(r.repo_dir.c_str(), old.c_str()) != 0) {
                int err = errno;
                ::rmdir(old.c_str());
                throw Error("Cannot move " + r.repo_dir + " aside: " + errno_text(err) + ".");
            }
            if (::rename(tmp.c_str(), r.repo_dir.c_str()) != 0) {
                int err = errno;
                ::rename(old.c_str(), r.repo_dir.c_str());
                throw Error("Cannot move " + tmp + " to " + r.repo_dir + ": " + errno_text(err) +
                            ".");
            }
            guard.release();
        } else {
            throw Error("Cannot swap " + tmp + " with " + r.repo_dir + ": " + errno_text(errno) +
                        ".");
        }
        remove_tree(old);  // stale files of the earlier publication go with it
        r.replaced = true;
    }
    sync_dir(parent);

    // 5. the error documents (shared by every repository in web_dir: each
    // is replaced by rename, never seen half-written)
    const std::string errors = o.web_dir + "/" + std::string(kErrorDir);
    make_dirs(errors);
    for (const auto& [name, body] : error_documents()) {
        const std::string path = errors + "/" + name;
        if (is_regular_file(path) && read_file(path, 4096) == body) continue;
        crane::ReplacementFile efile(path, errors + "/." + name + ".tmp.XXXXXX");
        write_replacement(efile, errors, body);
        if (!efile.commit()) {
            throw Error("Cannot move " + efile.temp_path() + " to " + path + ": " + errno_text(efile.error_number()) +
                        ".");
        }
    }

    // 6. the metadata file, last
    if (!mfile.commit()) {
        throw Error("Published " + r.repo_dir + " but cannot move " + mfile.temp_path() + " to " +
                    r.metadata_file + ": " + errno_text(mfile.error_number()) + ".");
    }
    sync_dir(o.metadata_dir);
    return r;
}

}  // namespace crane::publish
