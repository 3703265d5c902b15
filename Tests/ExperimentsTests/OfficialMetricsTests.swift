import Foundation
@testable import LoRABenchResults
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
