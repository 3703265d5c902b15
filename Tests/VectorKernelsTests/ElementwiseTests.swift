@testable import LoRABenchKernels
import Testing

/// The elementwise passes split over the BLAS threads give, bit for bit, what one thread gives
/// (and what a plain loop gives): a split by rows or by columns must never move a number.
@Suite(.serialized) struct ElementwiseTests {
    static func onThreads<Result>(_ threads: Int, _ body: () -> Result) -> Result {
        BLASThreads.with(threads, body)
    }

    static func bits(_ m: Matrix) -> [UInt32] { m.storage.map(\.bitPattern) }

    @Test(arguments: [(2_048, 384), (513, 1_536), (7, 3), (1, 100_000), (100_000, 1)])
    func everyPassGivesOneThreadsBits(rows: Int, cols: Int) {
        var rng = SplitMix64(seed: UInt64(rows * cols))
        let a = Matrix.gaussian(rows, cols, std: 1, using: &rng), b = Matrix.gaussian(rows, cols, std: 1, using: &rng)
        let row = Matrix.gaussian(1, cols, std: 1, using: &rng)
        let factors = (0..<cols).map { _ in rng.nextGaussian() }
        let results = [1, 2, 4].map { threads in
            Self.onThreads(threads) { () -> [[UInt32]] in
                var sums = Matrix.zeros(1, cols), dots = Matrix.zeros(1, cols), offsetDots = Matrix.zeros(1, cols)
                var scaled = a, biased = a
                addColumnSums(of: a, to: &sums)
                addColumnDots(a, b, to: &dots)
                addColumnDots(a, b, minus: row, to: &offsetDots)
                scaleColumns(&scaled, by: factors)
                addRowVector(row, to: &biased)
                return [sums, dots, offsetDots, scaled, biased, hadamard(a, b), scaledColumnsPlusRow(a, factors, row),
                        Matrix(repeatingRow: row, count: rows)].map(Self.bits)
            }
        }
        #expect(results[1] == results[0])
        #expect(results[2] == results[0])
        // The column sums as a plain loop adds them: row by row.
        var expected = [Float](repeating: 0, count: cols)
        for r in 0..<rows { for c in 0..<cols { expected[c] += a.storage[r * cols + c] } }
        #expect(results[0][0] == expected.map(\.bitPattern))
        // DoRA's dots with its bias taken off: each difference and product rounded, added row by row.
        var expectedDots = [Float](repeating: 0, count: cols)
        for r in 0..<rows { for c in 0..<cols { expectedDots[c] += a.storage[r * cols + c] * (b.storage[r * cols + c] - row.storage[c]) } }
        #expect(results[0][2] == expectedDots.map(\.bitPattern))
    }

    @Test func emptyMatricesPassThrough() {
        Self.onThreads(2) {
            var empty = Matrix.zeros(0, 4), sums = Matrix.zeros(1, 4)
            addColumnSums(of: empty, to: &sums)
            addRowVector(Matrix.zeros(1, 4), to: &empty)
            #expect(sums.storage == [0, 0, 0, 0])
            #expect(hadamard(empty, empty).count == 0)
            #expect(Matrix(repeatingRow: Matrix.zeros(1, 4), count: 0).count == 0)
            #expect(scaledColumnsPlusRow(empty, [1, 1, 1, 1], nil).shape == empty.shape)
        }
    }
}
