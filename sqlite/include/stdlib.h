/* Freestanding stub: no system malloc (SQLITE_ZERO_MALLOC + memsys5), no process. */
#include <stddef.h>
