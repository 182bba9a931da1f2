/* What the C test programs share: a check that prints what failed, with errno and norman_last_error(), and ends the
 * program with status 1. */
#ifndef NORMAN_TEST_CHECK_H
#define NORMAN_TEST_CHECK_H

#include <errno.h>
#include <stdio.h>

#include "norman.h"

#define REQUIRE(condition)                                                                      \
    do {                                                                                        \
        if (!(condition)) {                                                                     \
            printf("FAIL %s (errno %d: %s)\n", #condition, errno, norman_last_error());         \
            return 1;                                                                           \
        }                                                                                       \
        checks++;                                                                               \
    } while (0)

static int checks;

#endif
