/* The libm subset wasm2c's output calls, for IEEE doubles and floats in the default
 * rounding mode (round to nearest even), which is the only one wasm knows. Built with
 * the wasm code's flags (SSE2), not the shim's general-registers-only ones.
 * NaN inputs never arrive here: wasm2c's wrappers (wasm_floor, ...) handle them first. */
#include <math.h>

#define TWO52 4503599627370496.0 /* 2^52: above it every double is an integer */
#define TWO23 8388608.0f         /* 2^23: the same for floats */

double sqrt(double x) { return __builtin_sqrt(x); } /* sqrtsd (-fno-math-errno) */
float sqrtf(float x) { return __builtin_sqrtf(x); } /* sqrtss */
double fabs(double x) { return __builtin_fabs(x); }
float fabsf(float x) { return __builtin_fabsf(x); }

double trunc(double x)
{
    if (!(fabs(x) < TWO52)) return x;         /* already integral, inf or NaN */
    return copysign((double)(long long)x, x); /* keep the sign of -0.5 -> -0 */
}
float truncf(float x)
{
    if (!(fabsf(x) < TWO23)) return x;
    return copysignf((float)(int)x, x);
}

double floor(double x)
{
    double t = trunc(x);
    return t > x ? t - 1.0 : t;
}
float floorf(float x)
{
    float t = truncf(x);
    return t > x ? t - 1.0f : t;
}
double ceil(double x)
{
    double t = trunc(x);
    return t < x ? copysign(t + 1.0, x) : t;
}
float ceilf(float x)
{
    float t = truncf(x);
    return t < x ? copysignf(t + 1.0f, x) : t;
}

/* Adding and removing 2^52 rounds to an integer in the current (nearest-even) mode. */
double nearbyint(double x)
{
    if (!(fabs(x) < TWO52)) return x;
    volatile double y = fabs(x) + TWO52; /* volatile: keep gcc from folding */
    return copysign(y - TWO52, x);
}
float nearbyintf(float x)
{
    if (!(fabsf(x) < TWO23)) return x;
    volatile float y = fabsf(x) + TWO23;
    return copysignf(y - TWO23, x);
}
