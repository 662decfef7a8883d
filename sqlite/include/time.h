/* Freestanding stub: time comes from the VFS (xCurrentTimeInt64), never from the C library. */
#include <stddef.h>
typedef long long time_t;
