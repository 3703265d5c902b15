import Foundation
import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchResults
import LoRABenchAdapters
import LoRABenchVariants
import LoRABenchData
import LoRABenchInterop

/// One run's model: the family's classifier with its adapters (and head), fed epochs of the run's batches.
package final class GLUEClassifier: PeftExportable {
    package let experiment: GLUEExperiment
    package let classifier: any TextClassifier
    package var adapters: [NamedAdapter] { classifier.adapters }
    private var data: EpochCursor<TokenBatch>

    package init(experiment: GLUEExperiment, classifier: any TextClassifier, batcher: Batcher) {
        self.experiment = experiment
        self.classifier = classifier
        data = EpochCursor { batcher.batches(epoch: $0) }
    }

    package var trainableParameters: [Parameter] { classifier.trainableParameters }

    package var parameterReport: ParameterReport {
        let adapted = adapters.reduce(0) { $0 + $1.adapter.base.outFeatures * $1.adapter.base.inFeatures + $1.adapter.base.bias.count }
        return ParameterReport(layers: adapters.map(\.adapter), otherFrozen: experiment.base.frozenParameterCount - adapted,
                               otherTrainable: classifier.headParameterCount)
    }

    /// The next batch of the current epoch (a new shuffle each epoch); a smaller last batch of
    /// an epoch is kept, since the loss is a mean over the batch.
    package func trainOnNextBatch() throws -> Float {
        let batch = data.next()
        let loss = try classifier.loss(batch, training: true)
        try classifier.backward()
        lastBatchTokenCount = batch.attentionMask.reduce(0, +)
        return loss
    }

    package private(set) var lastBatchTokenCount = 0

    package var dataPosition: [UInt64] { data.position }

    package func restore(dataPosition position: [UInt64]) throws { try data.restore(position) }

    /// Mean loss and accuracy (the highest label score, ties to the lower label) over a held-out
    /// split, summed in Double, with every example's prediction and its softmax probability
    /// among the labels.
    package func evaluate(_ split: EvalSplit) throws -> Evaluation {
        guard let set = experiment.heldOut[split] else { throw HeldOutSplitError(split: split) }
        if experiment.settings.isRegression { return try evaluateScores(set) }
        var lossSum = 0.0, correct = 0
        var predictions: [Prediction] = []
        predictions.reserveCapacity(set.count)
        for (batch, members) in zip(set.batches, set.members) {
            let (scores, loss) = try classifier.evaluate(batch)
            lossSum += Double(loss) * Double(batch.batchSize)
            for (row, label) in batch.labels.enumerated() {
                var best = 0
                for c in 1..<scores.cols where scores[row, c] > scores[row, best] { best = c }
                if best == label { correct += 1 }
                // softmax(best) = 1 / Σ_c exp(s_c − s_best), in Double.
                var partition = 0.0
                for c in 0..<scores.cols { partition += exp(Double(scores[row, c]) - Double(scores[row, best])) }
                predictions.append(Prediction(index: members[row], label: label, predicted: best, probability: 1 / partition))
            }
        }
        predictions.sort { $0.index < $1.index }
        let count = Double(set.count)
        var metrics = ["loss": lossSum / count, "accuracy": Double(correct) / count]
        for metric in experiment.settings.metrics where metric != .accuracy {
            metrics[metric.name] = metric.value(labels: predictions.map(\.label), predicted: predictions.map(\.predicted))
        }
        return Evaluation(metrics: metrics, predictions: predictions)
    }

    /// A regression's mean squared error and its GLUE correlations over the split, with every
    /// example's predicted score.
    private func evaluateScores(_ set: HeldOutSet) throws -> Evaluation {
        var lossSum = 0.0
        var predictions: [ScorePrediction] = []
        predictions.reserveCapacity(set.count)
        for (batch, members) in zip(set.batches, set.members) {
            let (scores, loss) = try classifier.evaluate(batch)
            lossSum += Double(loss) * Double(batch.batchSize)
            for row in 0..<batch.batchSize {
                predictions.append(ScorePrediction(index: members[row], score: Double(batch.scores[row]), predicted: Double(scores[row, 0])))
            }
        }
        predictions.sort { $0.index < $1.index }
        var metrics = ["loss": lossSum / Double(set.count)]
        for metric in experiment.settings.metrics {
            metrics[metric.name] = metric.value(targets: predictions.map(\.score), predicted: predictions.map(\.predicted))
        }
        return Evaluation(metrics: metrics, scorePredictions: predictions)
    }

    package var baseModelSHA256: String? { experiment.base.files.weightsSHA256 }
    package var savedModules: (names: [String], tensors: [String: TensorToWrite]) { classifier.savedModules }
    package func describe(_ config: inout PeftConfig) throws { try classifier.describe(&config) }
}
