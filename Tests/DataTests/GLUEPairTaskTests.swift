import Foundation
import Testing
@testable import LoRABenchTensorIO
@testable import LoRABenchData
import LoRABenchTestSupport

/// MRPC and STS-B as a task plug-in declares them: a binary label, and a score from 0 to 5 with
/// one output. The data are the real copies under `Data/` (their SOURCE.md gives the counts).
private let mrpc = GLUETask(name: "mrpc", labelCount: 2)
private let stsb = GLUETask(name: "stsb", labelCount: 1, target: .score(0...5))

@Suite struct GLUEPairTaskTests {
    @Test func mrpcLoadsSentencePairsWithTheirLabels() throws {
        let dev = try GLUE.load(mrpc, split: .dev, from: Fixtures.dataDirectory)
        #expect(dev.count == 408)
        #expect(dev.filter { $0.label == 0 }.count == 129 && dev.filter { $0.label == 1 }.count == 279)
        #expect(dev.allSatisfy { $0.textPair != nil && $0.score == nil })
        // The first two lines of dev.tsv; the quote that opens the second sentence is text.
        #expect(Array(dev.prefix(2)) == [
            GLUEExample(text: "He said the foodservice pie business doesn 't fit the company 's long-term growth strategy .",
                        textPair: "\" The foodservice pie business does not fit our long-term growth strategy .", label: 1),
            GLUEExample(text: "Magnarelli said Racicot hated the Iraqi regime and looked forward to using his long years of training in the war .",
                        textPair: "His wife said he was \" 100 percent behind George Bush \" and looked forward to using his years of training in the war .",
                        label: 0),
        ])
        #expect(try GLUE.load(mrpc, split: .train, from: Fixtures.dataDirectory).count == 3668)
    }

    @Test func stsbLoadsSentencePairsWithScoresFrom0To5() throws {
        let dev = try GLUE.load(stsb, split: .dev, from: Fixtures.dataDirectory)
        #expect(dev.count == 1500)
        #expect(Array(dev.prefix(2)) == [
            GLUEExample(text: "A man with a hard hat is dancing.", textPair: "A man wearing a hard hat is dancing.", label: 0, score: 5),
            GLUEExample(text: "A young child is riding a horse.", textPair: "A child is riding a horse.", label: 0, score: 4.75),
        ])
        let scores = dev.compactMap(\.score)
        #expect(scores.count == 1500 && scores.allSatisfy { (0...5).contains($0) } && dev.allSatisfy { $0.label == 0 && $0.textPair != nil })
        // SOURCE.md: dev scores run from 0 to 5 with mean 2.36.
        #expect(scores.min() == 0 && scores.max() == 5 && abs(scores.reduce(0, +) / 1500 - 2.36) < 0.005)
        #expect(try GLUE.load(stsb, split: .train, from: Fixtures.dataDirectory).count == 5749)
    }

    @Test func aMalformedScoreOrLabelNamesTheFileAndLine() throws {
        let directory = try ExperimentSupport.temporaryDirectory("glue-pairs")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/dev.tsv"
        for (score, reason) in [("about 4", "score 'about 4' is not a number from 0.0 to 5.0"),
                                ("5.5", "score '5.5' is not a number from 0.0 to 5.0"),
                                ("nan", "score 'nan' is not a number from 0.0 to 5.0")] {
            try AtomicFile.write("sentence1\tsentence2\tscore\na\tb\t3.8\nc\td\t\(score)\n", to: path)
            let error = try #require(throws: GLUEError.self) { try GLUE.loadTSV(path: path, target: stsb.target, labelCount: 1) }
            #expect(error.description == "\(path):3: \(reason)")
        }

        try AtomicFile.write("sentence1\tsentence2\tlabel\na\tb\t1\nc\td\t2\n", to: path)
        let label = try #require(throws: GLUEError.self) { try GLUE.loadTSV(path: path, labelCount: mrpc.labelCount) }
        #expect(label.description == "\(path):3: label '2' is not 0 or 1")
        let threeClasses = try #require(throws: GLUEError.self) {
            try AtomicFile.write("sentence1\tsentence2\tlabel\na\tb\t3\n", to: path)
            return try GLUE.loadTSV(path: path, labelCount: 3)
        }
        #expect(threeClasses.description == "\(path):2: label '3' is not an integer from 0 to 2")

        // A file of labels is not a score task's data, and the header says which column was expected.
        try AtomicFile.write("sentence1\tsentence2\tlabel\na\tb\t1\n", to: path)
        let header = try #require(throws: GLUEError.self) { try GLUE.loadTSV(path: path, target: stsb.target, labelCount: 1) }
        #expect(header.description == "\(path): header 'sentence1\tsentence2\tlabel' is neither 'sentence<TAB>score' "
                + "nor 'sentence1<TAB>sentence2<TAB>score'")
    }
}
