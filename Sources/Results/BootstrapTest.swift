import LoRABenchKernels

/// A statistic's percentile bootstrap interval and the p-value of "the statistic is 0" that
/// goes with it; both nil when the statistic was not finite on every resample (a correlation of
/// a resample whose scores are all equal: SciPy's nan), because a percentile of values that
/// include nan has no meaning.
public struct BootstrapTest: Equatable, Sendable {
    public var interval: ClosedRange<Double>?
    public var pValue: Double?
}

/// The percentile bootstrap of statistics of n examples (Efron & Tibshirani 1993, ch. 13):
/// `resamples` times, draw n examples with replacement and evaluate `statistics` on the resample,
/// given as each example's multiplicity (how many times it was drawn). The draws are
/// `bootstrapIntervalOfMean`'s, from SplitMix64(seed), so the same examples, count and seed
/// give the same resamples, and the statistics of one call all see the same ones (which is what
/// pairs a difference of two runs, or of two metrics).
///
/// For each statistic: the interval between the (1 − level)/2 and (1 + level)/2 quantiles of its
/// resampled values, and the two-sided p-value that inverts that interval, the smallest 1 − level
/// at which it would reach 0: min(1, 2 · (1 + min(#{θ* ≤ 0}, #{θ* ≥ 0})) / (B + 1)), with the
/// "+1" of a Monte Carlo p-value (Davison & Hinkley 1997, ch. 4) so that B resamples never claim
/// a p below about 2/B. A statistic that is 0 on every resample (two runs that agree) gets p = 1.
public func bootstrapTests(examples: Int, resamples: Int, seed: UInt64, level: Double = 0.95,
                           statistics: ([Int]) -> [Double]) -> [BootstrapTest] {
    precondition(examples > 0 && resamples >= 2 && level > 0 && level < 1, "bootstrap needs examples, ≥ 2 resamples and a level in (0, 1)")
    var rng = SplitMix64(seed: seed)
    let n = UInt64(examples)
    var samples: [[Double]] = []
    var multiplicities = [Int](repeating: 0, count: examples)
    for _ in 0..<resamples {
        for index in multiplicities.indices { multiplicities[index] = 0 }
        for _ in 0..<examples {
            // The high word of a 64×64-bit product maps the draw onto 0..<n (Lemire 2019).
            multiplicities[Int(rng.next().multipliedFullWidth(by: n).high)] += 1
        }
        let values = statistics(multiplicities)
        if samples.isEmpty { samples = values.map { _ in [] } }
        for (statistic, value) in values.enumerated() { samples[statistic].append(value) }
    }
    return samples.map { values in
        guard values.allSatisfy(\.isFinite) else { return BootstrapTest(interval: nil, pValue: nil) }
        let sorted = values.sorted()
        let atOrBelowZero = sorted.filter { $0 <= 0 }.count, atOrAboveZero = sorted.filter { $0 >= 0 }.count
        let p = min(1, 2 * Double(1 + min(atOrBelowZero, atOrAboveZero)) / Double(resamples + 1))
        return BootstrapTest(interval: quantileOfSorted(sorted, (1 - level) / 2)...quantileOfSorted(sorted, (1 + level) / 2), pValue: p)
    }
}
