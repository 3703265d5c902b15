#ifndef LORABENCH_CKERNELS_H
#define LORABENCH_CKERNELS_H

#include <stddef.h>

/// GELU(x) = x·Φ(x) in place over `count` floats, and its derivative Φ(x) + x·φ(x) into
/// `derivative`, bit for bit as the Swift SIMD8 reference in Tests/KernelsTests/GELUKernelTests.swift.
void lorabench_gelu_forward(float *restrict values, float *restrict derivative, size_t count);

#endif
