/* mem* and str* for the shim and for wasm2c's output (memory.copy, memory.fill and data
 * segments end here). Built with -fno-tree-loop-distribute-patterns so that gcc does not
 * turn these loops back into calls to themselves. */
#include <string.h>

/* Small copies are the common case (strings, struct fields): a byte loop beats the
 * startup cost of `rep movsb`; large ones go to the string instructions. */
#define SMALL 32

void *memcpy(void *dst, const void *src, size_t n)
{
    if (n <= SMALL) {
        unsigned char *d = dst;
        const unsigned char *s = src;
        while (n--) *d++ = *s++;
        return dst;
    }
    void *d = dst;
    asm volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(n) : : "memory");
    return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    if (d <= s || d >= s + n) return memcpy(dst, src, n);
    /* Overlapping with dst above src: copy backwards. */
    while (n--) d[n] = s[n];
    return dst;
}

void *memset(void *dst, int c, size_t n)
{
    void *d = dst;
    asm volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
    return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    for (; n; n--, x++, y++)
        if (*x != *y) return *x - *y;
    return 0;
}

size_t strlen(const char *s)
{
    size_t n = 0;
    while (s[n]) n++;
    return n;
}
