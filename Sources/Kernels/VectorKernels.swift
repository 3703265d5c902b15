import CKernels

/// The instruction set the CKernels loops (GELU, the narrow adapter products) run at on this CPU,
/// chosen per call from its features. The narrow products contract into FMA where the CPU has
/// it, so "baseline" rounds them differently from the two others: a run records which it used.
public enum VectorKernels {
    /// "x86-64-v4" (AVX-512), "x86-64-v3" (AVX2 and FMA) or "baseline".
    public static var level: String {
        switch lorabench_cpu_level() {
        case 4: return "x86-64-v4"
        case 3: return "x86-64-v3"
        default: return "baseline"
        }
    }
}
