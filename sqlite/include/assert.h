/* Freestanding stub: SQLite is built with NDEBUG, so assert() never expands to a call. */
#define assert(x) ((void)0)
