import Foundation
import LoRABenchTensorIO

/// A classifier's answer on one held-out example, as `predictions.csv` stores it.
public struct Prediction: Equatable, Sendable {
    /// The example's position in its split as loaded (dev.tsv's order).
    public var index: Int
    public var label: Int
    public var predicted: Int
    /// The softmax probability of `predicted`.
    public var probability: Double

    public init(index: Int, label: Int, predicted: Int, probability: Double) {
        self.index = index
        self.label = label
        self.predicted = predicted
        self.probability = probability
    }
}

/// `runs/<id>/predictions.csv`: a classifier's answer on every example of the eval split at its
/// final evaluation, `index,label,predicted,probability` in index order (the example's position
/// in dev.tsv as loaded, its gold label, the predicted label, and the softmax probability of the
/// prediction). `lorabench compare` pairs two runs' files example by example.
public enum PredictionsCSV {
    public static let columns = ["index", "label", "predicted", "probability"]

    public static func text(_ predictions: [Prediction]) -> String {
        CSV.line(columns) + predictions.map {
            CSV.line([String($0.index), String($0.label), String($0.predicted), formatNumber($0.probability)])
        }.joined()
    }

    /// Reads a file written by `text`; a missing file names the command that writes it, and a
    /// damaged one names its line. Every example of the eval split is listed once, in order, so
    /// the indices must run 0, 1, 2, …; with `labelCount` (the task's classes), a label or
    /// prediction outside 0..<labelCount is an error too.
    public static func read(_ path: String, labelCount: Int? = nil) throws -> [Prediction] {
        let table = try CSVTable(contentsOf: path, producer: "lorabench run MANIFEST (classification tasks only)")
        guard table.header == columns else {
            throw ResultsError.malformed(path: path, line: 1, message: "expected the columns \(columns.joined(separator: ","))")
        }
        return try table.records.enumerated().map { position, record in
            let (line, fields) = record
            guard let index = Int(fields[0]), let label = Int(fields[1]), let predicted = Int(fields[2]),
                  let probability = Double(fields[3]), index >= 0, probability >= 0, probability <= 1 else {
                throw ResultsError.malformed(path: path, line: line,
                                             message: "expected integers index ≥ 0, label, predicted and a probability in [0, 1]")
            }
            guard index == position else {
                throw ResultsError.malformed(path: path, line: line, message: "index \(index) where \(position) was expected: the file "
                                             + "lists every eval example once, in order (index = the example's position in the eval split)")
            }
            if let labelCount {
                for (name, value) in [("label", label), ("predicted", predicted)] where !(0..<labelCount).contains(value) {
                    throw ResultsError.malformed(path: path, line: line,
                                                 message: "\(name) is \(value); the task's labels are 0 to \(labelCount - 1)")
                }
            }
            return Prediction(index: index, label: label, predicted: predicted, probability: probability)
        }
    }
}
