// The maximum of count floats through sixteen lane maxima, which vectorises at every build's width
// (a single running maximum is a serial chain the compiler may not split without fast-math). A
// maximum is exact, so the lane split changes no bit of the result.
#ifndef LORABENCH_LANE_MAX_H
#define LORABENCH_LANE_MAX_H

#include <stddef.h>

enum { maxLanes = 16 };

static inline __attribute__((always_inline)) float laneMaximum(const float *values, size_t count) {
    float lanes[maxLanes];
    for (int l = 0; l < maxLanes; l++) lanes[l] = -__builtin_inff();
    const size_t whole = count - count % maxLanes;
    for (size_t j = 0; j < whole; j += maxLanes)
        for (int l = 0; l < maxLanes; l++) lanes[l] = values[j + l] > lanes[l] ? values[j + l] : lanes[l];
    float maximum = -__builtin_inff();
    for (int l = 0; l < maxLanes; l++) maximum = lanes[l] > maximum ? lanes[l] : maximum;
    for (size_t j = whole; j < count; j++) maximum = values[j] > maximum ? values[j] : maximum;
    return maximum;
}

#endif
