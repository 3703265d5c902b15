import Foundation
import Testing
@testable import LoRABenchTensorIO
@testable import LoRABenchResults

/// A regression's predictions.csv, and `RunPredictions` telling it from a classifier's.
@Suite struct ScorePredictionsTests {
    static func temporaryFile(_ text: String) throws -> String {
        let path = NSTemporaryDirectory() + "lorabench-score-predictions-\(UUID().uuidString).csv"
        try AtomicFile.write(text, to: path)
        return path
    }

    @Test func aFileReadsBackAsWrittenAndByItsHeader() throws {
        let predictions = [ScorePrediction(index: 0, score: 5, predicted: 4.25), ScorePrediction(index: 1, score: 3.8, predicted: .nan)]
        #expect(ScorePredictionsCSV.text(predictions) == "index,score,predicted\n0,5,4.25\n1,3.8,nan\n")
        let path = try Self.temporaryFile(ScorePredictionsCSV.text(predictions))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let read = try ScorePredictionsCSV.read(path)
        #expect(read[0] == predictions[0] && read[1].index == 1 && read[1].score == 3.8 && read[1].predicted.isNaN)
        guard case let .scores(scores) = try RunPredictions.read(path) else { Issue.record("read as classes"); return }
        #expect(scores.count == 2)

        let classes = try Self.temporaryFile(PredictionsCSV.text([Prediction(index: 0, label: 1, predicted: 0, probability: 0.5)]))
        defer { try? FileManager.default.removeItem(atPath: classes) }
        #expect(try RunPredictions.read(classes) == .classes([Prediction(index: 0, label: 1, predicted: 0, probability: 0.5)]))
        #expect(try RunPredictions.read(classes).kind == .classification)
    }

    @Test func aDamagedFileNamesItsLine() throws {
        let badScore = try Self.temporaryFile("index,score,predicted\n0,5,4\n1,nan,3\n")
        let shifted = try Self.temporaryFile("index,score,predicted\n1,5,4\n")
        let neither = try Self.temporaryFile("index,target,output\n0,5,4\n")
        defer { for path in [badScore, shifted, neither] { try? FileManager.default.removeItem(atPath: path) } }
        #expect(throws: ResultsError.malformed(path: badScore, line: 3, message: "expected an integer index ≥ 0, a finite score and a predicted number")) {
            try RunPredictions.read(badScore)
        }
        let error = try #require(throws: ResultsError.self) { try ScorePredictionsCSV.read(shifted) }
        #expect(error.description.hasPrefix("\(shifted):2: index 1 where 0 was expected"))
        #expect(throws: ResultsError.malformed(path: neither, line: 1, message: "expected the columns index,label,predicted,probability "
                                               + "(a classifier's) or index,score,predicted (a regression's)")) {
            try RunPredictions.read(neither)
        }
    }
}
