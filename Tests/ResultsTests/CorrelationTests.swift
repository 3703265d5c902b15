@testable import LoRABenchResults
import Testing

/// Pearson's r (moved here from the Analysis floor with `pearsonCorrelation` itself).
@Suite struct CorrelationTests {
    @Test func perfectLinearRelationsGivePlusOrMinusOne() throws {
        let x: [Double] = [1, 2, 3, 4, 5, 6]
        #expect(abs(try #require(pearsonCorrelation(x, x.map { 3 * $0 + 2 })) - 1) < 1e-12)
        #expect(abs(try #require(pearsonCorrelation(x, x.map { -0.5 * $0 + 7 })) + 1) < 1e-12)
    }

    /// x = 1…5, y = 2, 4, 5, 4, 5: Σdxdy = 6, Σdx² = 10, Σdy² = 6, so r = 6/√60 = √0.6.
    @Test func textbookExample() throws {
        let r = try #require(pearsonCorrelation([1, 2, 3, 4, 5], [2, 4, 5, 4, 5]))
        #expect(abs(r - 0.6.squareRoot()) < 1e-12)
        let shifted = try #require(pearsonCorrelation([1, 2, 3, 4, 5].map { $0 + 1e9 }, [2, 4, 5, 4, 5]))
        #expect(abs(shifted - r) < 1e-9, "a common offset must not change r")
    }

    @Test func undefinedCasesAreNil() {
        #expect(pearsonCorrelation([1, 2], [3, 5]) == nil)
        #expect(pearsonCorrelation([1, 1, 1], [3, 5, 7]) == nil)
        #expect(pearsonCorrelation([1, 2, 3], [4, 4, 4]) == nil)
    }
}
