import Foundation
import LoRABenchTensorIO
import LoRABenchResults
import LoRABenchVariants
import LoRABenchExperiments

/// A results folder of a classification sweep built by hand, so that every number of a paired
/// comparison is known: 40 dev examples, seeds 0–2, `lora` (the baseline) and `dora` at ranks 4
/// and 8, and `head_only`.
///
/// - lora, every seed and rank: right on examples 0..<30 (accuracy 0.75).
/// - dora r = 4, seed s: wrong on 28 and 29 (b = 2 per seed), right on 30..<35 + s (c = 5 + s):
///   accuracies 0.825, 0.85, 0.875; per-seed differences 0.075, 0.1, 0.125; b = 6 and c = 18 over
///   seeds, 24 discordant examples: the exact McNemar p is 2 · 190051 / 2²⁴.
/// - dora r = 8: lora's predictions exactly (b = c = 0, p = 1); seed 2 diverged (no predictions).
/// - head_only: right on examples 0..<20 (accuracy 0.5).
package enum ComparisonFixture {
    package static let examples = 40

    package static func write(into directory: String) throws {
        let metrics = [EvalMetric(name: "loss", higherIsBetter: false), EvalMetric(name: "accuracy", higherIsBetter: true)]
        let columns = SummaryCSV.columns(evalMetrics: metrics)
        var summary = CSV.line(columns)
        let layout = ResultsLayout(root: directory)
        func add(variant: String, rank: Int, seed: Int, correct: Set<Int>?) throws {
            let id = rank == 0 ? "\(variant)-s\(seed)" : "\(variant)-r\(rank)-s\(seed)"
            let axes = rank == 0 ? [id, variant, "0", "n/a", String(seed), "n/a", "n/a", "n/a", "n/a"]
                : [id, variant, String(rank), "2r", String(seed), "kaiming", "query+value", "0", "false"]
            var row = Dictionary(uniqueKeysWithValues: zip(RunSpec.axisColumns, axes))
            row["trainable_parameters"] = "1000"
            if let correct {
                let predictions = (0..<examples).map { index in
                    Prediction(index: index, label: index % 2, predicted: correct.contains(index) ? index % 2 : 1 - index % 2, probability: 0.75)
                }
                try AtomicFile.write(PredictionsCSV.text(predictions), to: layout.predictionsFile(id))
                row["status"] = "completed"
                row["final_eval_accuracy"] = formatNumber(Double(correct.count) / Double(examples))
                row["final_eval_loss"] = "0.5"
            } else {
                row["status"] = "diverged"
                row["reason"] = "the train loss is nan at step 7"
            }
            summary += CSV.line(columns.map { row[$0] ?? "" })
        }
        for seed in 0..<3 { try add(variant: "head_only", rank: 0, seed: seed, correct: Set(0..<20)) }
        for rank in [4, 8] {
            for seed in 0..<3 { try add(variant: "lora", rank: rank, seed: seed, correct: Set(0..<30)) }
        }
        for seed in 0..<3 { try add(variant: "dora", rank: 4, seed: seed, correct: Set(0..<28).union(30..<(35 + seed))) }
        for seed in 0..<3 { try add(variant: "dora", rank: 8, seed: seed, correct: seed == 2 ? nil : Set(0..<30)) }
        try AtomicFile.write(summary, to: layout.summaryFile)
        try AtomicFile.write(CSV.line(MetricsCSV.experimentColumns(showingBase: false)), to: layout.metricsFile)
    }
}
