import Foundation
import Testing
@testable import LoRABenchTensorIO
@testable import LoRABenchData
import LoRABenchTestSupport

/// A tokenizer over a small hand-written vocabulary (written to a temporary file, removed once loaded).
func makeTinyTokenizer() throws -> WordPieceTokenizer {
    let tokens = [
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
        "the", "cafe", "naive", "un", "##aff", "##able", "a", "##a", "b", "##b",
        "!", ",", ".", "'", "$", "«", "»", "中", "文", "οδος", "σα", "\u{AC01}",
    ]
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lorabench-vocab-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: directory) }
    let path = directory.appendingPathComponent("vocab.txt").path
    try AtomicFile.write(tokens.joined(separator: "\n") + "\n", to: path)
    return try WordPieceTokenizer(vocabularyPath: path)
}

@Suite("WordPiece tokenizer")
struct TokenizerTests {
    private struct FixtureFile: Decodable {
        struct Case: Decodable {
            var text: String
            var input_ids: [Int]
        }
        var cases: [Case]
    }

    @Test("ids equal Hugging Face BertTokenizer for every fixture case")
    func fixtureParity() throws {
        let files = try minilmFilesOrSkip()
        let tokenizer = try WordPieceTokenizer(vocabularyPath: files.vocabularyPath)
        #expect(tokenizer.vocabularySize == 30522)
        let fixturePath = Fixtures.directory(environment: "MINILM_FIXTURES_DIR", default: "minilm")
            .appendingPathComponent("tokenizer.json").path
        let fixtures = try JSONDecoder().decode(FixtureFile.self, from: Data(contentsOf: URL(fileURLWithPath: fixturePath)))
        #expect(!fixtures.cases.isEmpty, "no cases in \(fixturePath)")
        for fixture in fixtures.cases {
            #expect(tokenizer.encode(fixture.text) == fixture.input_ids, "text: \(fixture.text)")
        }
    }

    @Test("lower-cases and strips accents")
    func accents() throws {
        let tokenizer = try makeTinyTokenizer()
        #expect(tokenizer.tokenize("Café NAÏVE") == ["cafe", "naive"])
        #expect(tokenizer.tokenize("Cafe\u{301}") == ["cafe"])
    }

    @Test("lower-cases a final capital sigma to ς, as Python does")
    func finalSigma() throws {
        let tokenizer = try makeTinyTokenizer()
        #expect(tokenizer.tokenize("ΟΔΟΣ ΣΑ") == ["οδος", "σα"])
    }

    @Test("splits CJK ideographs into single characters")
    func chineseCharacters() throws {
        let tokenizer = try makeTinyTokenizer()
        #expect(tokenizer.tokenize("a中文b") == ["a", "中", "文", "b"])
    }

    @Test("splits ASCII symbols and Unicode punctuation off words")
    func punctuation() throws {
        let tokenizer = try makeTinyTokenizer()
        #expect(tokenizer.tokenize("the,the!") == ["the", ",", "the", "!"])
        #expect(tokenizer.tokenize("a$b") == ["a", "$", "b"])
        #expect(tokenizer.tokenize("«the»") == ["«", "the", "»"])
    }

    @Test("drops control characters and splits on any whitespace")
    func cleaning() throws {
        let tokenizer = try makeTinyTokenizer()
        #expect(tokenizer.tokenize("\u{0}the\u{FFFD}\u{200B}\tthe\nthe\u{A0}the\u{2028}the") == ["the", "the", "the", "the", "the"])
        #expect(tokenizer.wordpieceIds(" \n\t ").isEmpty)
    }

    @Test("greedy longest match with ## continuation; an uncovered word is [UNK]")
    func continuation() throws {
        let tokenizer = try makeTinyTokenizer()
        #expect(tokenizer.tokenize("unaffable") == ["un", "##aff", "##able"])
        #expect(tokenizer.tokenize("abb") == ["a", "##b", "##b"])
        #expect(tokenizer.tokenize("unaffablex the") == ["[UNK]", "the"])
    }

    @Test("a word over 100 characters is [UNK]")
    func longWords() throws {
        let tokenizer = try makeTinyTokenizer()
        #expect(tokenizer.tokenize(String(repeating: "a", count: 100)) == ["a"] + Array(repeating: "##a", count: 99))
        #expect(tokenizer.tokenize(String(repeating: "a", count: 101)) == ["[UNK]"])
    }

    @Test("vocabulary look-ups are exact code points, not canonical equivalence")
    func exactLookups() throws {
        let tokenizer = try makeTinyTokenizer()
        // NFD turns the Hangul syllable into jamo, which HF then looks up verbatim and misses.
        #expect(tokenizer.tokenize("\u{AC01}") == ["[UNK]"])
    }

    @Test("special-token spellings in the text map to their ids")
    func specialTokensInText() throws {
        let tokenizer = try makeTinyTokenizer()
        #expect(tokenizer.tokenize("the [SEP]the [MASK]") == ["the", "[SEP]", "the", "[MASK]"])
        #expect(tokenizer.tokenize("[sep]") == ["[UNK]", "[UNK]", "[UNK]"])
    }

    @Test("encode adds [CLS] and [SEP] and truncates the pieces to fit maxLength")
    func truncation() throws {
        let tokenizer = try makeTinyTokenizer()
        let the = 5
        #expect(tokenizer.encode("the the the the") == [2, the, the, the, the, 3])
        #expect(tokenizer.encode("the the the the", maxLength: 4) == [2, the, the, 3])
        #expect(tokenizer.encode("the", maxLength: 8) == [2, the, 3])
        #expect(tokenizer.encode("", maxLength: 2) == [2, 3])
    }

    @Test("pairs: [CLS] a [SEP] b [SEP], token types 0 then 1, longest_first truncation")
    func pairs() throws {
        let tokenizer = try makeTinyTokenizer()
        let (the, cafe) = (5, 6)
        let plain = tokenizer.encodePair("the", "cafe cafe")
        #expect(plain.inputIds == [2, the, 3, cafe, cafe, 3])
        #expect(plain.tokenTypeIds == [0, 0, 0, 1, 1, 1])

        let longerFirst = tokenizer.encodePair("the the the", "cafe", maxLength: 6)
        #expect(longerFirst.inputIds == [2, the, the, 3, cafe, 3])
        #expect(longerFirst.tokenTypeIds == [0, 0, 0, 0, 1, 1])

        // Equal lengths: HF removes from the second sequence first.
        let tie = tokenizer.encodePair("the the", "cafe cafe", maxLength: 6)
        #expect(tie.inputIds == [2, the, the, 3, cafe, 3])

        let both = tokenizer.encodePair("the the the the", "cafe cafe cafe cafe", maxLength: 7)
        #expect(both.inputIds == [2, the, the, 3, cafe, cafe, 3])
    }

    @Test("a missing or empty vocabulary is an error naming the file")
    func vocabularyErrors() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lorabench-vocab-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let missing = directory.appendingPathComponent("vocab.txt").path
        #expect {
            try WordPieceTokenizer(vocabularyPath: missing)
        } throws: { error in
            String(describing: error).contains(missing)
        }

        let empty = directory.appendingPathComponent("empty-vocab.txt").path
        try AtomicFile.write("", to: empty)
        #expect {
            try WordPieceTokenizer(vocabularyPath: empty)
        } throws: { error in
            String(describing: error).contains(empty) && String(describing: error).contains("empty")
        }

        let noSpecials = directory.appendingPathComponent("no-specials.txt").path
        try AtomicFile.write("the\ncafe\n", to: noSpecials)
        #expect {
            try WordPieceTokenizer(vocabularyPath: noSpecials)
        } throws: { error in
            String(describing: error).contains(noSpecials)
        }
    }
}
