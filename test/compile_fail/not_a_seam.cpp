// SPDX-License-Identifier: BSL-1.0
// Must NOT compile: HalfASeam replaces posix_ops instead of deriving from it and lacks
// list_directory(), so it is not a file_ops and basic_jsonl_store<HalfASeam> is rejected
// by its constraint (the diagnostic names file_ops). is_a_seam.cpp is the positive
// control: the same seam, derived from posix_ops.
#include <dexter/sessions/jsonl_store.hpp>

namespace ds = dexter::sessions;

#ifdef DEXTER_SESSIONS_POSITIVE_CONTROL
struct HalfASeam : ds::detail::posix_ops {
#else
struct HalfASeam {
#endif
    int openat(int dirfd, const char* path, int flags, mode_t mode = 0) {
        return ::openat(dirfd, path, flags, mode);
    }
};

int main() {
    ds::basic_jsonl_store<HalfASeam> store{"/tmp/never-created"};
    (void)store;
}
