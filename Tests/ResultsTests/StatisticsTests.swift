import Foundation
import Testing
import LoRABenchKernels
@testable import LoRABenchResults

/// The statistics results are reported with, on cases computed by hand (closed forms and
/// textbook tables), and the bootstrap's determinism.
@Suite struct StatisticsTests {
    static func relative(_ a: Double, _ b: Double) -> Double { abs(a - b) / max(abs(b), 1e-300) }

    /// With 2 degrees of freedom the t quantile has the closed form (2p − 1)/√(2p(1 − p)), and
    /// with 1 it is the Cauchy quantile tan(π(p − ½)).
    @Test func tQuantilesMatchTheirClosedForms() {
        #expect(Self.relative(StudentT.quantile(0.975, degreesOfFreedom: 2), 4.302652729749464) < 1e-12)
        #expect(Self.relative(StudentT.quantile(0.975, degreesOfFreedom: 1), 12.706204736174707) < 1e-12)
        for p in [0.6, 0.9, 0.995] {
            #expect(Self.relative(StudentT.quantile(p, degreesOfFreedom: 2), (2 * p - 1) / (2 * p * (1 - p)).squareRoot()) < 1e-12, "p = \(p)")
            #expect(Self.relative(StudentT.quantile(p, degreesOfFreedom: 1), tan(Double.pi * (p - 0.5))) < 1e-10, "p = \(p)")
        }
        #expect(StudentT.quantile(0.5, degreesOfFreedom: 3) == 0)
        #expect(StudentT.quantile(0.025, degreesOfFreedom: 2) == -StudentT.quantile(0.975, degreesOfFreedom: 2))
    }

    /// Textbook values (t tables, e.g. Abramowitz & Stegun Table 26.10), and the normal limit.
    @Test func tQuantilesMatchTheTables() {
        #expect(Self.relative(StudentT.quantile(0.975, degreesOfFreedom: 10), 2.2281388519649385) < 1e-10)
        #expect(Self.relative(StudentT.quantile(0.975, degreesOfFreedom: 30), 2.0422724563012373) < 1e-10)
        #expect(Self.relative(StudentT.quantile(0.995, degreesOfFreedom: 5), 4.032142983557536) < 1e-10)
        #expect(Self.relative(StudentT.quantile(0.975, degreesOfFreedom: 1e7), 1.959963984540054) < 1e-6)
    }

    /// For any real ν, the quantile is where the density integrates to p: Simpson's rule on the
    /// t density, an integration independent of the incomplete beta function.
    @Test(arguments: [0.5, 2.5, 3.0, 7.0, 19.5])
    func tQuantileIsWhereTheDensityIntegratesToP(_ nu: Double) {
        func density(_ t: Double) -> Double {
            exp(lgamma((nu + 1) / 2) - lgamma(nu / 2)) / (nu * Double.pi).squareRoot() * pow(1 + t * t / nu, -(nu + 1) / 2)
        }
        for p in [0.8, 0.975] {
            let t = StudentT.quantile(p, degreesOfFreedom: nu)
            let steps = 200_000
            let h = t / Double(steps)
            var sum = density(0) + density(t)
            for i in 1..<steps { sum += (i % 2 == 1 ? 4 : 2) * density(Double(i) * h) }
            #expect(abs(0.5 + sum * h / 3 - p) < 1e-9, "ν = \(nu), p = \(p): t = \(t)")
        }
    }

    @Test func incompleteBetaSpecialCases() {
        for x in [0.1, 0.37, 0.9] {
            #expect(abs(regularizedIncompleteBeta(a: 1, b: 1, x: x) - x) < 1e-14)
            // I_x(a, 1) = x^a.
            #expect(abs(regularizedIncompleteBeta(a: 3.5, b: 1, x: x) - pow(x, 3.5)) < 1e-14)
        }
        #expect(abs(regularizedIncompleteBeta(a: 4.2, b: 4.2, x: 0.5) - 0.5) < 1e-14)
        // P(X ≤ 2) for X ~ Binomial(10, ½) = (1 + 10 + 45)/1024.
        #expect(abs(binomialLowerTail(2, trials: 10, probability: 0.5) - 56.0 / 1024) < 1e-15)
    }

    /// 1, 2, 3: mean 2, s = 1, half-width t_{0.975,2} · 1/√3.
    @Test func aMeanOverThreeSeedsHasAStudentTInterval() throws {
        let summary = try #require(SampleSummary([1, 2, 3]))
        #expect(summary.count == 3 && summary.mean == 2)
        #expect(summary.standardDeviation == 1)
        let interval = try #require(summary.interval95)
        let halfWidth = 4.302652729749464 / 3.0.squareRoot()
        #expect(abs(interval.lowerBound - (2 - halfWidth)) < 1e-12 && abs(interval.upperBound - (2 + halfWidth)) < 1e-12)
        // 0.84, 0.85, 0.86 (accuracies): s = 0.01, half-width 0.024841...
        let accuracies = try #require(SampleSummary([0.84, 0.85, 0.86])?.interval95)
        #expect(abs((accuracies.upperBound - accuracies.lowerBound) / 2 - 0.01 * halfWidth) < 1e-12)
    }

    @Test func oneSeedHasNoIntervalAndNoneHasNoSummary() throws {
        let one = try #require(SampleSummary([0.8]))
        #expect(one.mean == 0.8 && one.count == 1 && one.standardDeviation == nil && one.interval95 == nil)
        #expect(SampleSummary([]) == nil)
        #expect(SampleSummary([.nan]) == nil)
    }

    /// b = 2, c = 8: P(X ≤ 2) for X ~ Binomial(10, ½) is 56/1024, so p = 2 · 56/1024 = 0.109375.
    @Test func mcNemarIsExactForFewDiscordantExamples() {
        let test = McNemarTest(baselineOnlyCorrect: 2, comparedOnlyCorrect: 8)
        #expect(test.method == .exactBinomial && test.statistic == nil)
        #expect(abs(test.pValue - 0.109375) < 1e-14)
        #expect(McNemarTest(baselineOnlyCorrect: 8, comparedOnlyCorrect: 2).pValue == test.pValue)
        #expect(McNemarTest(baselineOnlyCorrect: 0, comparedOnlyCorrect: 0).pValue == 1)
        #expect(McNemarTest(baselineOnlyCorrect: 5, comparedOnlyCorrect: 5).pValue == 1)
        // 24 discordant, b = 6: 2 · Σ_{i ≤ 6} C(24, i) / 2²⁴ = 2 · 190051 / 16777216.
        let last = McNemarTest(baselineOnlyCorrect: 6, comparedOnlyCorrect: 18)
        #expect(last.method == .exactBinomial)
        #expect(abs(last.pValue - 2 * 190_051 / 16_777_216) < 1e-14)
    }

    /// b = 10, c = 30: χ² = (|10 − 30| − 1)²/40 = 9.025, p = erfc(√(9.025/2)) = 0.002663119259138554.
    @Test func mcNemarUsesTheContinuityCorrectedChiSquaredForMany() throws {
        let test = McNemarTest(baselineOnlyCorrect: 10, comparedOnlyCorrect: 30)
        #expect(test.method == .chiSquaredContinuityCorrected)
        #expect(abs(try #require(test.statistic) - 9.025) < 1e-12)
        #expect(Self.relative(test.pValue, 0.002663119259138554) < 1e-12)
        // 25 discordant is the first χ² case; equal counts give no evidence at all.
        #expect(McNemarTest(baselineOnlyCorrect: 12, comparedOnlyCorrect: 13).method == .chiSquaredContinuityCorrected)
        #expect(McNemarTest(baselineOnlyCorrect: 20, comparedOnlyCorrect: 20).pValue == 1)
    }

    /// p = 0.01, 0.04, 0.03, 0.005 (m = 4): sorted 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06,
    /// 0.04·1 = 0.04 → 0.06 (monotone). At 5 % only the first two hypotheses are rejected.
    @Test func holmOnAKnownExample() {
        let adjusted = holmAdjusted([0.01, 0.04, 0.03, 0.005])
        let expected = [0.03, 0.06, 0.06, 0.02]
        #expect(zip(adjusted, expected).allSatisfy { abs($0 - $1) < 1e-15 }, "\(adjusted)")
        #expect(adjusted.map { $0 < 0.05 } == [true, false, false, true])
        #expect(holmAdjusted([0.6, 0.9]) == [1, 1])
        #expect(holmAdjusted([]) == [])
    }

    @Test func theBootstrapIsDeterministicForASeed() {
        var rng = SplitMix64(seed: 11)
        let values = (0..<300).map { _ in Double(Int(rng.next() % 3)) - 1 }  // per-example differences in {−1, 0, 1}
        let first = bootstrapIntervalOfMean(values, resamples: 500, seed: 7)
        #expect(bootstrapIntervalOfMean(values, resamples: 500, seed: 7) == first)
        #expect(bootstrapIntervalOfMean(values, resamples: 500, seed: 8) != first)
        let mean = values.reduce(0, +) / Double(values.count)
        #expect(first.contains(mean))
        // The spread of a mean of 300 such values is about s/√300: the interval is about ±1.96 of it.
        let s = (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 299).squareRoot()
        #expect(abs((first.upperBound - first.lowerBound) / (2 * 1.96 * s / 300.0.squareRoot()) - 1) < 0.15)
        #expect(bootstrapIntervalOfMean([0.25, 0.25, 0.25], resamples: 100, seed: 0) == 0.25...0.25)
    }

    /// Hyndman & Fan's type 7: position (n − 1)·q between order statistics.
    @Test func quantilesInterpolateBetweenOrderStatistics() {
        #expect(quantileOfSorted([1, 2, 3, 4], 0.5) == 2.5)
        #expect(quantileOfSorted([1, 2, 3, 4], 0) == 1 && quantileOfSorted([1, 2, 3, 4], 1) == 4)
        #expect(abs(quantileOfSorted([10, 20, 30, 40, 50], 0.975) - 49) < 1e-12)
    }
}
