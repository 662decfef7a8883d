/* The C library subset SQLite and lwIP call (include/string.h), for wasm32. memcpy, memmove and
 * memset are single bulk-memory instructions (-mbulk-memory); the rest are plain loops. */
#include <string.h>

void *memcpy(void *restrict d, const void *restrict s, size_t n) { __builtin_memcpy(d, s, n); return d; }
void *memmove(void *d, const void *s, size_t n) { __builtin_memmove(d, s, n); return d; }
void *memset(void *d, int c, size_t n) { __builtin_memset(d, c, n); return d; }

int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *p = a, *q = b;
    for (; n; n--, p++, q++)
        if (*p != *q) return *p - *q;
    return 0;
}

void *memchr(const void *s, int c, size_t n)
{
    for (const unsigned char *p = s; n; n--, p++)
        if (*p == (unsigned char)c) return (void *)p;
    return 0;
}

size_t strlen(const char *s) { const char *p = s; while (*p) p++; return p - s; }

int strcmp(const char *a, const char *b)
{
    while (*a && *a == *b) a++, b++;
    return (unsigned char)*a - (unsigned char)*b;
}

int strncmp(const char *a, const char *b, size_t n)
{
    for (; n; n--, a++, b++)
        if (*a != *b || !*a) return (unsigned char)*a - (unsigned char)*b;
    return 0;
}

char *strchr(const char *s, int c)
{
    for (;; s++) {
        if (*s == (char)c) return (char *)s;
        if (!*s) return 0;
    }
}

char *strrchr(const char *s, int c)
{
    const char *last = 0;
    for (;; s++) {
        if (*s == (char)c) last = s;
        if (!*s) return (char *)last;
    }
}

static int in_set(char c, const char *set) { for (; *set; set++) if (*set == c) return 1; return 0; }
size_t strspn(const char *s, const char *accept) { size_t n = 0; while (s[n] && in_set(s[n], accept)) n++; return n; }
size_t strcspn(const char *s, const char *reject) { size_t n = 0; while (s[n] && !in_set(s[n], reject)) n++; return n; }
