# SPDX-License-Identifier: BSL-1.0
# Usage: cmake -DPROGRAM=<executable> [-DARGS=a|b] -DPASS_REGEX=<regex>
#              [-DFAIL_REGEX=<regex>] -DEXPECT_EXIT=ZERO|NONZERO -P check_output.cmake
# Runs PROGRAM with ARGS (a '|'-separated list); passes when its exit status is as expected, its output (stdout and
# stderr) matches PASS_REGEX and does not match FAIL_REGEX.
foreach(_var PROGRAM PASS_REGEX EXPECT_EXIT)
    if(NOT DEFINED ${_var} OR "${${_var}}" STREQUAL "")
        message(FATAL_ERROR "check_output.cmake: ${_var} is not set")
    endif()
endforeach()
set(_args "")
if(DEFINED ARGS)
    string(REPLACE "|" ";" _args "${ARGS}")
endif()
execute_process(COMMAND "${PROGRAM}" ${_args} RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _out)
if(EXPECT_EXIT STREQUAL "NONZERO" AND _rc EQUAL 0)
    message(FATAL_ERROR "${PROGRAM} exited 0, but it must fail:\n${_out}")
elseif(EXPECT_EXIT STREQUAL "ZERO" AND NOT _rc EQUAL 0)
    message(FATAL_ERROR "${PROGRAM} exited ${_rc}:\n${_out}")
endif()
if(NOT _out MATCHES "${PASS_REGEX}")
    message(FATAL_ERROR "the output of ${PROGRAM} does not match '${PASS_REGEX}':\n${_out}")
endif()
if(DEFINED FAIL_REGEX AND NOT "${FAIL_REGEX}" STREQUAL "" AND _out MATCHES "${FAIL_REGEX}")
    message(FATAL_ERROR "the output of ${PROGRAM} matches '${FAIL_REGEX}':\n${_out}")
endif()
message(STATUS "output as expected")
