import Testing
@testable import LoRABenchResults

/// `bootstrapTests`: the percentile bootstrap of any statistic of a resample, with its p-value.
@Suite struct BootstrapTestTests {
    /// The mean as a statistic of multiplicities draws the same resamples as `bootstrapIntervalOfMean`.
    @Test func theMeanGivesBootstrapIntervalOfMeansInterval() throws {
        let values = (0..<50).map { Double(($0 * 37) % 11) - 4 }
        let tests = bootstrapTests(examples: values.count, resamples: 700, seed: 5) { multiplicities in
            [zip(values, multiplicities).reduce(0) { $0 + $1.0 * Double($1.1) } / Double(values.count)]
        }
        let interval = try #require(tests[0].interval)
        let reference = bootstrapIntervalOfMean(values, resamples: 700, seed: 5)
        #expect(abs(interval.lowerBound - reference.lowerBound) < 1e-12 && abs(interval.upperBound - reference.upperBound) < 1e-12)
    }

    /// Each resample draws n examples; the statistics of one call see the same resamples.
    @Test func everyResampleDrawsNExamplesAndIsSharedByTheStatistics() throws {
        var sizes: Set<Int> = []
        let tests = bootstrapTests(examples: 9, resamples: 100, seed: 1) { multiplicities in
            sizes.insert(multiplicities.reduce(0, +))
            let drawnFirst = Double(multiplicities[0])
            return [drawnFirst, -drawnFirst]
        }
        #expect(sizes == [9])
        let (first, second) = (try #require(tests[0].interval), try #require(tests[1].interval))
        #expect(first.lowerBound == -second.upperBound && first.upperBound == -second.lowerBound)
    }

    /// p = min(1, 2 · (1 + min(#{θ* ≤ 0}, #{θ* ≥ 0})) / (B + 1)).
    @Test func thePValueCountsTheResamplesOnEitherSideOfZero() throws {
        let tests = bootstrapTests(examples: 5, resamples: 199, seed: 2) { _ in [0, 1, -3] }
        #expect(tests[0] == BootstrapTest(interval: 0...0, pValue: 1), "two runs that agree")
        #expect(tests[1] == BootstrapTest(interval: 1...1, pValue: 2.0 / 200), "every resample above 0: the smallest p of 199 resamples")
        #expect(tests[2].pValue == 2.0 / 200)

        // The first example drawn at least once in about 1 − (4/5)⁵ = 67 % of resamples: about a third at 0.
        let drawn = bootstrapTests(examples: 5, resamples: 1999, seed: 3) { [Double($0[0])] }[0]
        let p = try #require(drawn.pValue)
        #expect(p > 0.5 && p < 0.8, "p = \(p)")
    }

    @Test func aStatisticUndefinedOnSomeResampleHasNoIntervalAndNoP() {
        let tests = bootstrapTests(examples: 4, resamples: 200, seed: 4) { multiplicities in
            [multiplicities[0] == 0 ? .nan : 1, 2]
        }
        #expect(tests[0] == BootstrapTest(interval: nil, pValue: nil))
        #expect(tests[1].interval == 2...2)
    }

    @Test func theSameSeedGivesTheSameTests() {
        func run(_ seed: UInt64) -> [BootstrapTest] {
            bootstrapTests(examples: 30, resamples: 300, seed: seed) { [Double($0[3] - $0[7]), Double($0[0])] }
        }
        #expect(run(9) == run(9))
        #expect(run(9) != run(10))
    }
}
