// SPDX-License-Identifier: BSL-1.0
// Boost.JSON compiled into each fuzzer (rather than linked from the uninstrumented
// shared library), so that libFuzzer's coverage and the sanitizers see the parser too.
#include <boost/json/src.hpp>
