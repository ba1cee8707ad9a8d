#define _XOPEN_SOURCE 700 // nftw
#include "output_dir.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static av_status make_parents(const char *path) {
    char *copy = strdup(path);
    if (!copy) return av_fail(AV_ERROR_OUT_OF_MEMORY, "out of memory");
    for (char *p = copy + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(copy, 0755) != 0 && errno != EEXIST) {
            av_status st = av_fail(AV_ERROR_IO, "%s: cannot create directory: %s", copy, strerror(errno));
            free(copy);
            return st;
        }
        *p = '/';
    }
    free(copy);
    return AV_SUCCESS;
}

// What may be replaced: nothing there, an empty directory, or a directory with an earlier run's meta.json.
static av_status check_replaceable(const char *final) {
    struct stat st;
    if (stat(final, &st) != 0) return AV_SUCCESS;
    if (!S_ISDIR(st.st_mode)) return av_fail(AV_ERROR_IO, "%s: exists and is not a directory", final);
    char *meta = av_path_join(final, "meta.json");
    if (!meta) return AV_ERROR_OUT_OF_MEMORY;
    bool earlier_output = av_file_exists(meta);
    free(meta);
    if (earlier_output) return AV_SUCCESS;
    DIR *d = opendir(final);
    if (!d) return av_fail(AV_ERROR_IO, "%s: cannot read: %s", final, strerror(errno));
    struct dirent *e;
    bool empty = true;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) empty = false;
    closedir(d);
    if (!empty)
        return av_fail(AV_ERROR_IO, "%s: exists, is not empty and is not an attnviz output (no meta.json); "
                                    "choose another --out",
                       final);
    return AV_SUCCESS;
}

static char *temporary_sibling(const char *final) {
    size_t len = strlen(final);
    while (len > 1 && final[len - 1] == '/') len--;
    size_t cut = len;
    while (cut > 0 && final[cut - 1] != '/') cut--;
    char *tmp = av_malloc(len + 32, "temporary directory name");
    if (tmp) snprintf(tmp, len + 32, "%.*s.%.*s.tmp-XXXXXX", (int)cut, final, (int)(len - cut), final + cut);
    return tmp;
}

av_status output_dir_begin(const char *final, const char *const *subdirs, char **tmp_out) {
    AV_TRY(check_replaceable(final));
    AV_TRY(make_parents(final));
    char *tmp = temporary_sibling(final);
    if (!tmp) return AV_ERROR_OUT_OF_MEMORY;
    if (!mkdtemp(tmp)) {
        av_status st = av_fail(AV_ERROR_IO, "%s: cannot create a temporary directory beside it: %s", final,
                               strerror(errno));
        free(tmp);
        return st;
    }
    for (int i = 0; subdirs[i]; i++) {
        char *sub = av_path_join(tmp, subdirs[i]);
        bool ok = sub && mkdir(sub, 0755) == 0;
        free(sub);
        if (!ok) {
            av_status st = av_fail(AV_ERROR_IO, "%s/%s: cannot create: %s", tmp, subdirs[i], strerror(errno));
            output_dir_abort(tmp);
            free(tmp);
            return st;
        }
    }
    *tmp_out = tmp;
    return AV_SUCCESS;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void output_dir_abort(const char *tmp) { nftw(tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

av_status output_dir_commit(const char *tmp, const char *final) {
    struct stat st;
    if (stat(final, &st) == 0) {
        // check_replaceable approved it before the run; a second check guards against a race with another writer.
        AV_TRY(check_replaceable(final));
        nftw(final, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    if (rename(tmp, final) != 0) return av_fail(AV_ERROR_IO, "%s: cannot rename %s into place: %s", final, tmp,
                                                strerror(errno));
    return AV_SUCCESS;
}
