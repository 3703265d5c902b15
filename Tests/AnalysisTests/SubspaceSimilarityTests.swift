@testable import LoRABenchKernels
@testable import LoRABenchVariants
@testable import LoRABenchAnalysis
import LoRABenchTestSupport
import Testing

extension AnalysisTests {
    /// φ(A₁, A₂, i, j) of LoRA §7.2 on factors whose subspaces are known by construction.
    @Suite struct SubspaceSimilarityTests {
        @Test func aFactorAgainstItselfIsOneEverywhere() throws {
            var rng = SplitMix64(seed: 1)
            let a = Matrix.gaussian(8, 64, std: 1, using: &rng)
            let phi = try subspaceSimilarity(a, a)
            #expect(phi.shape == [8, 8])
            // The top-i vectors lie inside the top-j ones for i ≤ j, so every entry is 1, the diagonal included.
            #expect(phi.storage.allSatisfy { abs($0 - 1) < 1e-5 }, "\(phi.storage)")
        }

        @Test func rowPermutedAndRescaledCopySpansTheSameSpace() throws {
            var rng = SplitMix64(seed: 2)
            let a1 = Matrix.gaussian(6, 40, std: 1, using: &rng)
            var a2 = a1.selectingRows([3, 0, 5, 1, 4, 2])
            let scales: [Float] = [2, 0.5, -3, 1.5, 0.25, 4]
            for i in 0..<6 { for j in 0..<40 { a2[i, j] *= scales[i] } }
            let phi = try subspaceSimilarity(a1, a2)
            #expect(abs(phi[5, 5] - 1) < 1e-5)
            #expect(phi.storage.allSatisfy { $0 >= 0 && $0 <= 1 })
        }

        @Test func randomFactorsInHighDimensionBarelyOverlap() throws {
            var rng = SplitMix64(seed: 3)
            let inFeatures = 512
            let phi = try subspaceSimilarity(.gaussian(4, inFeatures, std: 1, using: &rng), .gaussian(8, inFeatures, std: 1, using: &rng))
            #expect(phi.shape == [4, 8])
            #expect(phi.storage.allSatisfy { $0 >= 0 && $0 < 0.05 }, "\(phi.storage)")
            // Two independent uniform subspaces of dimensions i ≤ j give E[φ(i, j)] = j / in.
            let expected = 8 / Float(inFeatures)
            #expect(phi[3, 7] > expected / 3 && phi[3, 7] < expected * 3, "φ(4, 8) = \(phi[3, 7]), expected about \(expected)")
        }

        /// A₂'s first row is 5 · v₁ (A₁'s top right singular vector) and its other rows are smaller and
        /// orthogonal to v₁, so v₁ is exactly A₂'s top right singular vector as well.
        @Test func sharedTopDirectionGivesOneInTheFirstRow() throws {
            var rng = SplitMix64(seed: 4)
            let inFeatures = 32
            let a1 = Matrix.gaussian(4, inFeatures, std: 1, using: &rng)
            let v1 = try svd(a1).vt.rowSlice(0..<1)
            var a2 = Matrix.gaussian(6, inFeatures, std: 1, using: &rng)
            for i in 0..<6 {
                var row = a2.rowSlice(i..<(i + 1))
                if i == 0 {
                    row = v1
                    scale(&row, by: 5)
                } else {
                    axpy(-dot(row, v1), v1, &row)
                    scale(&row, by: 0.5 / frobeniusNorm(row))
                }
                a2.storage.replaceSubrange((i * inFeatures)..<((i + 1) * inFeatures), with: row.storage)
            }
            let phi = try subspaceSimilarity(a1, a2)
            #expect(abs(phi[0, 0] - 1) < 1e-5)
            // v₁ is inside A₂'s top-j subspace for every j.
            #expect((0..<6).allSatisfy { abs(phi[0, $0] - 1) < 1e-5 })
            #expect(phi[1, 1] < 1)
        }

        @Test func factorsItCannotCompareThrow() {
            var rng = SplitMix64(seed: 5)
            #expect(throws: AnalysisError.self) { try subspaceSimilarity(.gaussian(4, 10, std: 1, using: &rng), .gaussian(4, 12, std: 1, using: &rng)) }
            #expect(throws: AnalysisError.empty(operation: "subspaceSimilarity", shape: [0, 10])) {
                try subspaceSimilarity(Matrix.zeros(0, 10), .gaussian(4, 10, std: 1, using: &rng))
            }
            #expect(throws: AnalysisError.rankOutOfRange(operation: "subspaceSimilarity", rank: 12, maximum: 10)) {
                try subspaceSimilarity(.gaussian(4, 10, std: 1, using: &rng), .gaussian(12, 10, std: 1, using: &rng))
            }
            let mismatch = AnalysisError.shapeMismatch(operation: "subspaceSimilarity", first: [4, 10], second: [4, 12],
                                                       requirement: "both A factors must read the same number of input features (columns)")
            #expect(mismatch.description.contains("[4, 10] and [4, 12]"))
        }
    }
}
