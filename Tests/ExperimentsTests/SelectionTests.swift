import Foundation
@testable import LoRABenchTensorIO
@testable import LoRABenchResults
@testable import LoRABenchVariants
@testable import LoRABenchExperiments
import LoRABenchTestSupport
import Testing

/// Learning rates chosen on the validation split: the `selection:` block, the held-out
/// examples, the choice itself (never from the eval split), selection.csv and cells.csv.
@Suite struct SelectionTests {
    /// A summary.csv in the runner's layout: lora at ranks 4 and 8 × learning rates × seeds 0–2,
    /// each run's final eval and validation accuracy given by `accuracies(rank, rate, seed)`.
    static func summary(rates: [String], statuses: [String: RunOutcome.Status] = [:],
                        accuracies: (Int, String, Int) -> (eval: Double, validation: Double)) throws -> ExperimentResults {
        let metrics = [EvalMetric(name: "accuracy", higherIsBetter: true)]
        let axes = RunSpec.axisColumns(showingBase: false, learningRateAxis: true)
        let columns = SummaryCSV.columns(evalMetrics: metrics, learningRateAxis: true, validation: true)
        var text = CSV.line(columns)
        for rank in [4, 8] {
            for rate in rates {
                for seed in 0..<3 {
                    let id = "lora-r\(rank)-lr\(rate)-s\(seed)"
                    var row = Dictionary(uniqueKeysWithValues: zip(axes, [id, "lora", String(rank), "2r", String(seed), "kaiming", "fc1", "0", "false", rate]))
                    let status = statuses[id] ?? .completed
                    row["status"] = status.rawValue
                    if status == .completed {
                        let (eval, validation) = accuracies(rank, rate, seed)
                        row["final_eval_accuracy"] = formatNumber(eval)
                        row["final_validation_accuracy"] = formatNumber(validation)
                    } else {
                        row["reason"] = "the train loss is nan at step 3"
                    }
                    row["trainable_parameters"] = "100"
                    text += CSV.line(columns.map { row[$0] ?? "" })
                }
            }
        }
        return try ExperimentResults(name: "selection", summary: CSVTable(data: Data(text.utf8), path: "summary.csv"))
    }

    static let settings = try! Manifest(yaml: """
        task: {name: sst2, validation_examples: 100}
        training: {learning_rate: [1e-4, 1e-3], steps: 10}
        selection: {metric: accuracy, split: validation, over: [learning_rate]}
        sweep: {variants: [lora], ranks: [4, 8]}
        """, file: "m.yaml").selection!

    static func select(_ results: ExperimentResults) -> SelectedSettings {
        let cellAxes = Selection.cellAxes(results.axisNames, over: settings.over)
        let choices = Selection.choose(Selection.validationResults(results.runs, cellAxes: cellAxes, column: settings.column),
                                       higherIsBetter: true)
        return SelectedSettings(choices: choices, cellAxes: cellAxes, settings: settings)
    }

    /// On the eval split 1e-3 is best at every rank, on the validation split 1e-4: the choice
    /// is 1e-4, and the eval numbers reported are 1e-4's.
    @Test func theChoiceIsMadeOnTheValidationSplitNeverOnTheEvalSplit() throws {
        let results = try Self.summary(rates: ["0.0001", "0.001"]) { rank, rate, seed in
            let high = rate == "0.001"
            return (eval: (high ? 0.90 : 0.80) + 0.001 * Double(seed), validation: (high ? 0.70 : 0.75) + 0.001 * Double(seed))
        }
        let selected = Self.select(results)
        #expect(selected.chosen == [["lora", "4", "2r", "kaiming", "fc1", "0", "false"]: "0.0001",
                                    ["lora", "8", "2r", "kaiming", "fc1", "0", "false"]: "0.0001"])
        #expect(Self.settings.column == "final_validation_accuracy")

        let cells = CellTable(results: results, selection: selected)
        #expect(cells.axisNames == ["variant", "rank", "alpha", "init", "target_modules", "dropout", "use_rslora", "selected_learning_rate"])
        let eval = cells.cells.filter { $0.split == "eval" && $0.metric == "accuracy" }
        #expect(eval.map { $0.axes[1] } == ["4", "8"])
        #expect(eval.allSatisfy { $0.axes.last == "0.0001" && $0.runs == 3 && abs($0.summary!.mean - 0.801) < 1e-12 })
    }

    /// The same results with the eval and validation numbers swapped choose the other rate.
    @Test func swappingTheSplitsSwapsTheChoice() throws {
        let results = try Self.summary(rates: ["0.0001", "0.001"]) { _, rate, seed in
            let high = rate == "0.001"
            return (eval: (high ? 0.70 : 0.75) + 0.001 * Double(seed), validation: (high ? 0.90 : 0.80) + 0.001 * Double(seed))
        }
        #expect(Set(Self.select(results).chosen.values) == ["0.001"])
    }

    @Test func theSelectionReadsOnlyValidationColumns() throws {
        let results = try Self.summary(rates: ["0.0001"]) { _, _, _ in (0.9, 0.8) }
        let seen = Selection.validationResults(results.runs, cellAxes: ["variant", "rank"], column: "final_validation_accuracy")
        #expect(seen.map(\.value) == [Double](repeating: 0.8, count: 6))
    }

    /// Loss is lower-is-better; a rate that lost a seed is passed over for one that lost none,
    /// even with a better mean over its survivors; ties go to the first rate.
    @Test func directionDivergenceAndTies() {
        let cell = ["lora", "4"]
        func results(_ values: [String: [Double?]]) -> [ValidationResult] {
            values.keys.sorted().flatMap { rate in values[rate]!.map { ValidationResult(cell: cell, candidate: rate, value: $0) } }
        }
        #expect(Selection.choose(results(["a": [0.3, 0.3], "b": [0.2, 0.2]]), higherIsBetter: false)[0].selected == "b")
        #expect(Selection.choose(results(["a": [0.3, 0.3], "b": [0.2, 0.2]]), higherIsBetter: true)[0].selected == "a")
        let diverged = Selection.choose(results(["a": [0.80, 0.82], "b": [0.95, nil]]), higherIsBetter: true)[0]
        #expect(diverged.selected == "a")
        #expect(diverged.candidates.map(\.runs) == [2, 2] && diverged.candidates.map { $0.summary?.count } == [2, 1])
        #expect(Selection.choose(results(["a": [0.5], "b": [0.5]]), higherIsBetter: true)[0].selected == "a")
        #expect(Selection.choose(results(["a": [nil], "b": [nil]]), higherIsBetter: true)[0].selected == nil)
    }

    @Test func selectionCSVRoundTripsAndMarksTheChoice() throws {
        let results = try Self.summary(rates: ["0.0001", "0.001"]) { rank, rate, _ in (0.8, rate == "0.001" && rank == 8 ? 0.9 : 0.85) }
        let selected = Self.select(results)
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try AtomicFile.write(selected.text, to: ResultsLayout(root: directory).selectionFile)
        let table = try CSVTable(contentsOf: ResultsLayout(root: directory).selectionFile, producer: "test")
        #expect(table.header == ["variant", "rank", "alpha", "init", "target_modules", "dropout", "use_rslora"] + SelectedSettings.fixedColumns)
        #expect(table.records[0].fields.suffix(8) == ["0.0001", "0.0001", "validation", "accuracy", "higher", "3", "3", "0.85"])
        #expect(table.records[3].fields.suffix(8) == ["0.001", "0.001", "validation", "accuracy", "higher", "3", "3", "0.9"])
        let loaded = try #require(try SelectedSettings.load(resultsDirectory: directory))
        #expect(loaded.chosen == selected.chosen && loaded.rows == selected.rows && loaded.criterion == "validation accuracy")
    }

    /// A diverged run is counted in its cell and left out of the mean; one seed has no interval.
    @Test func cellsCountDivergedRunsAndNeverAverageThem() throws {
        let results = try Self.summary(rates: ["0.001"], statuses: ["lora-r4-lr0.001-s2": .diverged, "lora-r8-lr0.001-s1": .failed,
                                                                    "lora-r8-lr0.001-s2": .diverged]) { _, _, seed in
            (eval: [0.80, 0.84, 0.0][seed], validation: 0.5)
        }
        let cells = CellTable(results: results, selection: nil).cells.filter { $0.split == "eval" }
        #expect(cells.map(\.runs) == [3, 3] && cells.map(\.diverged) == [1, 1] && cells.map(\.failed) == [0, 1])
        #expect(cells[0].summary?.count == 2 && abs(cells[0].summary!.mean - 0.82) < 1e-12)
        #expect(cells[1].summary?.count == 1 && cells[1].summary?.interval95 == nil && cells[1].intervalNote == "none (n = 1)")
        let row = CellTable(results: results, selection: nil).rows[2]
        #expect(row.suffix(12) == ["eval", "accuracy", "3", "1", "1", "0", "1", "0.8", "", "", "", "none (n = 1)"])
    }

    func message(_ selection: String, task: String = "{name: synthetic, validation_examples: 64}", rates: String = "[1e-3, 3e-3]") -> String {
        do {
            _ = try Manifest(yaml: "task: \(task)\ntraining: {learning_rate: \(rates), steps: 10}\nsweep: {variants: [lora], ranks: [4]}\n"
                             + "selection: \(selection)\n", file: "m.yaml")
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    @Test func theEvalSplitIsRefusedAsASplitToChooseOn() {
        for split in ["eval", "dev"] {
            #expect(message("{metric: loss, split: \(split)}") == "m.yaml:4:34: selection.split: found '\(split)'; allowed: validation (the eval "
                + "split is the task's held-out set, where results are measured: GLUE's dev set is the test set here, so nothing is chosen on it)")
        }
        #expect(message("{metric: loss, split: valid}") == "m.yaml:4:34: selection.split: found 'valid'; allowed: validation (did you mean 'validation'?)")
    }

    @Test func selectionErrorsNameTheKeyAndWhatIsAllowed() {
        #expect(message("{metric: accuracy}") == "m.yaml:4:21: selection.metric: found 'accuracy'; allowed: loss, r2")
        #expect(message("{metric: loss, spilt: validation}")
            == "m.yaml:4:27: selection.spilt: found an unknown key 'spilt'; allowed: metric, split, over, halving (did you mean 'split'?)")
        #expect(message("{metric: loss, over: [rank]}") == "m.yaml:4:34: selection.over[0]: found 'rank'; allowed: learning_rate")
        #expect(message("{split: validation}") == "no error", "the metric defaults to the task's headline")
        #expect(message("{metric: loss}", task: "synthetic") == "m.yaml:4:12: selection: found a selection, but task synthetic holds no "
            + "validation split; allowed: a selection on a validation split: set task.validation_examples to hold training examples out")
        #expect(message("{metric: loss}", rates: "1e-3") == "m.yaml:4:12: selection: found a selection over learning_rate, which has one "
            + "value for every variant; allowed: a selection over an axis with several values: give training.learning_rate or a variant's "
            + "learning_rate a list")
        #expect(message("{metric: loss}") == "no error")
    }

    @Test func validationExamplesMustLeaveATrainingSet() {
        #expect(message("{metric: loss}", task: "{name: synthetic, validation_examples: 4000}")
            == "m.yaml:1:46: task.validation_examples: found '4000'; allowed: an integer from 2 to train_size − 1 (2047): the last "
            + "examples of the training set, held out")
        #expect(message("{metric: loss}", task: "{name: sst2, validation_examples: 0}").hasPrefix(
            "m.yaml:1:41: task.validation_examples: found '0'; allowed: an integer ≥ 1 (examples of train.tsv held out, never trained on)"))
    }

    /// The synthetic task's held-out examples are the last of its training set, no longer trained on.
    @Test func theSyntheticValidationSplitIsTheEndOfTheTrainingSet() throws {
        var settings = SyntheticTaskSettings()
        settings.trainSize = 100
        let whole = try SyntheticTask(settings: settings)
        settings.validationExamples = 30
        let held = try SyntheticTask(settings: settings)
        #expect(held.trainInputs.rows == 70 && held.heldOut[.validation]?.inputs.rows == 30)
        #expect(held.trainInputs.storage == whole.trainInputs.selectingRows(Array(0..<70)).storage)
        #expect(held.heldOut[.validation]?.targets.storage == whole.trainTargets.selectingRows(Array(70..<100)).storage)
        #expect(held.heldOut[.eval]?.targets.storage == whole.heldOut[.eval]?.targets.storage)
    }

    /// GLUE's held-out examples are a fixed random sample of train.tsv, the same whatever the
    /// manifest, and distinct.
    @Test func theGLUEValidationSampleIsFixedAndDistinct() {
        let indices = GLUEExperiment.validationIndices(count: 500, of: 67_349)
        #expect(indices == GLUEExperiment.validationIndices(count: 500, of: 67_349))
        #expect(Set(indices).count == 500 && indices == indices.sorted() && indices.last! < 67_349)
        #expect(indices.first! < 1000 && indices.last! > 66_000, "a sample of the whole file, not a block")
        #expect(Array(GLUEExperiment.validationIndices(count: 5, of: 5)) == [0, 1, 2, 3, 4])
    }

    /// A sweep end to end: validation rows next to the eval rows, the rate chosen on them in
    /// selection.csv, cells.csv of the chosen rate only, and `export --selected`.
    @Test func aSweepWithASelectionWritesItsChoice() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let yaml = ExperimentSupport.manifest(learningRate: "[1e-3, 3e-2]", sweep: "  variants: [lora]\n  ranks: [2, 4]\n  seeds: [0, 1]")
            .replacingOccurrences(of: "  eval_size: 64\n", with: "  eval_size: 64\n  validation_examples: 64\n")
            + "selection: {metric: loss, split: validation, over: [learning_rate]}\n"
        let manifest = try Manifest(yaml: yaml, file: "m.yaml")
        try ExperimentSupport.run(manifest, into: directory)
        let layout = ResultsLayout(root: "\(directory)/results")

        let metrics = try CSVTable(contentsOf: layout.metricsFile, producer: "test")
        #expect(metrics.header == MetricsCSV.experimentColumns(showingBase: false, learningRateAxis: true))
        let split = try metrics.column("split"), metric = try metrics.column("metric"), step = try metrics.column("step")
        let validationRows = metrics.records.filter { $0.fields[split] == "validation" && $0.fields[metric] == "loss" }
        #expect(validationRows.count == manifest.runs.count * 4)  // steps 0, 20, 40, 60
        #expect(Set(validationRows.map { $0.fields[step] }) == ["0", "20", "40", "60"])

        let results = try ExperimentResults.load(directory: layout.root)
        let selected = try #require(try SelectedSettings.load(resultsDirectory: layout.root))
        for rank in ["2", "4"] {
            let runs = results.runs.filter { $0.rank == Int(rank)! }
            func validationMean(_ rate: String) -> Double {
                let values = runs.filter { $0.axes["learning_rate"] == rate }.compactMap { $0.evalMetrics["final_validation_loss"] }
                return values.reduce(0, +) / Double(values.count)
            }
            let best = validationMean("0.001") <= validationMean("0.03") ? "0.001" : "0.03"
            #expect(selected.chosen[["lora", rank, "2r", "kaiming", "fc1+fc2", "0", "false"]] == best)
        }
        let cells = try CSVTable(contentsOf: layout.cellsFile, producer: "test")
        #expect(cells.header.contains("selected_learning_rate") && !cells.header.contains("learning_rate"))
        #expect(cells.records.count == 2 * 4)  // ranks × (eval, validation) × (loss, r2)

        let exported = try MetricsExport.table(results: layout.root, metric: "loss", split: "eval", selectedOnly: true)
        let rateColumn = try #require(exported.header.firstIndex(of: "learning_rate")), rankColumn = exported.header.firstIndex(of: "rank")!
        #expect(exported.rows.count == 2 * 2 * 4)  // ranks × seeds × evaluations
        #expect(exported.rows.allSatisfy { selected.chosen[["lora", $0[rankColumn], "2r", "kaiming", "fc1+fc2", "0", "false"]] == $0[rateColumn] })
    }
}
