import Foundation
import LoRABenchKernels

/// Errors loading a WordPiece vocabulary; each names the file.
public enum WordPieceError: Error, CustomStringConvertible {
    case unreadableVocabulary(path: String, reason: String)
    case emptyVocabulary(path: String)
    case missingSpecialToken(path: String, token: String)

    public var description: String {
        switch self {
        case let .unreadableVocabulary(path, reason): return "\(path): cannot read the WordPiece vocabulary: \(reason)"
        case let .emptyVocabulary(path): return "\(path): the WordPiece vocabulary is empty"
        case let .missingSpecialToken(path, token): return "\(path): the WordPiece vocabulary has no \(token) token"
        }
    }
}

/// The BERT uncased WordPiece tokenizer, reproducing Hugging Face's
/// `BertTokenizer(vocab_file, do_lower_case=True)` id for id.
///
/// The pipeline is HF's, step by step, because any shortcut changes ids on some input:
/// 1. Special-token strings written in the text (`[CLS]`, `[SEP]`, `[UNK]`, `[PAD]`, `[MASK]`,
///    exact case) become their ids, as HF's added-token split does before normalising.
/// 2. `BasicTokenizer`: drop U+0000, U+FFFD and control characters; map whitespace to a space;
///    surround CJK ideographs with spaces; NFC; split on whitespace; per word, Python's `lower()`
///    (full case mapping, final sigma included), NFD and removal of non-spacing marks (Mn);
///    then split every punctuation character off into its own word.
/// 3. `WordpieceTokenizer`: greedy longest-match-first against the vocabulary, continuation
///    pieces prefixed with `##`; a word longer than 100 characters, or one that cannot be covered,
///    becomes a single `[UNK]`.
///
/// Python strings are sequences of code points, so everything here works on `Unicode.Scalar`s,
/// and vocabulary look-ups compare UTF-8 bytes: Swift's `String` equality would treat
/// canonically equivalent spellings (a Hangul syllable and its jamo) as one entry where HF does not.
/// Category tables come from the Swift runtime, whose Unicode version is newer than Python
/// 3.11's (14.0): a code point unassigned there is dropped by HF as a control character but
/// kept here (as `[UNK]`). Checked against transformers' Python tokenizer on every SST-2, CoLA
/// and RTE sentence (pairs truncated to many lengths): the ids are identical.
public struct WordPieceTokenizer: Sendable {
    /// The ids of one encoded sentence pair: `[CLS] a [SEP] b [SEP]`.
    public struct PairEncoding: Equatable, Sendable {
        public var inputIds: [Int]
        /// 0 for `[CLS]`, the first sentence and its `[SEP]`; 1 for the second sentence and the final `[SEP]`.
        public var tokenTypeIds: [Int]
    }

    /// HF's `max_input_chars_per_word`.
    public static let maxCharactersPerWord = 100

    public let vocabularyPath: String
    public let vocabularySize: Int
    public let clsId: Int
    public let sepId: Int
    public let unkId: Int
    public let padId: Int

    private let vocabulary: [[UInt8]: Int]
    private let tokensById: [String]
    /// Special-token spellings recognised in raw text, with their ids.
    private let specialTokens: [(scalars: [Unicode.Scalar], id: Int)]

    /// Loads `vocab.txt`: one token per line, the line number is the id (as HF's `load_vocab`,
    /// a repeated token keeps its last line's id).
    public init(vocabularyPath: String) throws {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: vocabularyPath))
        } catch {
            throw WordPieceError.unreadableVocabulary(path: vocabularyPath, reason: error.localizedDescription)
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw WordPieceError.unreadableVocabulary(path: vocabularyPath, reason: "not valid UTF-8")
        }
        // Python's text mode reads "\r\n" and "\r" as line ends too.
        var lines = text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
            .split(separator: "\n", omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() }
        guard !lines.isEmpty else { throw WordPieceError.emptyVocabulary(path: vocabularyPath) }

        var vocabulary: [[UInt8]: Int] = [:]
        for (id, line) in lines.enumerated() { vocabulary[Array(line.utf8)] = id }
        func id(of token: String) throws -> Int {
            guard let id = vocabulary[Array(token.utf8)] else {
                throw WordPieceError.missingSpecialToken(path: vocabularyPath, token: token)
            }
            return id
        }
        self.vocabularyPath = vocabularyPath
        self.vocabularySize = lines.count
        self.vocabulary = vocabulary
        self.tokensById = lines.map(String.init)
        self.clsId = try id(of: "[CLS]")
        self.sepId = try id(of: "[SEP]")
        self.unkId = try id(of: "[UNK]")
        self.padId = try id(of: "[PAD]")
        self.specialTokens = ["[CLS]", "[SEP]", "[UNK]", "[PAD]", "[MASK]"].compactMap { token in
            vocabulary[Array(token.utf8)].map { (Array(token.unicodeScalars), $0) }
        }
    }

    /// `[CLS] pieces [SEP]`, the pieces cut from the end so that the total is at most `maxLength`.
    public func encode(_ text: String, maxLength: Int? = nil) -> [Int] {
        var pieces = wordpieceIds(text)
        if let maxLength {
            precondition(maxLength >= 2, "maxLength \(maxLength) leaves no room for [CLS] and [SEP]")
            pieces = Array(pieces.prefix(maxLength - 2))
        }
        return [clsId] + pieces + [sepId]
    }

    /// `[CLS] a [SEP] b [SEP]` for two-sentence tasks, truncated as HF's `longest_first`: one piece
    /// at a time from the end of the longer side, from the second side when they are equally long.
    /// (This is the Python `BertTokenizer`'s rule, `BertTokenizerLegacy` in transformers 5. The
    /// Rust-backed `BertTokenizer` of transformers 5 splits an odd budget the other way when the
    /// first side is the shorter, so it can differ by one piece per side; at RTE's usual
    /// `maxLength` of 128 both agree on every pair.)
    public func encodePair(_ first: String, _ second: String, maxLength: Int? = nil) -> PairEncoding {
        var a = wordpieceIds(first)
        var b = wordpieceIds(second)
        if let maxLength {
            precondition(maxLength >= 3, "maxLength \(maxLength) leaves no room for [CLS] and two [SEP]")
            while a.count + b.count > maxLength - 3 {
                if a.count > b.count { a.removeLast() } else { b.removeLast() }
            }
        }
        return PairEncoding(
            inputIds: [clsId] + a + [sepId] + b + [sepId],
            tokenTypeIds: Array(repeating: 0, count: a.count + 2) + Array(repeating: 1, count: b.count + 1)
        )
    }

    /// The wordpieces of `text` as strings, without `[CLS]`/`[SEP]` (for inspection and tests).
    public func tokenize(_ text: String) -> [String] {
        wordpieceIds(text).map { tokensById[$0] }
    }

    /// The wordpiece ids of `text`, without `[CLS]`/`[SEP]`.
    public func wordpieceIds(_ text: String) -> [Int] {
        var ids: [Int] = []
        var plain: [Unicode.Scalar] = []
        let scalars = Array(text.unicodeScalars)
        var index = 0
        while index < scalars.count {
            if scalars[index] == "[", let special = specialTokens.first(where: { scalars[index...].starts(with: $0.scalars) }) {
                ids += plainTextIds(plain)
                plain.removeAll()
                ids.append(special.id)
                index += special.scalars.count
            } else {
                plain.append(scalars[index])
                index += 1
            }
        }
        return ids + plainTextIds(plain)
    }

    private func plainTextIds(_ scalars: [Unicode.Scalar]) -> [Int] {
        basicTokens(scalars).flatMap(wordpieces)
    }

    // MARK: BasicTokenizer

    /// HF `BasicTokenizer.tokenize` with `do_lower_case=True` and `tokenize_chinese_chars=True`.
    private func basicTokens(_ scalars: [Unicode.Scalar]) -> [[Unicode.Scalar]] {
        var cleaned = String.UnicodeScalarView()
        for scalar in scalars where scalar.value != 0 && scalar.value != 0xFFFD && !Self.isControl(scalar) {
            if Self.isCJKIdeograph(scalar) {
                cleaned.append(contentsOf: [" ", scalar, " "])
            } else {
                cleaned.append(Self.isWhitespace(scalar) ? " " : scalar)
            }
        }
        // Normalisation cannot change ASCII text, and skipping it makes typical English text much faster.
        let composed = cleaned.allSatisfy(\.isASCII) ? Array(cleaned) : Array(String(cleaned).precomposedStringWithCanonicalMapping.unicodeScalars)
        return Self.splitOnWhitespace(composed).flatMap { word in
            Self.splitOnPunctuation(Self.stripAccents(Self.pythonLowercased(word)))
        }
    }

    /// HF `_is_control`: categories C* except tab, newline and carriage return (which are whitespace).
    /// (ASCII is answered directly: the Unicode property look-ups dominate tokenizing time.)
    private static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        if scalar == "\t" || scalar == "\n" || scalar == "\r" { return false }
        if scalar.isASCII { return scalar.value < 0x20 || scalar.value == 0x7F }
        switch scalar.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned: return true
        default: return false
        }
    }

    /// HF `_is_whitespace`: space, tab, newline, carriage return and category Zs.
    private static func isWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.isASCII { return scalar == " " || scalar == "\t" || scalar == "\n" || scalar == "\r" }
        return scalar.properties.generalCategory == .spaceSeparator
    }

    /// HF `_is_chinese_char`: the CJK Unified Ideographs blocks and their extensions and
    /// compatibility blocks (not Japanese kana or Korean Hangul, which are written with spaces).
    private static func isCJKIdeograph(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F,
             0x2B740...0x2B81F, 0x2B820...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default:
            return false
        }
    }

    /// HF `_is_punctuation`: all non-alphanumeric printable ASCII (so `$`, `+`, `^`, `` ` `` count
    /// although Unicode calls them symbols) plus every Unicode P* category.
    private static func isPunctuation(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.isASCII {
            switch scalar.value {
            case 33...47, 58...64, 91...96, 123...126: return true
            default: return false
            }
        }
        switch scalar.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return true
        default:
            return false
        }
    }

    /// Python's `str.split()`: runs of whitespace separate words. After cleaning, the only
    /// whitespace left besides the space is U+2028/U+2029, which Python also splits on.
    private static func splitOnWhitespace(_ scalars: [Unicode.Scalar]) -> [[Unicode.Scalar]] {
        scalars.split(whereSeparator: isPythonWhitespace).map(Array.init)
    }

    private static func isPythonWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        scalar.isASCII ? (scalar.value == 0x20 || (0x09...0x0D).contains(scalar.value)) : scalar.properties.isWhitespace
    }

    /// Python's `str.lower()`: the full lowercase mapping of each code point, except that a
    /// capital sigma in final position (after a cased letter, not before one, ignoring
    /// case-ignorable characters) becomes final sigma `ς`. Swift's `lowercased()` lacks that rule.
    private static func pythonLowercased(_ word: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var result: [Unicode.Scalar] = []
        for (index, scalar) in word.enumerated() {
            if scalar.isASCII {
                result.append(("A"..."Z").contains(scalar) ? Unicode.Scalar(scalar.value + 32)! : scalar)
                continue
            }
            guard scalar.value == 0x3A3 else {
                result.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
                continue
            }
            let before = word[..<index].last(where: { !$0.properties.isCaseIgnorable })
            let after = word[(index + 1)...].first(where: { !$0.properties.isCaseIgnorable })
            let isFinal = before?.properties.isCased == true && after?.properties.isCased != true
            result.append(isFinal ? "\u{3C2}" : "\u{3C3}")
        }
        return result
    }

    /// HF `_run_strip_accents`: NFD, then drop non-spacing marks (so `é` becomes `e`).
    private static func stripAccents(_ word: [Unicode.Scalar]) -> [Unicode.Scalar] {
        if word.allSatisfy(\.isASCII) { return word }
        return String(String.UnicodeScalarView(word)).decomposedStringWithCanonicalMapping.unicodeScalars
            .filter { $0.properties.generalCategory != .nonspacingMark }
    }

    /// HF `_run_split_on_punc`: each punctuation character becomes a word of its own. A word that
    /// was only accents is empty now and yields nothing; HF's later whitespace re-split is folded in.
    private static func splitOnPunctuation(_ word: [Unicode.Scalar]) -> [[Unicode.Scalar]] {
        var words: [[Unicode.Scalar]] = []
        var current: [Unicode.Scalar] = []
        for scalar in word {
            if isPunctuation(scalar) || isPythonWhitespace(scalar) {
                if !current.isEmpty { words.append(current) }
                current.removeAll()
                if isPunctuation(scalar) { words.append([scalar]) }
            } else {
                current.append(scalar)
            }
        }
        if !current.isEmpty { words.append(current) }
        return words
    }

    // MARK: WordpieceTokenizer

    /// HF `WordpieceTokenizer.tokenize` for one word: greedy longest match first, `##` marking
    /// pieces that continue a word; all-or-nothing, so one uncovered tail makes the word `[UNK]`.
    private func wordpieces(_ word: [Unicode.Scalar]) -> [Int] {
        guard word.count <= Self.maxCharactersPerWord else { return [unkId] }
        let utf8 = word.map { Array(String($0).utf8) }
        var ids: [Int] = []
        var start = 0
        while start < word.count {
            var end = word.count
            var match: Int?
            while start < end {
                let candidate = (start > 0 ? Array("##".utf8) : []) + utf8[start..<end].joined()
                if let id = vocabulary[candidate] {
                    match = id
                    break
                }
                end -= 1
            }
            guard let match else { return [unkId] }
            ids.append(match)
            start = end
        }
        return ids
    }
}
