import Foundation
import Testing
@testable import LoRABenchTensorIO
@testable import LoRABenchResults
@testable import LoRABenchReport
import LoRABenchTestSupport

/// A results folder written by hand: `lora` (the baseline) and `dora` at rank 4, three seeds, each
/// run's predictions given, summary.csv recording loss and `metrics` as the runs' own final
/// values (computed from the same predictions, as a task reporting `GLUEMetric` does).
private struct MetricFixture {
    let directory: String
    let metrics: [GLUEMetric]
    let predictions: (_ variant: String, _ seed: Int) -> RunPredictions
    static let seeds = 0..<3

    var layout: ResultsLayout { ResultsLayout(root: directory) }

    init(metrics: [GLUEMetric], predictions: @escaping (_ variant: String, _ seed: Int) -> RunPredictions) throws {
        directory = try ExperimentSupport.temporaryDirectory("metric-comparison") + "/results"
        self.metrics = metrics
        self.predictions = predictions
        let evalMetrics = [EvalMetric(name: "loss", higherIsBetter: false)] + metrics.map(\.evalMetric)
        let columns = SummaryCSV.columns(evalMetrics: evalMetrics)
        var summary = CSV.line(columns)
        for variant in ["lora", "dora"] {
            for seed in Self.seeds {
                let id = "\(variant)-s\(seed)"
                let axes = [id, variant, "4", "2r", String(seed), "kaiming", "query+value", "0", "false"]
                var row = Dictionary(uniqueKeysWithValues: zip(AxisColumns.names, axes))
                row["status"] = "completed"
                row["trainable_parameters"] = "1000"
                row["final_eval_loss"] = "0.5"
                let runPredictions = predictions(variant, seed)
                for metric in metrics { row["final_eval_\(metric.name)"] = formatNumber(Self.value(metric, runPredictions)) }
                switch runPredictions {
                case let .classes(classes): try AtomicFile.write(PredictionsCSV.text(classes), to: layout.predictionsFile(id))
                case let .scores(scores): try AtomicFile.write(ScorePredictionsCSV.text(scores), to: layout.predictionsFile(id))
                }
                summary += CSV.line(columns.map { row[$0] ?? "" })
            }
        }
        try AtomicFile.write(summary, to: layout.summaryFile)
        try AtomicFile.write(CSV.line(MetricsCSV.experimentColumns(showingBase: false)), to: layout.metricsFile)
    }

    /// The metric through the public functions a task calls.
    static func value(_ metric: GLUEMetric, _ predictions: RunPredictions, repeating examples: [Int]? = nil) -> Double {
        switch predictions {
        case let .classes(classes):
            let picked = examples.map { $0.map { classes[$0] } } ?? classes
            return metric.value(labels: picked.map(\.label), predicted: picked.map(\.predicted))
        case let .scores(scores):
            let picked = examples.map { $0.map { scores[$0] } } ?? scores
            return metric.value(targets: picked.map(\.score), predicted: picked.map(\.predicted))
        }
    }

    /// The paired bootstrap computed the long way: each resample built as an array of examples
    /// (example i repeated as often as it was drawn) and scored by the public functions.
    func expectedBootstrap(of metric: GLUEMetric, examples: Int, resamples: Int) -> BootstrapTest {
        bootstrapTests(examples: examples, resamples: resamples, seed: PairedComparison.defaultBootstrapSeed) { multiplicities in
            let resample = multiplicities.indices.flatMap { Array(repeating: $0, count: multiplicities[$0]) }
            let differences = Self.seeds.map { seed in
                Self.value(metric, predictions("dora", seed), repeating: resample) - Self.value(metric, predictions("lora", seed), repeating: resample)
            }
            return [differences.reduce(0, +) / Double(Self.seeds.count)]
        }[0]
    }
}

/// 30 binary examples; lora errs where (i + seed) % 4 == 0, dora where (i + seed) % 6 == 0.
private func classifier(_ variant: String, _ seed: Int) -> RunPredictions {
    .classes((0..<30).map { index in
        let label = (index * 7) % 5 < 2 ? 1 : 0
        let wrong = (index + seed) % (variant == "lora" ? 4 : 6) == 0
        return Prediction(index: index, label: label, predicted: wrong ? 1 - label : label, probability: 0.75)
    })
}

/// 25 STS-B-like pairs, gold scores 0 to 5 with ties; dora's outputs follow them more closely.
private func regression(_ variant: String, _ seed: Int) -> RunPredictions {
    .scores((0..<25).map { index in
        let score = Double((index * 13) % 26) / 5
        let noise = variant == "lora" ? Double((index * 7 + seed) % 5) / 2 : Double((index * 3 + seed) % 4) / 8
        return ScorePrediction(index: index, score: score, predicted: 0.8 * score + noise)
    })
}

@Suite struct MetricComparisonTests {
    @Test func everyRecordedMetricGetsAPairedBootstrapAndAccuracyAlsoMcNemar() throws {
        let fixture = try MetricFixture(metrics: [.accuracy, .mcc, .f1], predictions: classifier)
        let comparison = try PairedComparison.compute(resultsDirectory: fixture.directory, baseline: .variant("lora"), resamples: 300)
        #expect(comparison.comparisons.map(\.metric) == [.accuracy, .mcc, .f1])
        for row in comparison.comparisons {
            let values = MetricFixture.seeds.map { MetricFixture.value(row.metric, classifier("dora", $0)) }
            let baselineValues = MetricFixture.seeds.map { MetricFixture.value(row.metric, classifier("lora", $0)) }
            #expect(abs(row.value - values.reduce(0, +) / 3) < 1e-15 && abs(row.baselineValue - baselineValues.reduce(0, +) / 3) < 1e-15)
            #expect(row.pairedSeeds == ["0", "1", "2"] && row.examples == 30 && row.seedInterval != nil)

            let expected = fixture.expectedBootstrap(of: row.metric, examples: 30, resamples: 300)
            let (interval, expectedInterval) = (try #require(row.exampleInterval), try #require(expected.interval))
            #expect(abs(interval.lowerBound - expectedInterval.lowerBound) < 1e-12 && abs(interval.upperBound - expectedInterval.upperBound) < 1e-12,
                    "\(row.metric.name)")
            #expect(row.bootstrapP == expected.pValue && row.bootstrapHolmP == expected.pValue, "one comparison per metric: Holm leaves p")
        }
        let (accuracy, mcc) = (comparison.comparisons[0], comparison.comparisons[1])
        #expect(accuracy.mcnemar != nil && accuracy.holmP == accuracy.mcnemarHolmP)
        #expect(mcc.mcnemar == nil && mcc.holmP == mcc.bootstrapHolmP)
        #expect(comparison.rows.count == 1 && comparison.rows[0].accuracy == accuracy.value)

        // The accuracy line keeps its columns; the others name their metric and leave accuracy's and McNemar's empty.
        let table = try CSVTable(data: Data(comparison.text.utf8), path: "compare.csv")
        #expect(table.records.count == 3)
        func field(_ line: Int, _ name: String) throws -> String { table.records[line].fields[try table.column(name)] }
        #expect(try field(0, "metric") == "accuracy" && field(0, "accuracy") == field(0, "value") && !field(0, "mcnemar_p").isEmpty)
        #expect(try field(1, "metric") == "mcc" && field(1, "value") == formatNumber(mcc.value) && field(1, "accuracy").isEmpty)
        #expect(try field(1, "mcnemar_method").isEmpty && field(1, "holm_p") == field(1, "bootstrap_holm_p"))
        #expect(try field(2, "bootstrap_p") == formatNumber(try #require(comparison.comparisons[2].bootstrapP)))

        let lines = comparison.summaryText.split(separator: "\n").map(String.init)
        #expect(lines[0].hasPrefix("against lora: accuracy, mcc, f1 differences in points, paired bootstrap 95 % interval"))
        #expect(lines[0].contains("p (McNemar for accuracy, paired bootstrap for mcc, f1)"))
        #expect(lines[2].hasPrefix("dora vs lora (rank=4; alpha=2r; init=kaiming; target_modules=query+value; dropout=0; use_rslora=false) mcc: "))
    }

    @Test func aRegressionIsComparedInPearsonAndSpearman() throws {
        let fixture = try MetricFixture(metrics: [.pearson, .spearman], predictions: regression)
        let comparison = try PairedComparison.compute(resultsDirectory: fixture.directory, baseline: .variant("lora"), resamples: 200)
        #expect(comparison.comparisons.map(\.metric) == [.pearson, .spearman] && comparison.rows.isEmpty)
        for row in comparison.comparisons {
            #expect(row.mcnemar == nil && row.difference > 0)
            let expected = fixture.expectedBootstrap(of: row.metric, examples: 25, resamples: 200)
            let (interval, expectedInterval) = (try #require(row.exampleInterval), try #require(expected.interval))
            #expect(abs(interval.lowerBound - expectedInterval.lowerBound) < 1e-12 && abs(interval.upperBound - expectedInterval.upperBound) < 1e-12,
                    "\(row.metric.name)")
        }
        let lines = comparison.summaryText.split(separator: "\n").map(String.init)
        #expect(lines[0].hasPrefix("against lora: pearson, spearman differences in points") && lines[0].contains("paired bootstrap p"))
        let table = try CSVTable(data: Data(comparison.text.utf8), path: "compare.csv")
        let (metric, mcnemar) = (try table.column("metric"), try table.column("mcnemar_p"))
        #expect(table.records.map { $0.fields[metric] } == ["pearson", "spearman"] && table.records.allSatisfy { $0.fields[mcnemar].isEmpty })
    }

    /// Constant outputs have no correlation (SciPy's nan): the comparison says so instead of an interval.
    @Test func aConstantRegressionHasNoIntervalAndNoTest() throws {
        let fixture = try MetricFixture(metrics: [.pearson]) { variant, seed in
            guard variant == "dora" else { return regression(variant, seed) }
            return .scores((0..<25).map { ScorePrediction(index: $0, score: Double(($0 * 13) % 26) / 5, predicted: 2.5) })
        }
        let comparison = try PairedComparison.compute(resultsDirectory: fixture.directory, baseline: .variant("lora"), resamples: 100)
        let row = try #require(comparison.comparisons.first)
        #expect(row.value.isNaN && row.exampleInterval == nil && row.bootstrapP == nil && row.holmP == nil && !row.significant)
        #expect(comparison.summaryText.contains("pearson: +nan (no bootstrap interval: pearson is undefined on some resample)"))
        let table = try CSVTable(data: Data(comparison.text.utf8), path: "compare.csv")
        let (value, low) = (try table.column("value"), try table.column("bootstrap_low"))
        #expect(table.records[0].fields[value] == "nan" && table.records[0].fields[low].isEmpty)
    }

    /// The first file read is dora's seed 0 (the compared cell's runs come first in each pair).
    @Test func predictionsThatCannotGiveTheRecordedMetricsAreNamed() throws {
        // Scores, but summary.csv records an accuracy.
        let scored = try MetricFixture(metrics: [.pearson], predictions: regression)
        let firstRead = scored.layout.predictionsFile("dora-s0")
        let summary = try String(contentsOfFile: scored.layout.summaryFile, encoding: .utf8)
        try AtomicFile.write(summary.replacingOccurrences(of: "final_eval_pearson", with: "final_eval_accuracy"), to: scored.layout.summaryFile)
        let kind = try #require(throws: ComparisonError.self) { try PairedComparison.compute(resultsDirectory: scored.directory, baseline: .variant("lora")) }
        #expect(kind == .metricOfAnotherKind(metric: .accuracy, path: firstRead, kind: .regression))
        #expect(kind.description == "summary.csv records final_eval_accuracy, a metric of class labels, but \(firstRead) holds predicted "
                + "scores: the predictions are not the ones the runs were scored on")

        // Scores, but no correlation recorded to compare them by.
        try AtomicFile.write(summary.replacingOccurrences(of: "final_eval_pearson", with: "final_eval_r2"), to: scored.layout.summaryFile)
        #expect(throws: ComparisonError.noMetricOfScores(path: firstRead)) {
            try PairedComparison.compute(resultsDirectory: scored.directory, baseline: .variant("lora"))
        }

        // One run's file holds classes where the others hold scores.
        try AtomicFile.write(summary, to: scored.layout.summaryFile)
        guard case let .classes(predictions) = classifier("lora", 1) else { return }
        try AtomicFile.write(PredictionsCSV.text(Array(predictions.prefix(25))), to: scored.layout.predictionsFile("lora-s1"))
        #expect(throws: ComparisonError.mismatchedPredictionKinds(path: scored.layout.predictionsFile("lora-s1"), kind: .classification,
                                                                  other: firstRead, otherKind: .regression)) {
            try PairedComparison.compute(resultsDirectory: scored.directory, baseline: .variant("lora"))
        }
    }

    /// A file whose mcc is not the one summary.csv records is not the run's final predictions.
    @Test func aRecordedMetricTheFileDoesNotGiveIsAnError() throws {
        let fixture = try MetricFixture(metrics: [.accuracy, .mcc], predictions: classifier)
        let path = fixture.layout.predictionsFile("dora-s1")
        guard case var .classes(predictions) = classifier("dora", 1) else { return }
        // A right 0 made wrong and a wrong 1 made right: the same accuracy, another confusion matrix.
        let rightZero = try #require(predictions.firstIndex { $0.label == 0 && $0.predicted == 0 })
        let wrongOne = try #require(predictions.firstIndex { $0.label == 1 && $0.predicted == 0 })
        predictions[rightZero].predicted = 1
        predictions[wrongOne].predicted = 1
        try AtomicFile.write(PredictionsCSV.text(predictions), to: path)
        let error = try #require(throws: ComparisonError.self) { try PairedComparison.compute(resultsDirectory: fixture.directory, baseline: .variant("lora")) }
        #expect(error.description.hasPrefix("\(path): its predictions give mcc "))
        #expect(error.description.contains("but \(fixture.layout.summaryFile) records final_eval_mcc \(formatNumber(MetricFixture.value(.mcc, classifier("dora", 1))))"))
    }
}
