/* path.h — small file-system helpers shared by the commands and library writers. */
#ifndef LLAVA_MECH_PATH_H
#define LLAVA_MECH_PATH_H

#include "err.h"

/* Creates the folder and its missing parents (like mkdir -p); ERR_IO naming the path
 * when a component cannot be created or exists as something other than a folder. */
err_code path_mkdir_p(const char *path, err_t *err);

#endif
