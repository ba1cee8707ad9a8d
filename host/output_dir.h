// Output directories that appear whole or not at all: written under a temporary name, renamed when complete.
#ifndef AV_OUTPUT_DIR_H
#define AV_OUTPUT_DIR_H

#include "internal.h"

// Checks that FINAL may be (re)placed (absent, empty, or an earlier attnviz output holding meta.json), creates its
// parent directories, and makes an empty temporary sibling *tmp (malloc'ed) with the subdirectories listed in SUBDIRS
// (NULL-terminated).
av_status output_dir_begin(const char *final, const char *const *subdirs, char **tmp);
// Replaces FINAL by TMP.
av_status output_dir_commit(const char *tmp, const char *final);
// Removes TMP and everything in it.
void output_dir_abort(const char *tmp);

#endif
