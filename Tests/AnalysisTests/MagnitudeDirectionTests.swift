import Foundation
@testable import LoRABenchKernels
@testable import LoRABenchVariants
@testable import LoRABenchAnalysis
import LoRABenchTestSupport
import Testing

extension AnalysisTests {
    /// DoRA's ΔM and ΔD on weights that change only in magnitude or only in direction.
    @Suite struct MagnitudeDirectionTests {
        @Test func scalingChangesOnlyTheMagnitude() throws {
            var rng = SplitMix64(seed: 11)
            let base = Matrix.gaussian(7, 9, std: 1, using: &rng)
            var doubled = base
            scale(&doubled, by: 2)
            let change = try MagnitudeDirectionChange.between(doubled, base: base)
            let meanRowNorm = (0..<7).reduce(0.0) { $0 + Double(frobeniusNorm(base.rowSlice($1..<($1 + 1)))) } / 7
            #expect(abs(change.magnitude - meanRowNorm) < 1e-5)
            #expect(abs(change.direction) < 1e-6)
        }

        /// Each row turned by its own angle in the plane of its first two inputs, norms unchanged.
        @Test func rotationChangesOnlyTheDirection() throws {
            let base = Matrix([[3, 0, 0], [0, 2, 0], [1, 1, 0]])
            let angles = [Double.pi / 3, .pi / 2, .pi / 4]
            var rotated = base
            for (n, angle) in angles.enumerated() {
                let (x, y) = (Double(base[n, 0]), Double(base[n, 1]))
                rotated[n, 0] = Float(x * cos(angle) - y * sin(angle))
                rotated[n, 1] = Float(x * sin(angle) + y * cos(angle))
            }
            let change = try MagnitudeDirectionChange.between(rotated, base: base)
            #expect(abs(change.magnitude) < 1e-6)
            let expected = angles.reduce(0) { $0 + 1 - cos($1) } / 3
            #expect(abs(change.direction - expected) < 1e-6, "\(change.direction) vs \(expected)")
        }

        @Test func zeroRowsHaveNoDirection() throws {
            let base = Matrix([[0, 0], [0, 0], [1, 0]])
            let weight = Matrix([[0, 0], [0, 2], [1, 0]])
            let change = try MagnitudeDirectionChange.between(weight, base: base)
            // Row 0 is zero in both (unchanged), row 1 only in W0 (orthogonal), row 2 unchanged.
            #expect(change == MagnitudeDirectionChange(magnitude: 2.0 / 3, direction: 1.0 / 3))
        }

        @Test func mismatchedShapesThrow() {
            #expect(throws: AnalysisError.self) { try MagnitudeDirectionChange.between(.zeros(3, 4), base: .zeros(4, 3)) }
            #expect(throws: AnalysisError.empty(operation: "MagnitudeDirectionChange.between", shape: [0, 4])) {
                try MagnitudeDirectionChange.between(.zeros(0, 4), base: .zeros(0, 4))
            }
        }
    }
}
