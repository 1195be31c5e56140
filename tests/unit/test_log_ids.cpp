// The log ids: defined once (lib/include/crane/log_ids.h), each unique, and
// each listed in docs/log-ids.md (and nothing listed there that is not defined).
#include <catch2/catch.hpp>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "crane/log.h"

namespace {

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::vector<std::string> all_matches(const std::string& text, const std::regex& re) {
    std::vector<std::string> out;
    for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator(); ++it) {
        out.push_back((*it)[1].str());
    }
    return out;
}

}  // namespace

TEST_CASE("every log id is defined once and documented", "[log]") {
    const std::string root = std::string(CRANE_TEST_DATA) + "/../..";
    const std::string header = slurp(root + "/lib/include/crane/log_ids.h");
    const std::string doc = slurp(root + "/docs/log-ids.md");
    REQUIRE_FALSE(header.empty());
    REQUIRE_FALSE(doc.empty());
    const auto defined = all_matches(header, std::regex(R"re(= "(CRANE\d{4})";)re"));
    const auto listed = all_matches(doc, std::regex(R"re(\n\| (CRANE\d{4}) \|)re"));
    REQUIRE(defined.size() > 20);
    const std::set<std::string> defined_set(defined.begin(), defined.end());
    const std::set<std::string> listed_set(listed.begin(), listed.end());
    CHECK(defined_set.size() == defined.size());  // no id defined twice
    CHECK(listed_set.size() == listed.size());
    CHECK(defined_set == listed_set);
}

TEST_CASE("a library log line starts with its id", "[log]") {
    std::vector<std::string> lines;
    crane::LogSink sink = [&](crane::LogLevel, std::string_view m) { lines.emplace_back(m); };
    crane::log(sink, crane::LogLevel::Info, crane::log_id::kMetadataLoaded, "metadata loaded from /d: 1 files");
    REQUIRE(lines.size() == 1);
    CHECK(lines[0] == "CRANE0106: metadata loaded from /d: 1 files");
}
