import Foundation
import LoRABenchTensorIO
import LoRABenchResults
import LoRABenchExperiments

/// A results folder written by hand for `compare --steps-to`: summary.csv and metrics.csv only,
/// lora, loraplus and dora at rank 8, seeds 0–3, eval accuracy (and loss, 1 − accuracy) at
/// steps 0, 10, …, 40.
package enum StepsFixture {
    /// A run reaches 0.8 at `reach[seed]` (nil: never, its best 0.79). dora's seed 0 diverged after
    /// its evaluation at step 20 and its seed 1 failed.
    ///
    /// - lora: 30, 30, 40, never.
    /// - loraplus: 10, 20, 40, 20. Against lora: −20, −10 and 0 where both reached it, and seed 3
    ///   sooner (20, while lora had not by 40): 3 sooner, 1 tie; the sign test's p = 2 · ⅛.
    /// - dora: never by 20 (diverged), failed, 40, never. Against lora: seed 0's sign is unknown
    ///   (lora reached it at 30, after dora's last evaluation), seed 1 left out, seed 2 a tie,
    ///   seed 3 neither: no pair of known sign, no p.
    package static func write(into directory: String) throws {
        let layout = ResultsLayout(root: directory)
        let evalMetrics = [EvalMetric(name: "loss", higherIsBetter: false), EvalMetric(name: "accuracy", higherIsBetter: true)]
        let columns = SummaryCSV.columns(evalMetrics: evalMetrics)
        var summary = CSV.line(columns), metrics = CSV.line(MetricsCSV.experimentColumns(showingBase: false))
        let reaches: [String: [Int?]] = ["lora": [30, 30, 40, nil], "loraplus": [10, 20, 40, 20], "dora": [nil, nil, 40, nil]]
        for variant in ["lora", "loraplus", "dora"] {
            for seed in 0..<4 {
                let id = "\(variant)-r8-s\(seed)"
                let axes = [id, variant, "8", "2r", String(seed), "kaiming", "query+value", "0", "false"]
                var row = Dictionary(uniqueKeysWithValues: zip(RunSpec.axisColumns, axes))
                row["trainable_parameters"] = "1000"
                let (status, lastStep) = variant == "dora" && seed == 0 ? ("diverged", 20) : variant == "dora" && seed == 1 ? ("failed", -1) : ("completed", 40)
                row["status"] = status
                if status == "completed" { row["final_eval_accuracy"] = reaches[variant]![seed] == nil ? "0.79" : "0.8" }
                summary += CSV.line(columns.map { row[$0] ?? "" })
                for step in stride(from: 0, through: lastStep, by: 10) {
                    let accuracy = reaches[variant]![seed].map { step >= $0 ? 0.8 : 0.7 } ?? (step == 40 ? 0.79 : 0.6)
                    metrics += CSV.line(axes + [String(step), "eval", "accuracy", formatNumber(accuracy)])
                    metrics += CSV.line(axes + [String(step), "eval", "loss", formatNumber(1 - accuracy)])
                }
            }
        }
        try AtomicFile.write(summary, to: layout.summaryFile)
        try AtomicFile.write(metrics, to: layout.metricsFile)
    }

}
