import Foundation
@testable import LoRABenchKernels
@testable import LoRABenchResults
@testable import LoRABenchModels
@testable import LoRABenchData
@testable import LoRABenchExperiments
@testable import LoRABenchReport
import LoRABenchTestSupport
import Testing

/// Each GLUE task reports GLUE's metrics, its official one first: the default of a selection and
/// the report's headline; and `mrpc` is one file plus a registry line.
@Suite struct OfficialMetricsTests {
    static func manifest(task: String, selection: String = "") throws -> Manifest {
        try Manifest(yaml: """
        task: {name: \(task), data_dir: '\(GLUETaskTests.dataDirectory)', validation_examples: 8}
        training: {learning_rate: [1e-3, 3e-3], steps: 2}
        sweep: {variants: [lora], ranks: [4]}
        \(selection)
        """, file: "m.yaml")
    }

    @Test(arguments: [("sst2", ["loss", "accuracy"]), ("rte", ["loss", "accuracy"]), ("cola", ["loss", "mcc", "accuracy"]),
                      ("mrpc", ["loss", "f1", "accuracy"])])
    func eachTaskReportsItsGLUEMetricsAndSelectsOnTheOfficialOne(_ task: String, _ metrics: [String]) throws {
        #expect(try Self.manifest(task: task).task.evalMetrics.map(\.name) == metrics)
        let selection = try #require(try Self.manifest(task: task, selection: "selection: {over: [learning_rate]}").selection)
        #expect(selection.metric.name == metrics[1])
        #expect(try Self.manifest(task: task, selection: "selection: {metric: loss}").selection?.metric.name == "loss")
    }

    @Test func theReportLeadsWithTheFirstOfficialMetricTheRunsHold() {
        func run(_ metrics: [String: Double]) -> ExperimentResults.Run {
            ExperimentResults.Run(runID: "r", axes: [:], variant: "lora", rank: 4, seed: "0", status: .completed, reason: "",
                                  evalMetrics: metrics, trainableParameters: 1, wallSeconds: nil)
        }
        let cola = ["final_eval_loss", "best_eval_loss", "final_eval_mcc", "best_eval_mcc", "final_eval_accuracy", "best_eval_accuracy"]
        let headline = HeadlineMetric.choose(columns: cola, runs: [run(["final_eval_mcc": 0.4, "final_eval_accuracy": 0.8])])
        #expect(headline.name == "mcc" && headline.higherIsBetter)
        #expect(HeadlineMetric.choose(columns: ["final_eval_loss", "final_eval_r2"], runs: [run(["final_eval_r2": 0.5])]).name == "loss")
        #expect(HeadlineMetric.choose(columns: ["final_eval_loss", "final_eval_accuracy"], runs: [run(["final_eval_accuracy": 0.5])]).name
                == "accuracy")
    }

    /// The CoLA and MRPC evaluations score their predictions with GLUE's functions.
    @Test func mrpcLoadsAndItsMetricsComeFromItsPredictions() throws {
        let dev = try GLUE.load(GLUETask(name: "mrpc", labelCount: 2), split: .dev, from: GLUETaskTests.dataDirectory)
        #expect(dev.count == 408 && dev.allSatisfy { $0.textPair != nil })
        #expect(TaskCatalog.available.contains("mrpc"))
        let labels = dev.map(\.label)
        // Always "paraphrase": F1 is 2p/(1+p) for the positive share p, MCC is 0.
        let positive = Double(labels.filter { $0 == 1 }.count) / Double(labels.count)
        let allOnes = Array(repeating: 1, count: labels.count)
        #expect(abs(GLUEMetric.f1.value(labels: labels, predicted: allOnes) - 2 * positive / (1 + positive)) < 1e-12)
        #expect(GLUEMetric.mcc.value(labels: labels, predicted: allOnes) == 0)
    }
}

/// STS-B: a regression on an encoder, its scores in predictions.csv, its correlations in the summary.
@Suite struct STSBTaskTests {
    @Test func aTinySTSBSweepPredictsScoresAndReportsCorrelations() throws {
        _ = try minilmFilesOrSkip()
        let manifest = try Manifest(yaml: """
            task: {name: stsb, data_dir: '\(GLUETaskTests.dataDirectory)', max_train_examples: 32, eval_examples: 16, max_length: 16}
            training: {learning_rate: 1e-2, steps: 2, batch_size: 8}
            sweep: {variants: [head_only, lora], ranks: [4], target_modules: [query, value]}
            """, file: "m.yaml")
        #expect(manifest.task.evalMetrics.map(\.name) == ["loss", "pearson", "spearman"])
        #expect(manifest.task.labelCount == nil)
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let outcomes = try ExperimentSupport.run(manifest, into: directory)
        #expect(outcomes.map(\.status) == [.completed, .completed], "\(outcomes.map(\.reason))")
        let layout = ResultsLayout(root: "\(directory)/results")
        let dev = try GLUE.load(STSB.task, split: .dev, from: GLUETaskTests.dataDirectory, maxExamples: 16)
        for (run, outcome) in zip(manifest.runs, outcomes) {
            let predictions = try ScorePredictionsCSV.read(layout.predictionsFile(run.id))
            #expect(predictions.map(\.score) == dev.map { Double(Float($0.score!)) })
            let predicted = predictions.map(\.predicted)
            #expect(outcome.finalEval["pearson"] == GLUEMetric.pearson.value(targets: predictions.map(\.score), predicted: predicted))
            #expect(outcome.finalEval["spearman"] == GLUEMetric.spearman.value(targets: predictions.map(\.score), predicted: predicted))
            let meanSquared = zip(predicted, predictions.map(\.score)).map { ($0 - $1) * ($0 - $1) }.reduce(0, +) / Double(predicted.count)
            #expect(abs(outcome.finalEval["loss"]! - meanSquared) <= 1e-5 * meanSquared)
        }
    }

    @Test func aDecoderCannotLearnAScore() {
        #expect {
            try Manifest(yaml: """
                task: stsb
                model: smollm2
                training: {learning_rate: 1e-3, steps: 2}
                sweep: {variants: [lora], ranks: [4]}
                """, file: "m.yaml")
        } throws: { "\($0)".contains("model: found 'smollm2'; allowed: for task stsb: minilm") }
    }

    /// ∂/∂p of the mean squared error, against central differences.
    @Test func theSquaredErrorGradientMatchesFiniteDifferences() {
        let predictions = Matrix(rows: 3, cols: 1, storage: [0.5, 2.0, -1.0]), targets: [Float] = [1.0, 2.5, 0.0]
        let (_, gradient) = meanSquaredError(predictions: predictions, targets: targets)
        for row in 0..<3 {
            var up = predictions, down = predictions
            up[row, 0] += 1e-2
            down[row, 0] -= 1e-2
            let numeric = (meanSquaredError(predictions: up, targets: targets).loss - meanSquaredError(predictions: down, targets: targets).loss) / 2e-2
            #expect(abs(numeric - gradient[row, 0]) < 1e-3)
        }
    }
}
