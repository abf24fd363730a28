#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "core/matmul.h"

static const cli_command commands[] = {CLI_COMMANDS{NULL, NULL, NULL}};

static void usage(FILE *f) {
    fprintf(f, "usage: llava-mech COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; commands[i].name; i++)
        fprintf(f, "  %-14s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'llava-mech COMMAND --help' describes a command.\n");
}

int main(int argc, char **argv) {
    /* Before any BLAS call: OpenBLAS reads OPENBLAS_CORETYPE when it first runs. */
    mm_init_blas(argc, argv);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; commands[i].name; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "llava-mech: unknown command '%s' (try 'llava-mech --help')\n", argv[1]);
    return 2;
}
