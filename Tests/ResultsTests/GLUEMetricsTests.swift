import Testing
@testable import LoRABenchResults

/// The official GLUE metrics on cases computed by hand, and against scikit-learn 1.9.1 and
/// SciPy 1.17.1 (numpy 2.4.6): the constants marked "sklearn" or "scipy" were printed by
/// `matthews_corrcoef`, `f1_score`, `accuracy_score`, `scipy.stats.pearsonr` and `spearmanr` on
/// the same arrays, with `repr` (every digit of the float64).
@Suite struct GLUEMetricsTests {
    static func close(_ a: Double, _ b: Double, _ tolerance: Double = 1e-14) -> Bool { abs(a - b) <= tolerance }

    @Test func namesAndKindsAreTheOnesMetricsCSVUses() {
        #expect(GLUEMetric.allCases.map(\.name) == ["accuracy", "mcc", "f1", "pearson", "spearman"])
        #expect(GLUEMetric.allCases.allSatisfy { $0.higherIsBetter })
        #expect(GLUEMetric.allCases.filter { $0.kind == .regression } == [.pearson, .spearman])
        #expect(GLUEMetric.mcc.evalMetric == EvalMetric(name: "mcc", higherIsBetter: true))
    }

    /// tp = 8, fn = 2, fp = 2, tn = 4: accuracy 12/16, MCC (8·4 − 2·2)/√(10·10·6·6) = 28/60, F1 16/20.
    @Test func binaryClassesByHandAndBySklearn() {
        let labels = [1, 0, 1, 1, 0, 1, 0, 0, 1, 1, 1, 0, 1, 0, 1, 1]
        let predicted = [1, 0, 0, 1, 0, 1, 1, 0, 1, 1, 0, 0, 1, 1, 1, 1]
        #expect(GLUEMetric.accuracy.value(labels: labels, predicted: predicted) == 0.75)
        #expect(Self.close(GLUEMetric.mcc.value(labels: labels, predicted: predicted), 28.0 / 60))
        #expect(Self.close(GLUEMetric.mcc.value(labels: labels, predicted: predicted), 0.4666666666666667))  // sklearn
        #expect(Self.close(GLUEMetric.f1.value(labels: labels, predicted: predicted), 0.8))  // sklearn: 0.8
    }

    /// Labels 0 0 1 1 2 2 2 0, predicted 0 1 1 1 0 1 0 0: class 2 is never predicted, a zero
    /// column of C = [[2,1,0],[0,2,0],[2,1,0]]. t = (3,2,3), p = (4,4,0), c = 4, s = 8:
    /// (4·8 − 20) / √((64 − 32)(64 − 22)) = 12/√1344 = 3/(2√21).
    @Test func mccWithAClassNeverPredicted() {
        let mcc = GLUEMetric.mcc.value(labels: [0, 0, 1, 1, 2, 2, 2, 0], predicted: [0, 1, 1, 1, 0, 1, 0, 0])
        #expect(Self.close(mcc, 3 / (2 * 21.0.squareRoot())))
        #expect(Self.close(mcc, 0.3273268353539886))  // sklearn
    }

    /// Labels 0 0 1 1 1 0 1 0, predicted 0 2 1 1 0 0 2 0: class 2 never occurs as a label, a zero
    /// row of C = [[3,0,1],[1,2,1],[0,0,0]]. t = (4,4,0), p = (4,2,2), c = 5, s = 8:
    /// (40 − 24) / √((64 − 24)(64 − 32)) = 16/√1280 = 1/√5.
    @Test func mccWithAClassNeverALabel() {
        let mcc = GLUEMetric.mcc.value(labels: [0, 0, 1, 1, 1, 0, 1, 0], predicted: [0, 2, 1, 1, 0, 0, 2, 0])
        #expect(Self.close(mcc, 1 / 5.0.squareRoot()))
        #expect(Self.close(mcc, 0.4472135954999579))  // sklearn
    }

    /// One predicted class leaves a column sum equal to s: the denominator is 0, and sklearn returns 0.
    @Test func mccOfAConstantPredictionIsZero() {
        #expect(GLUEMetric.mcc.value(labels: [0, 1, 1, 0], predicted: [1, 1, 1, 1]) == 0)
        #expect(GLUEMetric.mcc.value(labels: [1, 1, 1], predicted: [1, 1, 1]) == 0)
    }

    /// Three classes: sklearn 0.7 and 0.5509473189696001; F1 of class 1 (labels=[1] in sklearn):
    /// tp = 5, fp = 3, fn = 2 (of its 7 labels), 10/15.
    @Test func threeClassesAgreeWithSklearn() {
        let labels = [0, 1, 2, 2, 1, 0, 0, 1, 2, 1, 0, 2, 2, 1, 0, 1, 1, 0, 2, 0]
        let predicted = [0, 1, 1, 2, 1, 0, 2, 1, 2, 0, 0, 2, 1, 1, 0, 1, 2, 0, 2, 1]
        #expect(Self.close(GLUEMetric.accuracy.value(labels: labels, predicted: predicted), 0.7))
        #expect(Self.close(GLUEMetric.mcc.value(labels: labels, predicted: predicted), 0.5509473189696001))
        #expect(Self.close(GLUEMetric.f1.value(labels: labels, predicted: predicted), 2.0 / 3))
    }

    /// No positive label and no positive prediction: 0/0, which sklearn's zero_division turns into
    /// 0. Positives on one side only: tp = 0 over a positive denominator, 0 as well.
    @Test func f1WithNoPositives() {
        #expect(GLUEMetric.f1.value(labels: [0, 0, 0], predicted: [0, 0, 0]) == 0)
        #expect(GLUEMetric.f1.value(labels: [1, 0, 0], predicted: [0, 0, 0]) == 0)
        #expect(GLUEMetric.f1.value(labels: [0, 0, 0], predicted: [1, 0, 0]) == 0)
        #expect(GLUEMetric.f1.value(labels: [1, 1, 0], predicted: [1, 0, 0]) == 2.0 / 3)
    }

    /// x = 1…5, y = 2, 4, 5, 4, 5: Σdxdy = 6, Σdx² = 10, Σdy² = 6, r = 6/√60 = √0.6.
    @Test func pearsonOnASmallCase() {
        let r = GLUEMetric.pearson.value(targets: [1, 2, 3, 4, 5], predicted: [2, 4, 5, 4, 5])
        #expect(Self.close(r, 0.6.squareRoot()))
        #expect(Self.close(r, 0.7745966692414835))  // scipy
    }

    /// x = 1, 2, 2, 3, 4 ranks 1, 2.5, 2.5, 4, 5; y = 2, 1, 3, 3, 5 ranks 2, 1, 3.5, 3.5, 5. Centred
    /// (on 3): Σdxdy = 7.25, Σdx² = Σdy² = 9.5, ρ = 7.25/9.5 = 29/38.
    @Test func spearmanGivesTiesTheirAverageRank() {
        let rho = GLUEMetric.spearman.value(targets: [1, 2, 2, 3, 4], predicted: [2, 1, 3, 3, 5])
        #expect(Self.close(rho, 29.0 / 38))
        #expect(Self.close(rho, 0.7631578947368421))  // scipy
    }

    /// STS-B-like scores with ties on both sides.
    @Test func correlationsAgreeWithScipy() {
        let targets = [5, 4.75, 5, 2.4, 0, 3.8, 2.4, 1.2, 3.8, 4.75, 0.6, 2.4]
        let predicted = [4.1, 4.3, 3.9, 2.2, 0.7, 3.1, 2.9, 1.0, 3.1, 4.8, 1.5, 2.2]
        #expect(Self.close(GLUEMetric.pearson.value(targets: targets, predicted: predicted), 0.9559465393584552))
        #expect(Self.close(GLUEMetric.spearman.value(targets: targets, predicted: predicted), 0.9272124099948852))
    }

    /// SciPy returns nan (with a ConstantInputWarning) when either side is constant; so do these,
    /// even where the mean of the constant rounds (0.1 · 3 / 3 is not 0.1).
    @Test func aConstantSideOrANaNGivesNaN() {
        for metric in [GLUEMetric.pearson, .spearman] {
            #expect(metric.value(targets: [1, 1, 1], predicted: [1, 2, 3]).isNaN)
            #expect(metric.value(targets: [1, 2, 3], predicted: [0.1, 0.1, 0.1]).isNaN)
            #expect(metric.value(targets: [1, 2, 3], predicted: [1, .nan, 3]).isNaN)
            #expect(metric.value(targets: [4], predicted: [2]).isNaN)
        }
    }

    /// scikit-learn and SciPy refuse empty input; here every metric of no examples is nan.
    @Test func noExamplesGiveNaN() {
        for metric in GLUEMetric.allCases {
            let value = metric.kind == .classification ? metric.value(labels: [], predicted: []) : metric.value(targets: [], predicted: [])
            #expect(value.isNaN, "\(metric.name)")
        }
    }

    /// A resample as multiplicities scores as the sample with each example repeated: sklearn's
    /// integer sample_weight (the constants) and SciPy on numpy.repeat of the arrays.
    @Test func multiplicitiesScoreLikeTheRepeatedSample() {
        let labels = [0, 1, 2, 2, 1, 0, 0, 1, 2, 1, 0, 2, 2, 1, 0, 1, 1, 0, 2, 0]
        let predicted = [0, 1, 1, 2, 1, 0, 2, 1, 2, 0, 0, 2, 1, 1, 0, 1, 2, 0, 2, 1]
        let weights = [0, 2, 1, 3, 1, 0, 1, 1, 2, 1, 0, 1, 1, 2, 1, 0, 1, 3, 1, 1]
        let classes = ClassPredictions(labels: labels, predicted: predicted).values([.accuracy, .mcc], multiplicities: weights)
        #expect(Self.close(classes[0], 0.7391304347826086) && Self.close(classes[1], 0.6029213459134363))

        let binaryLabels = [1, 0, 1, 1, 0, 1, 0, 0, 1, 1, 1, 0, 1, 0, 1, 1]
        let binaryPredicted = [1, 0, 0, 1, 0, 1, 1, 0, 1, 1, 0, 0, 1, 1, 1, 1]
        let binary = ClassPredictions(labels: binaryLabels, predicted: binaryPredicted)
            .values([.f1, .mcc], multiplicities: [2, 0, 1, 1, 3, 1, 0, 1, 1, 2, 1, 0, 1, 1, 1, 0])
        #expect(Self.close(binary[0], 0.8571428571428571) && Self.close(binary[1], 0.5918640302493726))

        let targets = [5, 4.75, 5, 2.4, 0, 3.8, 2.4, 1.2, 3.8, 4.75, 0.6, 2.4]
        let scores = [4.1, 4.3, 3.9, 2.2, 0.7, 3.1, 2.9, 1.0, 3.1, 4.8, 1.5, 2.2]
        let repeats = [1, 0, 2, 1, 3, 1, 0, 1, 2, 1, 1, 0]
        let correlations = ScorePredictions(targets: targets, predicted: scores).values([.pearson, .spearman], multiplicities: repeats)
        #expect(Self.close(correlations[0], 0.9732793676174963) && Self.close(correlations[1], 0.956161366223632))
        // The same through the public functions on the repeated arrays.
        let repeated = zip(targets.indices, repeats).flatMap { Array(repeating: $0, count: $1) }
        #expect(Self.close(GLUEMetric.pearson.value(targets: repeated.map { targets[$0] }, predicted: repeated.map { scores[$0] }), correlations[0]))
        #expect(Self.close(GLUEMetric.spearman.value(targets: repeated.map { targets[$0] }, predicted: repeated.map { scores[$0] }), correlations[1]))
    }
}
