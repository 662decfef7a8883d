/* Freestanding stub: SQLite only needs the type names from here (it formats with its own printf). */
#include <stddef.h>
typedef struct FILE FILE;
