// The official metrics of the GLUE tasks (Wang et al. 2019): accuracy; Matthews correlation for
// CoLA; F1 of the positive class with accuracy for MRPC; Pearson and Spearman correlation for
// STS-B. Each is defined as the functions that Hugging Face's GLUE metric (`evaluate`) and the
// transformers GLUE examples call compute it, scikit-learn's and SciPy's, so that a number here
// is the number a paper reports: the definitions below cite the function and its edge cases.
// Everything is in Double.
//
// The metrics are evaluated once at the end of a run and many times by `lorabench compare`'s
// bootstrap, which draws the examples with replacement: `ClassPredictions` and `ScorePredictions`
// take such a resample as each example's multiplicity, the number of times it was drawn, and
// give the metric of the sample with every example repeated that many times (scikit-learn's
// integer `sample_weight`), without building it.

/// An official GLUE metric, by its name in metrics.csv and summary.csv (`final_eval_mcc`).
///
/// A task reports the ones that apply to it: class labels are scored by accuracy, mcc and f1
/// (`kind == .classification`), real-valued predictions by pearson and spearman (`.regression`).
/// With no examples every metric is nan (scikit-learn and SciPy refuse empty input).
public enum GLUEMetric: String, CaseIterable, Sendable {
    /// The fraction of examples whose predicted class is the label (sklearn `accuracy_score`).
    case accuracy
    /// Matthews' correlation coefficient, CoLA's metric (sklearn `matthews_corrcoef`, whose
    /// multiclass form (Gorodkin 2004) reduces to (tp·tn − fp·fn) / √((tp+fp)(tp+fn)(tn+fp)(tn+fn))
    /// for two classes): from the confusion matrix C with row sums t (labels), column sums p
    /// (predictions), trace c and total s, (c·s − t·p) / √((s² − p·p)(s² − t·t)), and 0 where
    /// the denominator is 0 (every label or every prediction one class), as sklearn returns.
    case mcc
    /// F1 of the positive class 1, MRPC's metric beside accuracy (sklearn `f1_score` with its
    /// default pos_label=1): 2·tp / (2·tp + fp + fn); 0 when there is no positive label and no
    /// positive prediction, what sklearn's default zero_division ("warn") returns.
    case f1
    /// Pearson's r of the predicted and the gold scores, STS-B's metric (scipy.stats.pearsonr):
    /// centred sums, clipped to [−1, 1]; nan when either side is constant (SciPy warns and
    /// returns nan) or holds a nan.
    case pearson
    /// Spearman's ρ, STS-B's second metric (scipy.stats.spearmanr): Pearson's r of the ranks,
    /// tied values sharing their average rank (scipy.stats.rankdata's "average"); nan when
    /// either side is constant or holds a nan.
    case spearman

    /// What a metric scores: predicted classes or predicted real numbers.
    public enum Kind: Sendable {
        case classification, regression
    }

    /// The name in metrics.csv and summary.csv.
    public var name: String { rawValue }

    /// Every GLUE metric grows with agreement.
    public var higherIsBetter: Bool { true }

    public var evalMetric: EvalMetric { EvalMetric(name: name, higherIsBetter: higherIsBetter) }

    public var kind: Kind {
        switch self {
        case .accuracy, .mcc, .f1: return .classification
        case .pearson, .spearman: return .regression
        }
    }

    /// The metric of predicted classes against the labels, for accuracy, mcc and f1 (asking
    /// pearson or spearman of labels is a programming error, and traps). Classes are any
    /// integers; f1's positive class is 1.
    public func value(labels: [Int], predicted: [Int]) -> Double {
        ClassPredictions(labels: labels, predicted: predicted).values([self])[0]
    }

    /// The metric of predicted scores against the gold ones, for pearson and spearman (asking
    /// a classification metric of scores traps).
    public func value(targets: [Double], predicted: [Double]) -> Double {
        ScorePredictions(targets: targets, predicted: predicted).values([self])[0]
    }
}

/// A classifier's answers on n examples, ready to be scored on any resample of them: each
/// example's label and prediction as a position among the classes that occur (sklearn's
/// confusion matrix has a row and a column for each of them).
package struct ClassPredictions: Sendable {
    /// The classes that occur as a label or a prediction, ascending.
    private let classes: [Int]
    private let labelPositions: [Int]
    private let predictedPositions: [Int]

    package init(labels: [Int], predicted: [Int]) {
        precondition(labels.count == predicted.count, "a metric needs one prediction per label, got \(labels.count) labels and \(predicted.count) predictions")
        classes = Set(labels).union(predicted).sorted()
        let position = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, $0) })
        labelPositions = labels.map { position[$0]! }
        predictedPositions = predicted.map { position[$0]! }
    }

    /// The metrics with example i counted `multiplicities[i]` times (once each without them),
    /// all from one confusion matrix.
    package func values(_ metrics: [GLUEMetric], multiplicities: [Int]? = nil) -> [Double] {
        let k = classes.count
        // confusion[label · k + predicted], as sklearn's confusion_matrix(y_true, y_pred).
        var confusion = [Double](repeating: 0, count: k * k)
        for (index, (label, predicted)) in zip(labelPositions, predictedPositions).enumerated() {
            confusion[label * k + predicted] += Double(multiplicities?[index] ?? 1)
        }
        let labelSums = (0..<k).map { row in (0..<k).reduce(0) { $0 + confusion[row * k + $1] } }
        let predictedSums = (0..<k).map { column in (0..<k).reduce(0) { $0 + confusion[$1 * k + column] } }
        let total = labelSums.reduce(0, +)
        let correct = (0..<k).reduce(0) { $0 + confusion[$1 * k + $1] }
        return metrics.map { metric in
            guard total > 0 else { return .nan }
            switch metric {
            case .accuracy:
                return correct / total
            case .mcc:
                let covariance = correct * total - zip(labelSums, predictedSums).reduce(0) { $0 + $1.0 * $1.1 }
                let predictedVariance = total * total - predictedSums.reduce(0) { $0 + $1 * $1 }
                let labelVariance = total * total - labelSums.reduce(0) { $0 + $1 * $1 }
                guard predictedVariance * labelVariance != 0 else { return 0 }
                return covariance / (labelVariance * predictedVariance).squareRoot()
            case .f1:
                guard let positive = classes.firstIndex(of: 1) else { return 0 }
                // 2·tp / (2·tp + fp + fn), the denominator written as sklearn's true_sum + pred_sum.
                let denominator = labelSums[positive] + predictedSums[positive]
                return denominator == 0 ? 0 : 2 * confusion[positive * k + positive] / denominator
            case .pearson, .spearman:
                preconditionFailure("\(metric.name) scores real-valued predictions: call value(targets:predicted:)")
            }
        }
    }
}

/// A regression's predicted scores on n examples and the gold ones, ready to be scored on any
/// resample of them. Each side is sorted once: a resample's average ranks then follow in one pass.
package struct ScorePredictions: Sendable {
    private let targets: [Double]
    private let predicted: [Double]
    private let targetOrder: [Int]
    private let predictedOrder: [Int]
    private let holdsNaN: Bool

    package init(targets: [Double], predicted: [Double]) {
        precondition(targets.count == predicted.count, "a metric needs one prediction per target, got \(targets.count) targets and \(predicted.count) predictions")
        self.targets = targets
        self.predicted = predicted
        holdsNaN = targets.contains(where: \.isNaN) || predicted.contains(where: \.isNaN)
        // Sorting values with a nan has no order to find; such a sample scores nan anyway.
        targetOrder = holdsNaN ? [] : targets.indices.sorted { targets[$0] < targets[$1] }
        predictedOrder = holdsNaN ? [] : predicted.indices.sorted { predicted[$0] < predicted[$1] }
    }

    /// The metrics with example i counted `multiplicities[i]` times (once each without them).
    package func values(_ metrics: [GLUEMetric], multiplicities: [Int]? = nil) -> [Double] {
        let weights = multiplicities.map { $0.map(Double.init) } ?? [Double](repeating: 1, count: targets.count)
        return metrics.map { metric in
            guard !holdsNaN else { return .nan }
            switch metric {
            case .pearson:
                return weightedPearson(targets, predicted, weights: weights)
            case .spearman:
                return weightedPearson(averageRanks(targets, ascending: targetOrder, weights: weights),
                                       averageRanks(predicted, ascending: predictedOrder, weights: weights), weights: weights)
            case .accuracy, .mcc, .f1:
                preconditionFailure("\(metric.name) scores class labels: call value(labels:predicted:)")
            }
        }
    }
}

/// Pearson's r of the sample in which pair i occurs `weights[i]` times: nan for a constant side
/// (tested on the values themselves, as SciPy does, because a mean that rounds leaves residues
/// of 1e-17 that would otherwise make an r of noise) and for an empty sample.
private func weightedPearson(_ x: [Double], _ y: [Double], weights: [Double]) -> Double {
    let present = weights.indices.filter { weights[$0] > 0 }
    guard let first = present.first, present.contains(where: { x[$0] != x[first] }), present.contains(where: { y[$0] != y[first] }) else {
        return .nan
    }
    var total = 0.0, sumX = 0.0, sumY = 0.0
    for i in present {
        total += weights[i]
        sumX += weights[i] * x[i]
        sumY += weights[i] * y[i]
    }
    let (meanX, meanY) = (sumX / total, sumY / total)
    var covariance = 0.0, varianceX = 0.0, varianceY = 0.0
    for i in present {
        let (dx, dy) = (x[i] - meanX, y[i] - meanY)
        covariance += weights[i] * dx * dy
        varianceX += weights[i] * dx * dx
        varianceY += weights[i] * dy * dy
    }
    return min(max(covariance / (varianceX * varianceY).squareRoot(), -1), 1)
}

/// The 1-based average ranks of `values` in the sample where value i occurs `weights[i]` times,
/// scipy.stats.rankdata(method="average") of that sample: a group of equal values spans the
/// ranks below + 1 … below + its count, and each member gets their mean. `ascending` lists the
/// indices in ascending order of value.
private func averageRanks(_ values: [Double], ascending order: [Int], weights: [Double]) -> [Double] {
    var ranks = [Double](repeating: 0, count: values.count)
    var below = 0.0
    var start = order.startIndex
    while start < order.endIndex {
        var end = start + 1
        while end < order.endIndex, values[order[end]] == values[order[start]] { end += 1 }
        let tied = order[start..<end].reduce(0) { $0 + weights[$1] }
        for index in order[start..<end] { ranks[index] = below + (tied + 1) / 2 }
        below += tied
        start = end
    }
    return ranks
}
