// Parsing of one metadata file into a V1Repo or V2Repo (see metadata.h).
//
// The file is read as a stream of JSON events (no document is built): the
// records are filled in as the values go by, values of unknown keys are
// skipped without being kept, and nesting is limited while reading, so a
// file costs about what is kept from it. Only v1 image entries, which are
// sent back verbatim, are held as small value trees, one at a time.
#include "crane/metadata.h"

#include <algorithm>
#include <cstdint>
#include <charconv>
#include <cstring>
#include <optional>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "crane/json_writer.h"
#include "crane/reference.h"
#include "util/url.h"
#include "index/pyjson.h"

namespace crane {

namespace {

using pyjson::Node;

// A value as shown in an error message: quoted, escaped, cut short.
std::string shown(std::string_view s) {
    constexpr std::size_t kMax = 80;
    std::string out = json::quoted(s.substr(0, kMax));
    if (s.size() > kMax) out += "...";
    return out;
}

// v1 image ids become one path segment of /v1/images/ID/FILE redirects.
bool is_image_id(std::string_view s) {
    if (s.empty()) return false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-'))) return false;
    }
    return true;
}

// Why `url` cannot prefix redirect targets, or empty when it can: an
// absolute http(s) URL with a host, or an absolute path; nothing that would
// move the appended path into a query or fragment or break the header.
std::string url_problem(std::string_view url) {
    for (char ch : url) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '?') return "has a query";
        if (c == '#') return "has a fragment";
        if (c <= 0x20 || c >= 0x7F || c == '"' || c == '\'' || c == '<' || c == '>' || c == '\\') {
            return "holds a control character, space, non-ASCII byte, quote, '<', '>' or backslash";
        }
    }
    std::size_t host = 0;
    if (starts_with_nocase(url, "http://")) host = 7;
    if (starts_with_nocase(url, "https://")) host = 8;
    if (host != 0) {
        if (host == url.size() || url[host] == '/') return "has no host";
        return {};
    }
    if (!url.empty() && url[0] == '/' && url.substr(0, 2) != "//") return {};
    return "is neither an absolute http(s) URL nor an absolute path";
}

// Why a file is refused (thrown while the record is assembled).
struct Failure {
    std::string reason;
};

enum class Kind : unsigned char { Absent, Null, Bool, Number, String, Array, Object };

struct Scalar {
    Kind kind = Kind::Absent;
    std::string text;
};

// A string kept from the file: where it is in the builder's text (the
// reader's views last only until its next read, so what a record keeps is
// copied there as it goes by, one buffer for the whole file instead of a
// std::string per list entry; the record's strings are made once, when the
// lists are sorted and checked).
struct Span {
    std::size_t at = 0, size = 0;
};

struct StringList {
    Kind kind = Kind::Absent;
    bool bad = false;  // an element that is not a string
    std::vector<Span> items;  // file order
    void reset(Kind k) {
        kind = k;
        bad = false;
        items.clear();
        if (k == Kind::Array) items.reserve(32);  // a usual list fits at once
    }
};

// What the values of one open container feed.
enum class Role : unsigned char {
    Root,
    Skip,          // not kept
    Protected,     // the top-level "protected" container: only its emptiness counts
    List,          // a list of strings
    V1Tags,        // v1 "tags": tag -> image id
    Images,        // v1 "images"
    Tree,          // inside one image entry
    Amd64,         // "manifest_list_amd64_tags"
    Amd64Entry,    // [digest, schema version]
    Referrers,     // subject -> descriptors
    Descriptors,   // the list of one subject
    Descriptor,    // one descriptor object
    Annotations,   // a descriptor's annotations
};

struct Frame {
    Role role;
    StringList* list = nullptr;  // Role::List
    std::size_t count = 0;       // values seen in it
};

// Builds a ParsedRepo (its V1Repo or V2Repo) from the JSON events of one file.
class ParsedRepoBuilder final : public pyjson::Handler {
public:
    // room for a usual file from the start: grown by doubling from
    // nothing, the text and the open containers were a dozen allocations
    // per file
    ParsedRepoBuilder() {
        text_.reserve(kTextReserve);
        frames_.reserve(8);
    }

    bool start_object() override { return value(Kind::Object, {}); }
    bool start_array() override { return value(Kind::Array, {}); }
    bool end_object() override { return close(); }
    bool end_array() override { return close(); }
    bool string(std::string_view s) override { return value(Kind::String, s); }
    bool number(std::string_view literal) override { return value(Kind::Number, literal); }
    bool boolean(bool b) override { return value(Kind::Bool, b ? "true" : ""); }
    bool null() override { return value(Kind::Null, {}); }
    bool key(std::string_view k) override {
        if (frames_.back().role == Role::Tree) {
            tree_.back().keys.emplace_back(k);
        } else {
            key_.assign(k.data(), k.size());
        }
        return true;
    }

    const std::string& stop_reason() const { return stop_reason_; }
    bool marks_protected() const { return marks_protected_; }

    // After a complete read: the record, or why not.
    Result<ParsedRepo> finish(const std::string& source);

private:
    bool fail(std::string reason) {
        stop_reason_ = std::move(reason);
        return false;
    }

    void push(Role role, StringList* list = nullptr) { frames_.push_back(Frame{role, list, 0}); }
    static bool container(Kind k) { return k == Kind::Array || k == Kind::Object; }
    // a container nobody reads still has to be entered
    void skip(Kind k) {
        if (container(k)) push(Role::Skip);
    }
    static bool truthy(Kind k, std::string_view text) {
        switch (k) {
            case Kind::Bool:
            case Kind::String: return !text.empty();
            case Kind::Number: return pyjson::number_truthy(text);
            default: return false;
        }
    }

    bool value(Kind kind, std::string_view text);
    void top_value(Kind kind, std::string_view text);
    void tree_value(Kind kind, std::string_view text);
    void descriptor_value(Kind kind, std::string_view text);
    bool close();
    void finish_image(Node&& image);
    void finish_descriptor();

    void read_common(RepoCommon& c, int version, const std::string& source);
    std::shared_ptr<const V1Repo> read_v1(const std::string& source);
    std::shared_ptr<const V2Repo> read_v2(int version, const std::string& source);
    void read_oci(V2Repo& r);
    std::vector<std::string> refs(const StringList& l, const char* name, bool tags_only);

    Span keep(std::string_view s) {
        const Span kept{text_.size(), s.size()};
        text_.append(s.data(), s.size());
        return kept;
    }
    std::string_view text(Span s) const { return {text_.data() + s.at, s.size}; }

    static constexpr std::size_t kTextReserve = 4096;
    std::string text_;  // the kept strings (Span), one after another
    std::vector<std::string_view> sorted_;  // refs' scratch
    std::vector<Frame> frames_;
    std::string key_;  // the key of the value about to start, in the innermost object
    std::string stop_reason_;
    bool marks_protected_ = false;

    Scalar version_, id_, url_, repository_;
    std::optional<int> known_version_;
    bool protected_ = false;

    // v1
    Kind images_kind_ = Kind::Absent;
    bool images_bad_ = false;
    std::vector<std::string> image_ids_;
    std::string images_json_;
    std::vector<Node> tree_;  // the open values of the image entry being read
    Kind tags_kind_ = Kind::Absent;
    std::vector<std::pair<Span, Span>> v1_tags_;  // file order: tag, image id
    std::optional<std::string> bad_v1_tag_;
    StringList v2_tags_;  // version 4 "tags"

    // v2
    StringList schema2_, manifest_lists_, oci_index_, oci_manifest_;
    Kind amd64_kind_ = Kind::Absent;
    struct Amd64Entry {
        Span tag, digest;
        int schema_version = 0;
    };
    std::vector<Amd64Entry> amd64_;  // file order
    std::optional<std::string> bad_amd64_;
    Amd64Entry entry_{};  // the entry being read
    bool entry_ok_ = false;
    Kind referrers_kind_ = Kind::Absent;
    std::vector<ReferrerList> referrers_;  // file order
    std::string referrers_error_;
    Referrer desc_;
    Scalar desc_media_type_, desc_digest_, desc_size_, desc_artifact_type_;
    Kind desc_annotations_kind_ = Kind::Absent;
};

bool ParsedRepoBuilder::value(Kind kind, std::string_view text) {
    if (frames_.empty()) {
        if (kind != Kind::Object) return fail("the top level is not a JSON object");
        push(Role::Root);
        return true;
    }
    Frame& parent = frames_.back();
    ++parent.count;
    switch (parent.role) {
        case Role::Root: top_value(kind, text); break;
        case Role::Skip: skip(kind); break;
        case Role::Protected:
            if (parent.count == 1) {
                protected_ = true;
                marks_protected_ = true;
            }
            skip(kind);
            break;
        case Role::List:
            if (kind == Kind::String) {
                parent.list->items.push_back(keep(text));
            } else {
                parent.list->bad = true;
                skip(kind);
            }
            break;
        case Role::V1Tags:
            if (kind == Kind::String) {
                v1_tags_.emplace_back(keep(key_), keep(text));
            } else {
                if (!bad_v1_tag_) bad_v1_tag_ = key_;
                skip(kind);
            }
            break;
        case Role::Images:
            if (kind == Kind::Object) {
                tree_.emplace_back().type = Node::Type::Object;
                push(Role::Tree);
            } else {
                images_bad_ = true;
                skip(kind);
            }
            break;
        case Role::Tree: tree_value(kind, text); break;
        case Role::Amd64:
            if (kind == Kind::Array) {
                entry_ = Amd64Entry{keep(key_), {}, 0};
                entry_ok_ = true;
                push(Role::Amd64Entry);
            } else {
                if (!bad_amd64_) bad_amd64_ = key_;
                skip(kind);
            }
            break;
        case Role::Amd64Entry:
            if (parent.count == 1 && kind == Kind::String) {
                entry_.digest = keep(text);
            } else if (parent.count == 2 && kind == Kind::Number && (text == "1" || text == "2")) {
                entry_.schema_version = text == "1" ? 1 : 2;
            } else {
                entry_ok_ = false;
                skip(kind);
            }
            break;
        case Role::Referrers:
            if (kind == Kind::Array) {
                referrers_.push_back(ReferrerList{key_, {}});
                push(Role::Descriptors);
            } else {
                if (referrers_error_.empty()) referrers_error_ = "'referrers' entry " + shown(key_) + " must be a list";
                skip(kind);
            }
            break;
        case Role::Descriptors:
            if (kind == Kind::Object) {
                desc_ = Referrer{};
                desc_media_type_ = desc_digest_ = desc_size_ = desc_artifact_type_ = Scalar{};
                desc_annotations_kind_ = Kind::Absent;
                push(Role::Descriptor);
            } else {
                if (referrers_error_.empty()) referrers_error_ = "every referrer must be an object";
                skip(kind);
            }
            break;
        case Role::Descriptor: descriptor_value(kind, text); break;
        case Role::Annotations:
            if (kind == Kind::String) {
                desc_.annotations.emplace_back(key_, text);
            } else {
                if (referrers_error_.empty()) referrers_error_ = "a referrer's annotations must be strings";
                skip(kind);
            }
            break;
    }
    return true;
}

void ParsedRepoBuilder::top_value(Kind kind, std::string_view text) {
    // a repeated key: its last value wins, as in Python
    auto list = [&](StringList& l) {
        l.reset(kind);
        if (kind == Kind::Array) {
            push(Role::List, &l);
        } else {
            skip(kind);
        }
    };
    const std::string& k = key_;
    if (k == "version" || k == "repo-registry-id" || k == "url" || k == "repository") {
        Scalar& s = k == "version" ? version_ : k == "url" ? url_ : k == "repository" ? repository_ : id_;
        s.kind = kind;
        s.text.assign(text.data(), text.size());
        if (k == "version") {
            known_version_.reset();
            int v = 0;
            if (kind == Kind::Number && pyjson::is_int_literal(text) &&
                std::from_chars(text.data(), text.data() + text.size(), v).ec == std::errc()) {
                known_version_ = v;
            }
        }
        skip(kind);
    } else if (k == "protected") {
        protected_ = truthy(kind, text);
        if (protected_) marks_protected_ = true;
        if (container(kind)) push(Role::Protected);
    } else if (k == "images") {
        images_kind_ = kind;
        images_bad_ = false;
        image_ids_.clear();
        images_json_.clear();
        if (kind == Kind::Array) {
            push(Role::Images);
        } else {
            skip(kind);
        }
    } else if (k == "tags") {
        tags_kind_ = kind;
        v1_tags_.clear();
        bad_v1_tag_.reset();
        v2_tags_.reset(kind);
        // an object is the v1 form, a list the version 4 one
        if (kind == Kind::Object) {
            push(Role::V1Tags);
        } else if (kind == Kind::Array) {
            push(Role::List, &v2_tags_);
        } else {
            skip(kind);
        }
    } else if (k == "schema2_data") {
        list(schema2_);
    } else if (k == "manifest_list_data") {
        list(manifest_lists_);
    } else if (k == "oci_index_data") {
        list(oci_index_);
    } else if (k == "oci_manifest_data") {
        list(oci_manifest_);
    } else if (k == "manifest_list_amd64_tags") {
        amd64_kind_ = kind;
        amd64_.clear();
        bad_amd64_.reset();
        if (kind == Kind::Object) {
            push(Role::Amd64);
        } else {
            skip(kind);
        }
    } else if (k == "referrers") {
        referrers_kind_ = kind;
        referrers_.clear();
        referrers_error_.clear();
        if (kind == Kind::Object) {
            push(Role::Referrers);
        } else {
            skip(kind);
        }
    } else {
        skip(kind);
    }
}

void ParsedRepoBuilder::tree_value(Kind kind, std::string_view text) {
    Node n;
    switch (kind) {
        case Kind::Null: n.type = Node::Type::Null; break;
        case Kind::Bool: n.type = text.empty() ? Node::Type::False : Node::Type::True; break;
        case Kind::String:
            n.type = Node::Type::String;
            n.text.assign(text.data(), text.size());
            break;
        case Kind::Number:
            n.type = Node::Type::Number;
            n.text = pyjson::number_text(text);
            break;
        case Kind::Array:
        case Kind::Object:
            n.type = kind == Kind::Array ? Node::Type::Array : Node::Type::Object;
            tree_.push_back(std::move(n));
            push(Role::Tree);
            return;
        case Kind::Absent: break;
    }
    tree_.back().items.push_back(std::move(n));
}

void ParsedRepoBuilder::descriptor_value(Kind kind, std::string_view text) {
    Scalar* field = nullptr;
    if (key_ == "mediaType") field = &desc_media_type_;
    if (key_ == "digest") field = &desc_digest_;
    if (key_ == "size") field = &desc_size_;
    if (key_ == "artifactType") field = &desc_artifact_type_;
    if (field) {
        field->kind = kind;
        field->text.assign(text.data(), text.size());
        skip(kind);
    } else if (key_ == "annotations") {
        desc_annotations_kind_ = kind;
        desc_.annotations.clear();
        if (kind == Kind::Object) {
            push(Role::Annotations);
        } else {
            skip(kind);
        }
    } else {
        skip(kind);
    }
}

bool ParsedRepoBuilder::close() {
    const Role role = frames_.back().role;
    const std::size_t count = frames_.back().count;
    frames_.pop_back();
    switch (role) {
        case Role::Tree: {
            Node done = std::move(tree_.back());
            tree_.pop_back();
            if (tree_.empty()) {
                finish_image(std::move(done));
            } else {
                tree_.back().items.push_back(std::move(done));
            }
            break;
        }
        case Role::Protected:
            if (count == 0) protected_ = false;
            break;
        case Role::Amd64Entry:
            if (entry_ok_ && count == 2) {
                amd64_.push_back(entry_);
            } else if (!bad_amd64_) {
                bad_amd64_ = std::string(text(entry_.tag));
            }
            break;
        case Role::Descriptor: finish_descriptor(); break;
        default: break;
    }
    return true;
}

void ParsedRepoBuilder::finish_image(Node&& image) {
    const Node* id = nullptr;
    for (std::size_t i = 0; i < image.keys.size(); ++i) {
        if (image.keys[i] == "id") id = &image.items[i];
    }
    if (!id || id->type != Node::Type::String) {
        images_bad_ = true;
        return;
    }
    image_ids_.push_back(id->text);
    images_json_ += image_ids_.size() == 1 ? "" : ", ";
    pyjson::append_python_json(images_json_, image);
}

void ParsedRepoBuilder::finish_descriptor() {
    if (!referrers_error_.empty()) return;
    if (desc_media_type_.kind != Kind::String) {
        referrers_error_ = "every referrer needs a string 'mediaType'";
        return;
    }
    if (desc_digest_.kind != Kind::String) {
        referrers_error_ = "every referrer needs a string 'digest'";
        return;
    }
    const std::string& size = desc_size_.text;
    std::int64_t n = -1;
    if (desc_size_.kind != Kind::Number || !pyjson::is_int_literal(size) ||
        std::from_chars(size.data() + (size == "-0" ? 1 : 0), size.data() + size.size(), n).ec != std::errc() ||
        n < 0) {
        referrers_error_ = "every referrer needs a non-negative integer 'size'";
        return;
    }
    if (desc_artifact_type_.kind != Kind::Absent && desc_artifact_type_.kind != Kind::Null) {
        if (desc_artifact_type_.kind != Kind::String) {
            referrers_error_ = "a referrer's 'artifactType' must be a string";
            return;
        }
        desc_.artifact_type = std::move(desc_artifact_type_.text);
    }
    if (desc_annotations_kind_ != Kind::Absent && desc_annotations_kind_ != Kind::Null &&
        desc_annotations_kind_ != Kind::Object) {
        referrers_error_ = "a referrer's 'annotations' must be an object";
        return;
    }
    desc_.media_type = std::move(desc_media_type_.text);
    desc_.digest = std::move(desc_digest_.text);
    desc_.size = n;
    // a repeated annotation keeps its last value
    auto& ann = desc_.annotations;
    std::stable_sort(ann.begin(), ann.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::size_t out = 0;
    for (std::size_t i = 0; i < ann.size(); ++i) {
        if (i + 1 < ann.size() && ann[i].first == ann[i + 1].first) continue;
        if (out != i) ann[out] = std::move(ann[i]);
        ++out;
    }
    ann.resize(out);
    referrers_.back().descriptors.push_back(std::move(desc_));
}

// Keeps the last of each run of equal keys in a stably sorted vector.
template <typename T, typename Key>
void sort_last_wins(std::vector<T>& v, Key key) {
    std::stable_sort(v.begin(), v.end(), [&](const T& a, const T& b) { return key(a) < key(b); });
    std::size_t out = 0;
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (i + 1 < v.size() && key(v[i]) == key(v[i + 1])) continue;
        if (out != i) v[out] = std::move(v[i]);
        ++out;
    }
    v.resize(out);
}

// "sha256:" and 64 lowercase hex digits, checked sixteen bytes at a time
// with SSE2 (x86-64 always has it), else eight: nearly every digest of a
// data dir is one, and is_digest's byte-by-byte grammar showed in a full
// build. Anything else is left to is_reference.
bool is_plain_sha256(std::string_view s) {
    if (s.size() != 71 || s.compare(0, 7, "sha256:") != 0) return false;
    const char* hex = s.data() + 7;
#ifdef __SSE2__
    // signed compares: bytes from 0x80 up are negative, outside both ranges
    const __m128i zero = _mm_set1_epi8('0' - 1), nine = _mm_set1_epi8('9' + 1);
    const __m128i a = _mm_set1_epi8('a' - 1), f = _mm_set1_epi8('f' + 1);
    for (std::size_t i = 0; i < 64; i += 16) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(hex + i));
        const __m128i digit = _mm_and_si128(_mm_cmpgt_epi8(v, zero), _mm_cmplt_epi8(v, nine));
        const __m128i letter = _mm_and_si128(_mm_cmpgt_epi8(v, a), _mm_cmplt_epi8(v, f));
        if (_mm_movemask_epi8(_mm_or_si128(digit, letter)) != 0xFFFF) return false;
    }
#else
    constexpr std::uint64_t kLow = 0x0101010101010101ULL, kHigh = 0x8080808080808080ULL;
    for (std::size_t i = 0; i < 64; i += 8) {
        std::uint64_t x;
        std::memcpy(&x, hex + i, 8);
        if ((x & kHigh) != 0) return false;
        // per byte (all below 0x80): the high bit of ge(n) is set when the byte is >= n
        auto ge = [x](std::uint64_t n) { return ((x | kHigh) - n * kLow) & kHigh; };
        const std::uint64_t digit = ge('0') & ~ge('9' + 1), letter = ge('a') & ~ge('f' + 1);
        if ((digit | letter) != kHigh) return false;
    }
#endif
    return true;
}

// A list of tags and digests: sorted, unique, every entry usable in a path.
// Sorted as views, the record's strings made once at the end.
std::vector<std::string> ParsedRepoBuilder::refs(const StringList& l, const char* name, bool tags_only) {
    if (l.kind != Kind::Array || l.bad) throw Failure{std::string("'") + name + "' must be a list of strings"};
    std::vector<std::string_view>& v = sorted_;
    v.clear();
    for (const Span item : l.items) v.push_back(text(item));
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    for (const std::string_view r : v) {
        if (tags_only ? !is_tag(r) : !is_plain_sha256(r) && !is_reference(r)) {
            throw Failure{std::string("'") + name + "' entry " + shown(r) +
                          (tags_only ? " is not a tag" : " is neither a tag nor a digest")};
        }
    }
    // the record keeps it for its whole life: no spare capacity
    return std::vector<std::string>(v.begin(), v.end());
}

void ParsedRepoBuilder::read_common(RepoCommon& c, int version, const std::string& source) {
    if (id_.kind == Kind::Absent) throw Failure{"missing field 'repo-registry-id'"};
    if (id_.kind != Kind::String || id_.text.empty()) throw Failure{"'repo-registry-id' must be a non-empty string"};
    if (url_.kind == Kind::Absent) throw Failure{"missing field 'url'"};
    if (url_.kind != Kind::String) throw Failure{"'url' must be a string"};
    if (auto why = url_problem(url_.text); !why.empty()) throw Failure{"'url' " + shown(url_.text) + " " + why};
    c.id = std::move(id_.text);
    c.url = std::move(url_.text);
    c.url_path = url_path_of(c.url);
    c.version = version;
    c.source_path = source;
    c.is_protected = protected_;
    if (repository_.kind != Kind::Absent && repository_.kind != Kind::Null) {
        if (repository_.kind != Kind::String) throw Failure{"'repository' must be a string"};
        c.repository = std::move(repository_.text);
    }
    if (c.repository.empty()) c.repository = c.id;
}

std::shared_ptr<const V1Repo> ParsedRepoBuilder::read_v1(const std::string& source) {
    auto r = std::make_shared<V1Repo>();
    read_common(*r, 1, source);
    if (images_kind_ == Kind::Absent) throw Failure{"missing field 'images'"};
    if (images_kind_ != Kind::Array) throw Failure{"'images' must be a list"};
    if (images_bad_) throw Failure{"every entry of 'images' needs a string 'id'"};
    for (const auto& id : image_ids_) {
        if (!is_image_id(id)) throw Failure{"image id " + shown(id) + " is not a safe path segment"};
    }
    if (tags_kind_ == Kind::Absent) throw Failure{"missing field 'tags'"};
    if (tags_kind_ != Kind::Object) throw Failure{"'tags' must be an object"};
    if (bad_v1_tag_) throw Failure{"tag " + shown(*bad_v1_tag_) + " must name an image id"};
    sort_last_wins(v1_tags_, [this](const auto& p) { return text(p.first); });
    r->image_ids = std::move(image_ids_);
    r->images_json = "[" + images_json_ + "]";
    std::string& tj = r->tags_json;
    tj = "{";
    // records live until the next reload: no spare capacity
    r->tags.reserve(v1_tags_.size());
    for (const auto& [tag, image] : v1_tags_) {
        if (tj.size() > 1) tj += ", ";
        json::append_quoted(tj, text(tag));
        tj += ": ";
        json::append_quoted(tj, text(image));
        r->tags.emplace_back(text(tag), text(image));
    }
    tj += "}";
    r->image_ids.shrink_to_fit();
    return r;
}

void ParsedRepoBuilder::read_oci(V2Repo& r) {
    if (oci_index_.kind != Kind::Absent && oci_index_.kind != Kind::Null) {
        r.oci_index_data = refs(oci_index_, "oci_index_data", false);
    }
    if (oci_manifest_.kind != Kind::Absent && oci_manifest_.kind != Kind::Null) {
        r.oci_manifest_data = refs(oci_manifest_, "oci_manifest_data", false);
    }
    if (v2_tags_.kind != Kind::Absent && v2_tags_.kind != Kind::Null) {
        r.tags = refs(v2_tags_, "tags", true);
        r.has_tags = true;
    }
    if (referrers_kind_ != Kind::Absent && referrers_kind_ != Kind::Null) {
        if (referrers_kind_ != Kind::Object) throw Failure{"'referrers' must be an object"};
        if (!referrers_error_.empty()) throw Failure{referrers_error_};
        sort_last_wins(referrers_, [](const ReferrerList& l) -> const std::string& { return l.subject; });
        for (const auto& list : referrers_) {
            if (!is_digest(list.subject)) throw Failure{"'referrers' subject " + shown(list.subject) + " is not a digest"};
            for (const auto& d : list.descriptors) {
                if (!is_digest(d.digest)) throw Failure{"referrer digest " + shown(d.digest) + " is not a digest"};
            }
        }
        r.referrers = std::move(referrers_);
        r.referrers.shrink_to_fit();
    }
}

std::shared_ptr<const V2Repo> ParsedRepoBuilder::read_v2(int version, const std::string& source) {
    auto r = std::make_shared<V2Repo>();
    read_common(*r, version, source);
    if (version >= 3) {
        r->has_schema2_fields = true;
        if (schema2_.kind == Kind::Absent) throw Failure{"missing field 'schema2_data'"};
        r->schema2_data = refs(schema2_, "schema2_data", false);
    }
    if (version == 4) {
        if (manifest_lists_.kind == Kind::Absent) throw Failure{"missing field 'manifest_list_data'"};
        r->manifest_list_data = refs(manifest_lists_, "manifest_list_data", false);
        if (amd64_kind_ == Kind::Absent) throw Failure{"missing field 'manifest_list_amd64_tags'"};
        if (amd64_kind_ != Kind::Object) throw Failure{"'manifest_list_amd64_tags' must be an object"};
        if (bad_amd64_) throw Failure{"'manifest_list_amd64_tags' entry " + shown(*bad_amd64_) + " must be [digest, 1 or 2]"};
        sort_last_wins(amd64_, [this](const Amd64Entry& t) { return text(t.tag); });
        for (const auto& t : amd64_) {
            const std::string_view tag = text(t.tag), digest = text(t.digest);
            if (!is_reference(tag)) throw Failure{"'manifest_list_amd64_tags' key " + shown(tag) + " is neither a tag nor a digest"};
            if (!is_plain_sha256(digest) && !is_digest(digest)) {
                throw Failure{"'manifest_list_amd64_tags' entry " + shown(tag) + " names no digest"};
            }
        }
        // no spare capacity (the record keeps it)
        r->manifest_list_amd64_tags.reserve(amd64_.size());
        for (const auto& t : amd64_) {
            r->manifest_list_amd64_tags.push_back(
                Amd64Tag{std::string(text(t.tag)), std::string(text(t.digest)), t.schema_version});
        }
        read_oci(*r);
    }
    return r;
}

Result<ParsedRepo> ParsedRepoBuilder::finish(const std::string& source) {
    try {
        if (version_.kind == Kind::Absent) throw Failure{"missing field 'version'"};
        if (version_.kind != Kind::Number || !pyjson::is_int_literal(version_.text)) {
            throw Failure{"'version' must be an integer"};
        }
        if (!known_version_ || *known_version_ < 1 || *known_version_ > 4) {
            throw Failure{"metadata version " + (version_.text == "-0" ? std::string("0") : version_.text) +
                          " not supported (1 to 4)"};
        }
        ParsedRepo repo;
        if (*known_version_ == 1) {
            repo.v1 = read_v1(source);
        } else {
            repo.v2 = read_v2(*known_version_, source);
        }
        return repo;
    } catch (const Failure& f) {
        return Result<ParsedRepo>::failure(f.reason);
    }
}

template <typename Source>
MetadataResult parse_with(const Source& source, const std::string& source_path) {
    try {
        ParsedRepoBuilder b;
        const pyjson::Outcome out = pyjson::read(source, b, kMetadataMaxDepth);
        MetadataError error;
        switch (out.status) {
            case pyjson::Status::Ok: {
                Result<ParsedRepo> built = b.finish(source_path);
                if (built) return std::move(*built);
                error.message = built.error();
                break;
            }
            case pyjson::Status::Stopped: error.message = b.stop_reason(); break;
            case pyjson::Status::ReadError:
                error.message = "read error";
                error.read_failed = true;
                break;
            case pyjson::Status::Invalid:
            case pyjson::Status::TooDeep: error.message = out.error; break;
        }
        error.marks_protected = b.marks_protected();
        return MetadataResult::failure(std::move(error));
    } catch (const std::exception& e) {
        return MetadataResult::failure(MetadataError{std::string("cannot be parsed: ") + e.what()});
    }
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
    return parse_with(text, source_path);
}

MetadataResult parse_metadata_stream(const MetadataReadFn& read, const std::string& source_path) {
    return parse_with(read, source_path);
}

}  // namespace crane
