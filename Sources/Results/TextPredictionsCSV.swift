import Foundation
import LoRABenchTensorIO

/// A language model's answer on one held-out example of a completion task, as `predictions.csv`
/// stores it for a task whose predictions are text.
public struct TextPrediction: Equatable, Sendable {
    /// The example's position in its split as loaded (the JSONL file's order, blank lines skipped).
    public var index: Int
    /// Whether the example was longer than the task's `max_length` and cut to fit.
    public var truncated: Bool
    /// The completion as written in the file.
    public var reference: String
    /// The greedy continuation, without the token that ended it.
    public var generated: String

    public init(index: Int, truncated: Bool, reference: String, generated: String) {
        self.index = index
        self.truncated = truncated
        self.reference = reference
        self.generated = generated
    }

    /// Exact match as the completion task scores it: the texts are equal once the whitespace
    /// around them is stripped (a completion usually starts with a space or a newline that
    /// says nothing about the answer).
    public var isExactMatch: Bool {
        generated.trimmingCharacters(in: .whitespacesAndNewlines) == reference.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// `runs/<id>/predictions.csv` of a completion task: `index,exact_match,truncated,reference,generated`
/// in index order (the example's position in the eval file, 1 when the generated text matches the
/// reference after stripping surrounding whitespace, 1 when the example was cut to `max_length`,
/// the reference completion, the generated text), one row per example of the eval split at the
/// final evaluation. Texts are quoted as RFC 4180 asks when they hold a comma, a quote or a line
/// break. A classifier's file is `PredictionsCSV`, a regression's `ScorePredictionsCSV`.
public enum TextPredictionsCSV {
    public static let columns = ["index", "exact_match", "truncated", "reference", "generated"]

    public static func text(_ predictions: [TextPrediction]) -> String {
        CSV.line(columns) + predictions.map {
            CSV.line([String($0.index), $0.isExactMatch ? "1" : "0", $0.truncated ? "1" : "0", $0.reference, $0.generated])
        }.joined()
    }

    /// Reads a file written by `text`; a damaged one names its line. The indices must run 0, 1,
    /// 2, …, and each `exact_match` must be what the texts give.
    public static func read(_ path: String) throws -> [TextPrediction] {
        let table = try CSVTable(contentsOf: path, producer: "lorabench run MANIFEST (task completion)")
        guard table.header == columns else {
            throw ResultsError.malformed(path: path, line: 1, message: "expected the columns \(columns.joined(separator: ","))")
        }
        return try table.records.enumerated().map { position, record in
            let (line, fields) = record
            guard let index = Int(fields[0]), ["0", "1"].contains(fields[1]), ["0", "1"].contains(fields[2]) else {
                throw ResultsError.malformed(path: path, line: line, message: "expected an integer index and 0 or 1 for exact_match and truncated")
            }
            guard index == position else {
                throw ResultsError.malformed(path: path, line: line, message: "index \(index) where \(position) was expected: the file "
                                             + "lists every eval example once, in order (index = the example's position in the eval split)")
            }
            let prediction = TextPrediction(index: index, truncated: fields[2] == "1", reference: fields[3], generated: fields[4])
            guard prediction.isExactMatch == (fields[1] == "1") else {
                throw ResultsError.malformed(path: path, line: line, message: "exact_match is \(fields[1]), but the texts "
                                             + (prediction.isExactMatch ? "match" : "differ") + " once surrounding whitespace is stripped")
            }
            return prediction
        }
    }
}
