#include "ckernels.h"
#include "cpu_level.h"

int lorabench_cpu_level(void) { return lorabench_cpu_level_now(); }
