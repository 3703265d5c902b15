#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import LoRABenchKernels

// The statistics that results are reported with: means over seeds with Student-t intervals,
// the paired tests of `lorabench compare` (bootstrap, McNemar, Holm) and Pearson's r of the
// analyses. Everything is in Double and deterministic (the bootstrap draws from SplitMix64), so
// the same results folder always gives the same numbers. They sit on the results floor because
// the runner (cells.csv), the report and the analyses all use them.

// MARK: - Means over seeds

/// n, mean, sample standard deviation and the 95 % Student-t confidence interval of the mean
/// (Student 1908): mean ± t_{0.975, n−1} · s / √n. With fewer than two values there is no
/// standard deviation and no interval (nil), never a zero-width one.
public struct SampleSummary: Equatable, Sendable {
    public var count: Int
    public var mean: Double
    /// The sample standard deviation (divisor n − 1); nil for n < 2.
    public var standardDeviation: Double?
    /// The 95 % confidence interval of the mean; nil for n < 2.
    public var interval95: ClosedRange<Double>?

    /// nil for no values. A non-finite value is not a measurement to average: the callers leave
    /// diverged runs out (and count them) before this, and anything non-finite left is skipped.
    public init?(_ values: [Double]) {
        let values = values.filter(\.isFinite)
        guard !values.isEmpty else { return nil }
        count = values.count
        mean = values.reduce(0, +) / Double(values.count)
        guard count > 1 else { return }
        let centred = mean
        let squares = values.reduce(0) { $0 + ($1 - centred) * ($1 - centred) }
        let deviation = (squares / Double(count - 1)).squareRoot()
        standardDeviation = deviation
        let halfWidth = StudentT.quantile(0.975, degreesOfFreedom: Double(count - 1)) * deviation / Double(count).squareRoot()
        interval95 = (mean - halfWidth)...(mean + halfWidth)
    }
}

// MARK: - Student's t distribution

/// Student's t distribution with ν degrees of freedom (any real ν > 0).
public enum StudentT {
    /// P(T > t) for t ≥ 0: ½ · I_{ν/(ν+t²)}(ν/2, ½) (Abramowitz & Stegun 26.7.1 with 26.5.27),
    /// computed as a tail so that quantiles near 1 keep their digits.
    public static func upperTail(_ t: Double, degreesOfFreedom nu: Double) -> Double {
        precondition(nu > 0 && t >= 0, "upperTail needs ν > 0 and t ≥ 0, got ν = \(nu), t = \(t)")
        if t.isInfinite { return 0 }
        return 0.5 * regularizedIncompleteBeta(a: nu / 2, b: 0.5, x: nu / (nu + t * t))
    }

    /// P(T ≤ t).
    public static func cdf(_ t: Double, degreesOfFreedom nu: Double) -> Double {
        t >= 0 ? 1 - upperTail(t, degreesOfFreedom: nu) : upperTail(-t, degreesOfFreedom: nu)
    }

    /// The p-quantile, the t with P(T ≤ t) = p, for p in (0, 1): the upper tail 1 − p is
    /// bracketed by doubling and then bisected until the bracket stops shrinking in Double
    /// (the tail is monotone in t, so bisection cannot miss; about 60 halvings).
    public static func quantile(_ p: Double, degreesOfFreedom nu: Double) -> Double {
        precondition(p > 0 && p < 1 && nu > 0, "quantile needs 0 < p < 1 and ν > 0, got p = \(p), ν = \(nu)")
        if p < 0.5 { return -quantile(1 - p, degreesOfFreedom: nu) }
        if p == 0.5 { return 0 }
        let tail = 1 - p
        var low = 0.0, high = 1.0
        while upperTail(high, degreesOfFreedom: nu) > tail {
            low = high
            high *= 2
            if high.isInfinite { return .infinity }
        }
        while true {
            let middle = low + (high - low) / 2
            guard middle > low, middle < high else { return middle }
            if upperTail(middle, degreesOfFreedom: nu) > tail { low = middle } else { high = middle }
        }
    }
}

/// The regularized incomplete beta function I_x(a, b), by the continued fraction of Numerical
/// Recipes (Press et al., 3rd ed., §6.4) evaluated with the modified Lentz method, on whichever
/// of I_x(a, b) = 1 − I_{1−x}(b, a) converges quickly.
public func regularizedIncompleteBeta(a: Double, b: Double, x: Double) -> Double {
    precondition(a > 0 && b > 0, "regularizedIncompleteBeta needs a, b > 0, got a = \(a), b = \(b)")
    if x <= 0 { return 0 }
    if x >= 1 { return 1 }
    let logFront = logGamma(a + b) - logGamma(a) - logGamma(b) + a * log(x) + b * log1p(-x)
    if x < (a + 1) / (a + b + 2) {
        return exp(logFront) * betaContinuedFraction(a: a, b: b, x: x) / a
    }
    return 1 - exp(logFront) * betaContinuedFraction(a: b, b: a, x: 1 - x) / b
}

/// ln Γ(x) for x > 0, through the reentrant `lgamma_r` (plain `lgamma` writes a global sign).
private func logGamma(_ x: Double) -> Double {
    var sign: Int32 = 0
    return lgamma_r(x, &sign)
}

private func betaContinuedFraction(a: Double, b: Double, x: Double) -> Double {
    let tiny = 1e-300, epsilon = 1e-16
    let (sum, plusOne, minusOne) = (a + b, a + 1, a - 1)
    var c = 1.0
    var d = 1 - sum * x / plusOne
    if abs(d) < tiny { d = tiny }
    d = 1 / d
    var fraction = d
    for m in 1...10_000 {
        let m = Double(m), twoM = 2 * Double(m)
        var term = m * (b - m) * x / ((minusOne + twoM) * (a + twoM))
        d = 1 + term * d
        if abs(d) < tiny { d = tiny }
        c = 1 + term / c
        if abs(c) < tiny { c = tiny }
        d = 1 / d
        fraction *= d * c
        term = -(a + m) * (sum + m) * x / ((a + twoM) * (plusOne + twoM))
        d = 1 + term * d
        if abs(d) < tiny { d = tiny }
        c = 1 + term / c
        if abs(c) < tiny { c = tiny }
        d = 1 / d
        let step = d * c
        fraction *= step
        if abs(step - 1) < epsilon { break }
    }
    return fraction
}

// MARK: - Paired tests

/// McNemar's test (McNemar 1947) of two classifiers on the same examples: only the discordant
/// examples count, b where the baseline alone is right and c where the compared one alone is.
/// Under the null hypothesis each discordant example goes either way with probability ½.
///
/// With fewer than `exactBelow` discordant examples the p-value is the exact two-sided binomial
/// one, min(1, 2 · P(X ≤ min(b, c))) for X ~ Binomial(b + c, ½); otherwise the χ² statistic with
/// Edwards' (1948) continuity correction, (|b − c| − 1)² / (b + c), on one degree of freedom.
public struct McNemarTest: Equatable, Sendable {
    public enum Method: String, Sendable {
        case exactBinomial = "exact_binomial"
        case chiSquaredContinuityCorrected = "chi_squared_cc"
    }

    /// Below this many discordant examples the exact test is used (the χ² approximation is
    /// poor for small counts; 25 is the usual threshold, e.g. Rosner's).
    public static let exactBelow = 25

    public var baselineOnlyCorrect: Int
    public var comparedOnlyCorrect: Int
    public var method: Method
    /// The χ² statistic; nil for the exact test.
    public var statistic: Double?
    public var pValue: Double

    public init(baselineOnlyCorrect b: Int, comparedOnlyCorrect c: Int) {
        precondition(b >= 0 && c >= 0, "discordant counts are counts, got \(b) and \(c)")
        baselineOnlyCorrect = b
        comparedOnlyCorrect = c
        let discordant = b + c
        if discordant < Self.exactBelow {
            method = .exactBinomial
            statistic = nil
            pValue = min(1, 2 * binomialLowerTail(min(b, c), trials: discordant, probability: 0.5))
        } else {
            method = .chiSquaredContinuityCorrected
            let excess = max(0, Double(abs(b - c)) - 1)
            let chiSquared = excess * excess / Double(discordant)
            statistic = chiSquared
            // P(χ²₁ > s) = P(|Z| > √s) = erfc(√(s/2)).
            pValue = erfc((chiSquared / 2).squareRoot())
        }
    }
}

/// P(X ≤ k) for X ~ Binomial(n, p): I_{1−p}(n − k, k + 1) (Abramowitz & Stegun 26.5.24).
public func binomialLowerTail(_ k: Int, trials n: Int, probability p: Double) -> Double {
    precondition(n >= 0 && p >= 0 && p <= 1, "binomialLowerTail needs n ≥ 0 and p in [0, 1]")
    if k < 0 { return 0 }
    if k >= n { return 1 }
    return regularizedIncompleteBeta(a: Double(n - k), b: Double(k + 1), x: 1 - p)
}

/// Holm's (1979) step-down adjustment: with the m p-values sorted ascending, the i-th (from 1)
/// becomes max over j ≤ i of min(1, (m − j + 1) · p_(j)). Rejecting where the adjusted value is
/// below α controls the family-wise error rate at α. Returned in the input's order.
public func holmAdjusted(_ pValues: [Double]) -> [Double] {
    let order = pValues.indices.sorted { (pValues[$0], $0) < (pValues[$1], $1) }
    var adjusted = [Double](repeating: 1, count: pValues.count)
    var running = 0.0
    for (rank, index) in order.enumerated() {
        running = max(running, min(1, Double(pValues.count - rank) * pValues[index]))
        adjusted[index] = running
    }
    return adjusted
}

// MARK: - Bootstrap

/// The percentile bootstrap interval of a mean (Efron & Tibshirani 1993, ch. 13): `resamples`
/// times, draw n of the values with replacement and take their mean; the interval runs between
/// the (1 − level)/2 and (1 + level)/2 quantiles of those means. The draws come from
/// SplitMix64(seed), so the same values, count and seed give the same interval.
public func bootstrapIntervalOfMean(_ values: [Double], resamples: Int, seed: UInt64, level: Double = 0.95) -> ClosedRange<Double> {
    precondition(!values.isEmpty && resamples >= 2 && level > 0 && level < 1, "bootstrap needs values, ≥ 2 resamples and a level in (0, 1)")
    var rng = SplitMix64(seed: seed)
    let n = UInt64(values.count)
    var means = [Double](repeating: 0, count: resamples)
    for resample in 0..<resamples {
        var sum = 0.0
        for _ in 0..<values.count {
            // The high word of a 64×64-bit product maps the draw onto 0..<n (Lemire 2019).
            sum += values[Int(rng.next().multipliedFullWidth(by: n).high)]
        }
        means[resample] = sum / Double(values.count)
    }
    means.sort()
    return quantileOfSorted(means, (1 - level) / 2)...quantileOfSorted(means, (1 + level) / 2)
}

/// The q-quantile of ascending `sorted` values by linear interpolation between order
/// statistics (Hyndman & Fan's type 7, the default of R and numpy).
public func quantileOfSorted(_ sorted: [Double], _ q: Double) -> Double {
    precondition(!sorted.isEmpty && q >= 0 && q <= 1, "quantileOfSorted needs values and q in [0, 1]")
    let position = Double(sorted.count - 1) * q
    let lower = Int(position.rounded(.down))
    guard lower + 1 < sorted.count else { return sorted[lower] }
    return sorted[lower] + (position - Double(lower)) * (sorted[lower + 1] - sorted[lower])
}

// MARK: - Correlation

/// Pearson's correlation coefficient r of paired samples: the sign and strength of a linear
/// relation, e.g. between ΔD and ΔM (DoRA §3.2, where FT and DoRA correlate negatively and LoRA
/// positively).
///
/// nil when there are fewer than 3 pairs (two points always lie on a line, so r = ±1 says
/// nothing) or when either sample has no variance. Centred sums in Double, so a large common
/// offset does not cancel the signal.
public func pearsonCorrelation(_ x: [Double], _ y: [Double]) -> Double? {
    precondition(x.count == y.count, "pearsonCorrelation needs paired samples, got \(x.count) and \(y.count) values")
    guard x.count >= 3 else { return nil }
    let meanX = x.reduce(0, +) / Double(x.count), meanY = y.reduce(0, +) / Double(y.count)
    var covariance = 0.0, varianceX = 0.0, varianceY = 0.0
    for (a, b) in zip(x, y) {
        covariance += (a - meanX) * (b - meanY)
        varianceX += (a - meanX) * (a - meanX)
        varianceY += (b - meanY) * (b - meanY)
    }
    guard varianceX > 0, varianceY > 0 else { return nil }
    return min(max(covariance / (varianceX * varianceY).squareRoot(), -1), 1)
}
