// SPDX-License-Identifier: BSL-1.0
// Everything of dexter-sessions that needs nothing but Boost.JSON.
#pragma once

#include <dexter/sessions/chat_history.hpp>
#include <dexter/sessions/clock.hpp>
#include <dexter/sessions/export.hpp>
#include <dexter/sessions/id.hpp>
#include <dexter/sessions/memory_store.hpp>
#include <dexter/sessions/query.hpp>
#include <dexter/sessions/session_manager.hpp>
#include <dexter/sessions/storage.hpp>
#include <dexter/sessions/types.hpp>
#include <dexter/sessions/utf8.hpp>
#include <dexter/sessions/verify.hpp>
#include <dexter/sessions/version.hpp>
