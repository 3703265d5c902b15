// Runtime dispatch on the CPU's feature level, shared by the kernels of this target.
//
// Each kernel is one `static inline` body, compiled three times by wrappers carrying
// `target("arch=x86-64-v4")` (AVX-512), `target("arch=x86-64-v3")` (AVX2 + FMA) or nothing (the
// baseline x86-64 the build assumes), and picked per call from `lorabench_cpu_level()`.
// Not `target_clones("arch=skylake-avx512", …)`: that dispatches on the CPU's model number, so a
// CPU newer than the named one (a Sapphire Rapids) ran the baseline clone.
#ifndef LORABENCH_CPU_LEVEL_H
#define LORABENCH_CPU_LEVEL_H

#if defined(__x86_64__)
#define LORABENCH_HAS_LEVELS 1
#define LORABENCH_V4 __attribute__((target("arch=x86-64-v4"), min_vector_width(512)))
#define LORABENCH_V3 __attribute__((target("arch=x86-64-v3")))
#else
#define LORABENCH_HAS_LEVELS 0
#endif

// 4: x86-64-v4 (AVX-512 F/BW/CD/DQ/VL), 3: x86-64-v3 (AVX2, FMA, BMI2), 1: anything else.
static inline int lorabench_cpu_level_now(void) {
#if LORABENCH_HAS_LEVELS
    __builtin_cpu_init();
    if (__builtin_cpu_supports("x86-64-v4")) return 4;
    if (__builtin_cpu_supports("x86-64-v3")) return 3;
#endif
    return 1;
}

// Defines `name` dispatching to the three builds of the always-inlined `body`; `params` is the
// parenthesised parameter list and `args` the argument list passed on.
#if LORABENCH_HAS_LEVELS
#define LORABENCH_DISPATCH(name, body, params, args)                   \
    LORABENCH_V4 static void name##_v4 params { body args; }           \
    LORABENCH_V3 static void name##_v3 params { body args; }           \
    static void name##_baseline params { body args; }                  \
    void name params {                                                 \
        switch (lorabench_cpu_level_now()) {                           \
        case 4: name##_v4 args; break;                                 \
        case 3: name##_v3 args; break;                                 \
        default: name##_baseline args; break;                          \
        }                                                              \
    }
#else
#define LORABENCH_DISPATCH(name, body, params, args) \
    void name params { body args; }
#endif

#endif
