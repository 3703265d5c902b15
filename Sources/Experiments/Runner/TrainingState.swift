import Foundation
import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchResults
import LoRABenchAdapters
import LoRABenchTraining
import LoRABenchVariants
import LoRABenchModels
import LoRABenchData
import LoRABenchInterop

/// Everything a run carries from one step to the next, so that training resumed from a
/// checkpoint continues exactly as the uninterrupted run would have: every trainable tensor
/// (shapes included: svd-prune changes ranks), AdamW's moments and step counts, the method's
/// state (AdaLoRA's importance averages and rank pattern), each adapter's dropout generator, the
/// position in the training data, and the metric log. Saved as one safetensors file, the log
/// as JSON metadata.
///
/// The log's rows are saved incrementally: a checkpoint holds the rows logged since the previous
/// checkpoint (from row `logRowsFrom` on), so its size stays bounded however long the run is, and
/// `load` joins them back from the earlier checkpoints. (Checkpoints written before this hold the
/// whole log, with no `log_rows_from`: row 0 on.)
package struct TrainingState {
    package static let fileName = "training_state.safetensors"
    package static let formatVersion = "1"

    package var tensors: [String: TensorToWrite]
    package var metadata: [String: String]
    /// The steps completed when the state was taken.
    package var step: Int
    /// The log with the rows this checkpoint holds: those from `logRowsFrom` on.
    package var log: RunLog
    package var logRowsFrom: Int
    /// The rows before `logRowsFrom`, from earlier checkpoints (`load`).
    package var earlierRows: [MetricRow] = []

    /// `rowsSavedBefore`: the log's rows that earlier checkpoints of this attempt (or the one it
    /// resumed from) already hold.
    package init(model: any TaskModel, optimizer: AdamW, method: any AdaptationMethod, log: RunLog, rowsSavedBefore: Int) {
        var tensors: [String: TensorToWrite] = [:]
        let parameters = model.trainableParameters
        for (index, parameter) in parameters.enumerated() {
            tensors["parameter.\(index)"] = TensorToWrite(parameter.value)
            if let state = optimizer.state(of: parameter) {
                tensors["adamw.\(index).m"] = TensorToWrite(state.m)
                tensors["adamw.\(index).v"] = TensorToWrite(state.v)
            }
        }
        tensors["adamw.steps"] = TensorToWrite(ints: parameters.map { optimizer.state(of: $0)?.step ?? 0 }, shape: [parameters.count])
        for (key, value) in method.state { tensors["method.\(key)"] = TensorToWrite(value) }
        let randomStates = model.adapters.map { Int(bitPattern: UInt(($0.adapter as? any DropoutAdapter)?.dropout.generatorState ?? 0)) }
        tensors["adapter_random_states"] = TensorToWrite(ints: randomStates, shape: [randomStates.count])
        let position = model.dataPosition.map { Int(bitPattern: UInt($0)) }
        tensors["data_position"] = TensorToWrite(ints: position, shape: [position.count])
        var segment = log
        segment.rows = Array(log.rows[rowsSavedBefore...])
        let logJSON = String(decoding: try! Self.logEncoder.encode(segment), as: UTF8.self)
        self.tensors = tensors
        self.metadata = ["format": "pt", "lorabench_training_state": Self.formatVersion, "step": "\(log.stepsCompleted)",
                         "parameters": "\(parameters.count)", "log": logJSON, "log_rows_from": "\(rowsSavedBefore)"]
        self.step = log.stepsCompleted
        self.log = segment
        self.logRowsFrom = rowsSavedBefore
    }

    package init(contentsOf path: String) throws {
        let file = try SafetensorsFile(path: path)
        guard file.metadata["lorabench_training_state"] == Self.formatVersion, let step = file.metadata["step"].flatMap(Int.init) else {
            throw ResultsError.malformed(path: path, line: 0, message: "not a LoRABench training state (version \(Self.formatVersion))")
        }
        (log, logRowsFrom) = try Self.logSegment(file, path: path)
        guard log.stepsCompleted == step else {
            throw ResultsError.malformed(path: path, line: 0, message: "its metric log ends at step \(log.stepsCompleted), the state is of step \(step)")
        }
        var tensors: [String: TensorToWrite] = [:]
        for (name, info) in file.tensors {
            tensors[name] = info.dtype == "I64" ? TensorToWrite(ints: try file.ints(name), shape: info.shape)
                                                : TensorToWrite(floats: try file.floats(name), shape: info.shape)
        }
        self.tensors = tensors
        self.metadata = file.metadata
        self.step = step
    }

    package func write(to path: String) throws { try Safetensors.write(tensors, to: path, metadata: metadata) }

    /// The state at `step` with its whole metric log, the earlier rows read from the checkpoints
    /// of `earlierSteps` (ascending; `path` gives a step's state file). An earlier checkpoint
    /// whose rows do not end where the later one's begin (left by an attempt that stopped or was
    /// resumed elsewhere, or damaged) is passed over.
    package static func load(step: Int, earlierSteps: [Int], path: (Int) -> String) throws -> TrainingState {
        var state = try TrainingState(contentsOf: path(step))
        var needed = state.logRowsFrom
        var segments: [[MetricRow]] = []
        for previous in earlierSteps.reversed() where needed > 0 && previous < step {
            guard let file = try? SafetensorsFile(path: path(previous)), let segment = try? logSegment(file, path: path(previous)),
                  segment.from + segment.log.rows.count == needed else { continue }
            segments.append(segment.log.rows)
            needed = segment.from
        }
        guard needed == 0 else {
            throw ResultsError.malformed(path: path(step), line: 0,
                                         message: "no earlier checkpoint holds its metric log's rows before row \(needed)")
        }
        state.earlierRows = segments.reversed().flatMap { $0 }
        return state
    }

    /// A state file's metric log (its rows from `from` on).
    private static func logSegment(_ file: SafetensorsFile, path: String) throws -> (log: RunLog, from: Int) {
        guard let json = file.metadata["log"], let log = try? logDecoder.decode(RunLog.self, from: Data(json.utf8)) else {
            throw ResultsError.malformed(path: path, line: 0, message: "its metric log is missing or unreadable")
        }
        let from = file.metadata["log_rows_from"].map { Int($0) } ?? 0
        guard let from, from >= 0 else {
            throw ResultsError.malformed(path: path, line: 0, message: "log_rows_from is not an integer ≥ 0")
        }
        return (log, from)
    }

    /// A logged value may be infinite (a gradient norm that overflowed while the loss stayed finite).
    private static let nonFinite = (positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    private static let logEncoder = {
        let encoder = JSONEncoder()
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: nonFinite.positiveInfinity,
                                                                       negativeInfinity: nonFinite.negativeInfinity, nan: nonFinite.nan)
        return encoder
    }()
    private static let logDecoder = {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: nonFinite.positiveInfinity,
                                                                         negativeInfinity: nonFinite.negativeInfinity, nan: nonFinite.nan)
        return decoder
    }()

    /// Puts the state into a freshly built run (same settings, so the same parameters in the
    /// same order) and returns the log to continue.
    package func restore(model: any TaskModel, optimizer: AdamW, method: any AdaptationMethod) throws -> RunLog {
        let parameters = model.trainableParameters
        guard metadata["parameters"] == "\(parameters.count)", let steps = ints("adamw.steps"), steps.count == parameters.count else {
            throw TrainingStateError("it holds \(metadata["parameters"] ?? "?") parameters, the run has \(parameters.count)")
        }
        for (index, parameter) in parameters.enumerated() {
            guard let value = matrix("parameter.\(index)") else { throw TrainingStateError("parameter \(index) (\(parameter.name)) is missing") }
            parameter.resize(to: value)
            guard steps[index] > 0 else {
                optimizer.setState(nil, of: parameter)
                continue
            }
            guard let m = matrix("adamw.\(index).m"), let v = matrix("adamw.\(index).v"), m.shape == value.shape, v.shape == value.shape else {
                throw TrainingStateError("AdamW moments of parameter \(index) (\(parameter.name)) are missing or misshapen")
            }
            optimizer.setState(AdamW.State(m: m, v: v, step: steps[index]), of: parameter)
        }
        let methodState = tensors.keys.filter { $0.hasPrefix("method.") }
        try method.restore(state: Dictionary(uniqueKeysWithValues: methodState.map { (String($0.dropFirst("method.".count)), matrix($0)!) }))
        let randomStates = ints("adapter_random_states") ?? []
        guard randomStates.count == model.adapters.count else {
            throw TrainingStateError("it has \(randomStates.count) adapter generators, the run has \(model.adapters.count) adapters")
        }
        for (named, state) in zip(model.adapters, randomStates) {
            (named.adapter as? any DropoutAdapter)?.dropout.generatorState = UInt64(UInt(bitPattern: state))
        }
        try model.restore(dataPosition: (ints("data_position") ?? []).map { UInt64(UInt(bitPattern: $0)) })
        guard earlierRows.count == logRowsFrom else {
            throw TrainingStateError("its metric log starts at row \(logRowsFrom) but \(earlierRows.count) earlier rows were found")
        }
        var whole = log
        whole.rows = earlierRows + log.rows
        return whole
    }

    private func matrix(_ name: String) -> Matrix? {
        guard let tensor = tensors[name], case let .f32(values) = tensor.values else { return nil }
        let cols = tensor.shape.last ?? 1
        return Matrix(rows: tensor.shape.count <= 1 ? 1 : tensor.shape.dropLast().reduce(1, *), cols: cols, storage: values)
    }

    private func ints(_ name: String) -> [Int]? {
        guard let tensor = tensors[name], case let .i64(values) = tensor.values else { return nil }
        return values
    }
}

/// A training state that does not fit the run it is resumed into.
package struct TrainingStateError: Error, CustomStringConvertible {
    package var reason: String
    package init(_ reason: String) { self.reason = reason }
    package var description: String { "cannot resume from the checkpoint: \(reason)" }
}
