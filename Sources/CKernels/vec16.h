// 16-float vectors (one AVX-512 register, two AVX2 ones, four SSE ones) for the kernels that
// spell their loops in vectors: loads and stores through memcpy (no alignment assumed) and a
// zero-padded load for a row's last, partial vector.
#ifndef LORABENCH_VEC16_H
#define LORABENCH_VEC16_H

#include <stddef.h>
#include <string.h>

// Every function taking or returning a vec16 is always inlined into the per-level builds, so no
// call passes one by value and the baseline's vector ABI (-Wpsabi) never applies.
#pragma clang diagnostic ignored "-Wpsabi"

typedef float vec16 __attribute__((ext_vector_type(16)));
enum { lanes = 16 };

static inline __attribute__((always_inline)) vec16 load16(const float *p) {
    vec16 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline __attribute__((always_inline)) void store16(float *p, vec16 v) { memcpy(p, &v, sizeof v); }

// The first `count` (< 16) floats of p, zeros after.
static inline __attribute__((always_inline)) vec16 loadTail(const float *p, size_t count) {
    float padded[lanes] = {0};
    memcpy(padded, p, count * sizeof(float));
    return load16(padded);
}

// The first `count` (< 16) lanes of v into p.
static inline __attribute__((always_inline)) void storeTail(float *p, vec16 v, size_t count) {
    float padded[lanes];
    store16(padded, v);
    memcpy(p, padded, count * sizeof(float));
}

static inline __attribute__((always_inline)) float sumLanes(vec16 v) {
    __attribute__((ext_vector_type(8))) float half = v.lo + v.hi;
    __attribute__((ext_vector_type(4))) float quarter = half.lo + half.hi;
    __attribute__((ext_vector_type(2))) float eighth = quarter.lo + quarter.hi;
    return eighth.x + eighth.y;
}

#endif
