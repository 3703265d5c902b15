// NF4 block quantization (bitsandbytes' CPU `quantize_4bit`) in C: as a Swift loop over the
// fifteen midpoints per value it took most of a decoder QLoRA test's time in a debug build. Each
// value takes bitsandbytes' float32 operations, uncontracted, so every build gives its codes
// (NF4Tests hold them against the fixtures).
#include "ckernels.h"
#include <math.h>

#pragma STDC FP_CONTRACT OFF
#pragma clang fp contract(off)

/// The number of the fifteen ascending midpoints strictly below `value`, the index of its nearest
/// code, found in four comparisons (the count a linear scan gives).
static inline __attribute__((always_inline)) unsigned char nf4_index(float value, const float *midpoints) {
    unsigned char index = midpoints[7] < value ? 8 : 0;
    if (midpoints[index + 3] < value) index += 4;
    if (midpoints[index + 1] < value) index += 2;
    if (midpoints[index] < value) index += 1;
    return index;
}

static inline __attribute__((always_inline)) float clamp_unit(float value) {
    const float low = value < -1 ? -1 : value;
    return low > 1 ? 1 : low;
}

int lorabench_nf4_quantize(const float *restrict values, size_t count, size_t blockSize, const float *restrict midpoints,
                           float smallestScale, float *restrict absmax, unsigned char *restrict packed) {
    const unsigned char zeroIndex = nf4_index(0, midpoints);
    for (size_t start = 0, block = 0; start < count; start += blockSize, block++) {
        const size_t length = count - start < blockSize ? count - start : blockSize;
        float largest = 0;
        for (size_t i = start; i < start + length; i++) {
            if (!isfinite(values[i])) return 0;
            const float magnitude = fabsf(values[i]);
            if (largest < magnitude) largest = magnitude;
        }
        const float scale = largest < smallestScale ? smallestScale : largest;
        // A full block multiplies by the inverse and stores the unclamped absmax, as bitsandbytes'
        // blockwise kernel; the short last block divides by its clamped scale, as its tail path.
        const int full = length == blockSize;
        absmax[block] = full ? largest : scale;
        const float inverse = 1 / scale;
        for (size_t pair = 0; pair < length; pair += 2) {
            const float first = full ? values[start + pair] * inverse : values[start + pair] / scale;
            unsigned char low = zeroIndex;
            if (pair + 1 < length) {
                const float second = full ? values[start + pair + 1] * inverse : values[start + pair + 1] / scale;
                low = nf4_index(clamp_unit(second), midpoints);
            }
            packed[(start + pair) / 2] = (unsigned char)(nf4_index(clamp_unit(first), midpoints) << 4 | low);
        }
    }
    return 1;
}
