import Foundation
@testable import LoRABenchTensorIO
@testable import LoRABenchResults
@testable import LoRABenchData
@testable import LoRABenchExperiments
import LoRABenchTestSupport
import Testing

/// A classification run's dev predictions (`predictions.csv`) and its validation split, on the
/// tiny SST-2 sweep of GLUETaskTests.
@Suite struct PredictionsTests {
    @Test func aGLUERunSavesPredictionsThatScoreItsLoggedAccuracy() throws {
        _ = try minilmFilesOrSkip()
        let manifest = try GLUETaskTests.manifest(variants: "[lora]", extraTask: ", validation_examples: 16")
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let outcomes = try ExperimentSupport.run(manifest, into: directory)
        #expect(outcomes.map(\.status) == [.completed])
        let layout = ResultsLayout(root: "\(directory)/results")
        let run = manifest.runs[0]

        let path = layout.predictionsFile(run.id)
        #expect(try CSVTable(contentsOf: path, producer: "test").header == ["index", "label", "predicted", "probability"])
        let predictions = try PredictionsCSV.read(path)
        let dev = try GLUE.load(.sst2, split: .dev, from: GLUETaskTests.dataDirectory, maxExamples: 8)
        #expect(predictions.map(\.index) == Array(0..<8))
        #expect(predictions.map(\.label) == dev.map(\.label))
        #expect(predictions.allSatisfy { $0.probability >= 0.5 && $0.probability <= 1 && [0, 1].contains($0.predicted) })
        let accuracy = Double(predictions.filter { $0.predicted == $0.label }.count) / Double(predictions.count)
        #expect(accuracy == outcomes[0].finalEval["accuracy"])
        let summary = try CSVTable(contentsOf: layout.summaryFile, producer: "test")
        #expect(Double(summary.records[0].fields[try summary.column("final_eval_accuracy")]) == accuracy)

        // The validation split is evaluated with the eval split, and reported in summary.csv.
        let metrics = try CSVTable(contentsOf: layout.metricsFile, producer: "test")
        let split = try metrics.column("split"), metric = try metrics.column("metric"), step = try metrics.column("step")
        #expect(metrics.records.filter { $0.fields[split] == "validation" && $0.fields[metric] == "accuracy" }.map { $0.fields[step] } == ["0", "2"])
        #expect(!summary.records[0].fields[try summary.column("final_validation_accuracy")].isEmpty)
    }

    @Test func aRegressionRunSavesNoPredictions() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manifest = try Manifest(yaml: ExperimentSupport.manifest(sweep: "  variants: [lora]\n  ranks: [2]"), file: "m.yaml")
        try ExperimentSupport.run(manifest, into: directory)
        let layout = ResultsLayout(root: "\(directory)/results")
        #expect(FileManager.default.fileExists(atPath: layout.outcomeFile(manifest.runs[0].id)))
        #expect(!FileManager.default.fileExists(atPath: layout.predictionsFile(manifest.runs[0].id)))
    }

    /// Held-out training examples are evaluated, never trained on: the training batches and the
    /// validation batches share no sentence, and together they are the whole file.
    @Test func heldOutTrainingExamplesAreNeverTrainedOn() throws {
        _ = try minilmFilesOrSkip()
        let data = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: data) }
        let words = ["apple", "river", "stone", "cloud", "maple", "tiger", "ocean", "piano", "lemon", "eagle", "candle", "forest", "silver",
                     "garden", "rocket", "violet", "window", "bridge", "meadow", "pepper", "castle", "thunder", "marble", "harbor", "saddle",
                     "willow", "copper", "lantern", "falcon", "orchid"]
        try FileManager.default.createDirectory(atPath: "\(data)/sst2", withIntermediateDirectories: true)
        try ("sentence\tlabel\n" + words.enumerated().map { "a \($1)\t\($0 % 2)\n" }.joined()).write(toFile: "\(data)/sst2/train.tsv", atomically: true, encoding: .utf8)
        try "sentence\tlabel\nfine\t1\npoor\t0\n".write(toFile: "\(data)/sst2/dev.tsv", atomically: true, encoding: .utf8)
        let manifest = try Manifest(yaml: """
            task: {name: sst2, data_dir: '\(data)', validation_examples: 10, max_length: 8}
            training: {learning_rate: 1e-3, steps: 1}
            sweep: {variants: [head_only], ranks: [4]}
            """, file: "m.yaml")
        let experiment = try manifest.task.makeTask() as! GLUEExperiment
        let validation = try #require(experiment.heldOut[.validation])
        #expect(validation.count == 10 && experiment.trainBatcher.exampleCount == 20)
        func sentences(_ batches: [TokenBatch]) -> Set<[Int]> {
            var found = Set<[Int]>()
            for batch in batches {
                for row in 0..<batch.batchSize {
                    let positions = (row * batch.seqLen)..<((row + 1) * batch.seqLen)
                    found.insert(positions.filter { batch.attentionMask[$0] == 1 }.map { batch.inputIds[$0] })
                }
            }
            return found
        }
        let trained = sentences(experiment.trainBatcher.batches()), held = sentences(validation.batches)
        #expect(trained.count == 20 && held.count == 10 && trained.isDisjoint(with: held))
    }
}
