#include "path.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

err_code path_mkdir_p(const char *path, err_t *err) {
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) return err_set(err, ERR_ARG, "%s: bad folder name", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0') continue;
        char c = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return err_set(err, ERR_IO, "%s: cannot create folder %s: %s", path, buf, strerror(errno));
        buf[i] = c;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return err_set(err, ERR_IO, "%s: exists and is not a folder", path);
    return ERR_OK;
}
