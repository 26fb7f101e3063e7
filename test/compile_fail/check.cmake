# SPDX-License-Identifier: BSL-1.0
# Usage: cmake -DCXX=<compiler> -DSOURCE=<file.cpp> [-DINCLUDE_DIRS=a|b]
#              -DEXPECT=FAIL|PASS [-DREGEX=<regex>] -P check.cmake
# CXX and INCLUDE_DIRS are '|'-separated lists (CXX may carry a launcher).
# EXPECT FAIL: compilation must fail and its output must match REGEX.
# EXPECT PASS: compilation must succeed.
foreach(_var CXX SOURCE EXPECT)
    if(NOT DEFINED ${_var} OR "${${_var}}" STREQUAL "")
        message(FATAL_ERROR "check.cmake: ${_var} is not set")
    endif()
endforeach()
if(NOT EXISTS "${SOURCE}")
    message(FATAL_ERROR "check.cmake: ${SOURCE} does not exist")
endif()
if(EXPECT STREQUAL "FAIL" AND "${REGEX}" STREQUAL "")
    message(FATAL_ERROR "check.cmake: EXPECT FAIL needs a REGEX")
endif()

string(REPLACE "|" ";" _cmd "${CXX}")
list(APPEND _cmd -std=c++20 -fsyntax-only)
if(DEFINED INCLUDE_DIRS AND NOT "${INCLUDE_DIRS}" STREQUAL "")
    string(REPLACE "|" ";" _dirs "${INCLUDE_DIRS}")
    foreach(_dir IN LISTS _dirs)
        list(APPEND _cmd "-I${_dir}")
    endforeach()
endif()
list(APPEND _cmd "${SOURCE}")

execute_process(COMMAND ${_cmd} RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _out)
list(JOIN _cmd " " _cmd_str)

if(EXPECT STREQUAL "FAIL")
    if(_rc EQUAL 0)
        message(FATAL_ERROR "compiled, but it must not:\n  ${_cmd_str}")
    endif()
    if(NOT _out MATCHES "${REGEX}")
        message(FATAL_ERROR "failed to compile as expected, but the diagnostics do not "
            "match '${REGEX}':\n  ${_cmd_str}\n${_out}")
    endif()
    message(STATUS "failed to compile as expected; diagnostics match '${REGEX}'")
elseif(EXPECT STREQUAL "PASS")
    if(NOT _rc EQUAL 0)
        message(FATAL_ERROR "failed to compile (exit ${_rc}), but it must:\n  ${_cmd_str}\n${_out}")
    endif()
    message(STATUS "compiled as expected")
else()
    message(FATAL_ERROR "check.cmake: EXPECT must be FAIL or PASS, not '${EXPECT}'")
endif()
