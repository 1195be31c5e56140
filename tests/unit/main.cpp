// The Catch2 entry point for the unit tests (one translation unit only).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
