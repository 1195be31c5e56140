// The fail-closed rule for a metadata file whose new content cannot be used
// (index/failed_file.h): only a parse error of a file that had content and
// does not ask for protection keeps serving the last good content.
#include <catch2/catch.hpp>

#include "index/failed_file.h"

using crane::FailedFileFate;
using crane::failed_file_fate;

TEST_CASE("a failed metadata file keeps its last good content only when that cannot widen access",
          "[store][fail-closed]") {
    // had content, a parse error, nothing about protection: keep serving it
    CHECK(failed_file_fate(true, false, false) == FailedFileFate::KeepLastGood);
    // had content, but the file cannot be read: withdrawn
    CHECK(failed_file_fate(true, true, false) == FailedFileFate::Withdraw);
    // had content, and the broken new content marks it protected: withdrawn
    CHECK(failed_file_fate(true, false, true) == FailedFileFate::Withdraw);
    CHECK(failed_file_fate(true, true, true) == FailedFileFate::Withdraw);
    // never had content: nothing to keep or withdraw, whatever went wrong
    CHECK(failed_file_fate(false, false, false) == FailedFileFate::Skip);
    CHECK(failed_file_fate(false, true, false) == FailedFileFate::Skip);
    CHECK(failed_file_fate(false, false, true) == FailedFileFate::Skip);
    CHECK(failed_file_fate(false, true, true) == FailedFileFate::Skip);
}
