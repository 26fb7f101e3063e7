// SPDX-License-Identifier: BSL-1.0
// --verify and --repair: what is damaged in the store, and repairing it.
#pragma once

#include "interrupts.hpp"
#include "options.hpp"

namespace dexter::cli {

/// --verify [ID]: checks every session (or session ID) of the store, changing nothing,
/// and prints one line for each session with a problem (and each problem of the store
/// itself), then a total; with --json one JSON object (docs/CLI.md). Returns 0 when
/// everything is clean, 1 when anything is wrong. Throws what the store throws.
int verify_store(const options& o);

/// --repair [ID]: lists what is damaged (as --verify), asks (confirm(): a refusal changes
/// nothing), repairs, and prints what each repair did. Returns 0 when every repair
/// succeeded (or nothing needed one), 1 when one failed. Throws what the store throws,
/// and std::runtime_error without a terminal and without -y.
int repair_store(const options& o, interrupt_pipe& interrupts);

} // namespace dexter::cli
