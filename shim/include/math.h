/* Freestanding stand-in for <math.h>: the functions wasm2c's output calls (math.c). */
#ifndef SHIM_MATH_H
#define SHIM_MATH_H
double sqrt(double);
float sqrtf(float);
double fabs(double);
float fabsf(float);
double floor(double);
float floorf(float);
double ceil(double);
float ceilf(float);
double trunc(double);
float truncf(float);
double nearbyint(double);
float nearbyintf(float);
#define isnan(x)   __builtin_isnan(x)
#define signbit(x) __builtin_signbit(x)
#define copysign   __builtin_copysign
#define copysignf  __builtin_copysignf
#define INFINITY   __builtin_inff()
#define NAN        __builtin_nanf("")
#endif
