/// The Swift SIMD8 loops the CKernels exp, GELU, softmax and LayerNorm replaced, kept as the
/// references their kernels must match bit for bit (GELUKernelTests, SoftmaxKernelTests,
/// LayerNormKernelTests).

/// Up to eight floats from `source` into a vector, the missing lanes 0.
func loadLanes(_ source: UnsafePointer<Float>, _ lanes: Int) -> SIMD8<Float> {
    if lanes == 8 { return UnsafeRawPointer(source).loadUnaligned(as: SIMD8<Float>.self) }
    var vector = SIMD8<Float>()
    for lane in 0..<lanes { vector[lane] = source[lane] }
    return vector
}

/// The first `lanes` lanes of `vector` to `target`.
func storeLanes(_ vector: SIMD8<Float>, _ target: UnsafeMutablePointer<Float>, _ lanes: Int) {
    if lanes == 8 { return UnsafeMutableRawPointer(target).storeBytes(of: vector, as: SIMD8<Float>.self) }
    for lane in 0..<lanes { target[lane] = vector[lane] }
}

/// e^x for x ≤ 0 (softmax's s − max and GELU's −x²/2), eight lanes at a time: Cephes' expf
/// (x = n·ln2 + r with ln2 split in two parts, a degree-5 polynomial for e^r, 2ⁿ assembled in
/// the exponent bits), within ~1 ulp of libm. Exactly 0 below −87.34, where e^x is no longer a
/// normal Float, as libm's result for a padded key's −3.4·10³⁸.
func vectorExp(_ x: SIMD8<Float>) -> SIMD8<Float> {
    let lowest = SIMD8<Float>(repeating: -87.33654)
    // (The stdlib's pointwiseMax is a generic call here; a masked select inlines.)
    let clamped = x.replacing(with: lowest, where: x .< lowest)
    // Adding 1.5·2²³ leaves round(x/ln2) in the low mantissa bits (no SSE4.1 rounding needed).
    let shifter = SIMD8<Float>(repeating: 12_582_912)
    let shifted = clamped * 1.442_695_04 + shifter
    let n = shifted - shifter
    let r = clamped - n * 0.693_359_375 + n * 2.121_944_4e-4
    var p = SIMD8<Float>(repeating: 1.987_569_15e-4)
    p = p * r + 1.398_199_950_7e-3
    p = p * r + 8.333_451_907_3e-3
    p = p * r + 4.166_579_589_4e-2
    p = p * r + 1.666_666_545_9e-1
    p = p * r + 5.000_000_120_1e-1
    p = p * (r * r) + r + 1
    let exponent = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- unsafeBitCast(shifter, to: SIMD8<Int32>.self)
    let twoToTheN = unsafeBitCast((exponent &+ 127) &<< 23, to: SIMD8<Float>.self)
    return (p * twoToTheN).replacing(with: 0, where: x .< lowest)
}

/// Σ_{i<count} term(i) with eight partial sums: a plain Float loop is a serial chain of adds
/// (the compiler may not reorder them), eight independent sums vectorise.
func laneSum(_ count: Int, _ term: (Int) -> Float) -> Float {
    var lanes = SIMD8<Float>()
    var i = 0
    while i + 8 <= count {
        lanes += SIMD8(term(i), term(i + 1), term(i + 2), term(i + 3), term(i + 4), term(i + 5), term(i + 6), term(i + 7))
        i += 8
    }
    var sum = lanes.sum()
    while i < count {
        sum += term(i)
        i += 1
    }
    return sum
}
