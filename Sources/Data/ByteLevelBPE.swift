import Foundation

/// Errors building a byte-level BPE tokenizer, decoding, or rendering a chat. Each names where
/// the data came from (`source`: a GGUF file and its metadata key) and what is wrong.
public enum ByteLevelBPEError: Error, Equatable, CustomStringConvertible {
    case invalidVocabulary(source: String, problem: String)
    case unknownTokenID(id: Int, vocabularySize: Int)
    case unsupportedChatTemplate(source: String, template: String)

    public var description: String {
        switch self {
        case let .invalidVocabulary(source, problem): return "\(source): \(problem)"
        case let .unknownTokenID(id, vocabularySize): return "token id \(id) is outside the vocabulary (0..<\(vocabularySize))"
        case let .unsupportedChatTemplate(source, template):
            let excerpt = template.count > 120 ? String(template.prefix(120)) + "…" : template
            return "\(source): the chat template is not a ChatML form this code renders (the SmolLM2 template, or plain ChatML): \(excerpt)"
        }
    }
}

/// GPT-2's byte-level BPE as Hugging Face `tokenizers` runs it for a GGUF `gpt2` tokenizer
/// (transformers' `GGUFGPTConverter`: `BPE(vocab, merges)`, no normalizer,
/// `ByteLevel(add_prefix_space=False, use_regex=True)`, the ByteLevel decoder):
///
/// 1. Control tokens (token type 3) written in the text are matched whole, leftmost and longest
///    first, before anything else, as `tokenizers`' added-vocabulary split does; the text
///    between them is tokenized alone.
/// 2. The GPT-2 pattern `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
///    splits each piece into words (`GPT2Split`: the pattern by hand over Unicode scalars, which
///    is what the regex engine matches on).
/// 3. Each word's UTF-8 bytes become one symbol per byte (a byte the vocabulary lacks is
///    skipped), and merges are applied lowest rank first (leftmost on a tie) until none applies;
///    each symbol is a vocabulary id.
///
/// No token is added (the SmolLM2 file says `add_bos_token = false`). The GGUF file's
/// pre-tokenizer name `smollm` makes llama.cpp also split digits off first; transformers does
/// not, and its ids are what PyTorch trains on, so this follows transformers.
public struct ByteLevelBPE: Sendable {
    /// The special-token ids the file declares (`tokenizer.ggml.*_token_id`).
    public struct SpecialTokens: Sendable, Equatable {
        public var bos: Int?
        public var eos: Int?
        public var unknown: Int?
        public var padding: Int?

        public init(bos: Int? = nil, eos: Int? = nil, unknown: Int? = nil, padding: Int? = nil) {
            self.bos = bos
            self.eos = eos
            self.unknown = unknown
            self.padding = padding
        }
    }

    /// llama.cpp's `LLAMA_TOKEN_TYPE_CONTROL` (gguf-py `TokenType.CONTROL`).
    public static let controlTokenType = 3

    /// The vocabulary in byte-level spelling (a space is "Ġ"), indexed by id.
    public let tokens: [String]
    public let specialTokens: SpecialTokens
    /// Ids of the control tokens, matched whole in the text.
    public let controlTokenIDs: [Int]

    public var vocabularySize: Int { tokens.count }

    /// `left << 32 | right` → the merge's rank and the id it produces.
    private let merges: [UInt64: Merge]
    /// The id of each byte's one-character token; nil for the bytes the vocabulary lacks
    /// (SmolLM2's lacks 21: six ASCII controls such as U+0004, and lead bytes 0xC0, 0xC1, 0xF1,
    /// 0xF2, 0xF5–0xFF).
    private let byteTokenIDs: [Int32?]
    /// Control tokens as scalars, longest first (leftmost-longest matching).
    private let controlTokens: [ControlToken]
    /// Each id's bytes, for decoding.
    private let tokenBytes: [[UInt8]]

    private struct Merge: Sendable {
        var rank: Int32
        var merged: Int32
    }

    private struct ControlToken: Sendable {
        var scalars: [Unicode.Scalar]
        var id: Int
    }

    /// - Parameters:
    ///   - tokens: the vocabulary in byte-level spelling (`tokenizer.ggml.tokens`), id = position.
    ///   - merges: `"left right"` pairs (`tokenizer.ggml.merges`), rank = position.
    ///   - tokenTypes: one per token (`tokenizer.ggml.token_type`); type 3 tokens are matched whole.
    ///   - source: names the data in errors, e.g. the GGUF file's path.
    public init(tokens: [String], merges: [String], tokenTypes: [Int], specialTokens: SpecialTokens, source: String) throws {
        guard !tokens.isEmpty, tokens.count < Int(Int32.max) else {
            throw ByteLevelBPEError.invalidVocabulary(source: source, problem: "tokenizer.ggml.tokens has \(tokens.count) tokens")
        }
        guard tokenTypes.count == tokens.count else {
            throw ByteLevelBPEError.invalidVocabulary(
                source: source, problem: "tokenizer.ggml.token_type has \(tokenTypes.count) entries for \(tokens.count) tokens")
        }
        var ids: [String: Int32] = [:]
        ids.reserveCapacity(tokens.count)
        for (id, token) in tokens.enumerated() {
            // Swift's String equality is canonical equivalence; byte-level spellings never contain
            // combining marks, but a duplicate by either measure is ambiguous, so it is refused.
            if let earlier = ids.updateValue(Int32(id), forKey: token) {
                throw ByteLevelBPEError.invalidVocabulary(
                    source: source, problem: "tokenizer.ggml.tokens[\(id)] '\(token)' repeats token \(earlier)")
            }
        }
        for (name, id) in [("bos", specialTokens.bos), ("eos", specialTokens.eos), ("unknown", specialTokens.unknown),
                           ("padding", specialTokens.padding)] {
            if let id, !tokens.indices.contains(id) {
                throw ByteLevelBPEError.invalidVocabulary(source: source, problem: "the \(name) token id \(id) is outside the \(tokens.count) tokens")
            }
        }

        let byteTokenIDs = (0...255).map { byte in ids[String(Character(ByteLevelAlphabet.character(for: UInt8(byte))))] }

        var table: [UInt64: Merge] = [:]
        table.reserveCapacity(merges.count)
        for (rank, merge) in merges.enumerated() {
            // Split on the scalar U+0020, not on Characters: a mark after the space would join it.
            let parts = merge.unicodeScalars.split(separator: " ", omittingEmptySubsequences: false)
                .map { String(String.UnicodeScalarView($0)) }
            guard parts.count == 2, let left = ids[parts[0]], let right = ids[parts[1]], let merged = ids[parts[0] + parts[1]] else {
                throw ByteLevelBPEError.invalidVocabulary(
                    source: source,
                    problem: "tokenizer.ggml.merges[\(rank)] '\(merge)' is not two vocabulary tokens separated by one space whose concatenation is a token")
            }
            let key = UInt64(UInt32(left)) << 32 | UInt64(UInt32(right))
            // tokenizers keeps the first (lowest-rank) entry of a repeated pair.
            if table[key] == nil { table[key] = Merge(rank: Int32(rank), merged: merged) }
        }

        let controlIDs = tokenTypes.indices.filter { tokenTypes[$0] == Self.controlTokenType && !tokens[$0].isEmpty }
        self.tokens = tokens
        self.specialTokens = specialTokens
        self.controlTokenIDs = controlIDs
        self.merges = table
        self.byteTokenIDs = byteTokenIDs
        self.controlTokens = controlIDs.map { ControlToken(scalars: Array(tokens[$0].unicodeScalars), id: $0) }
            .sorted { $0.scalars.count > $1.scalars.count }
        self.tokenBytes = tokens.map(ByteLevelAlphabet.bytes(of:))
    }

    // MARK: encoding

    /// The ids of `text`, with no token added.
    public func encode(_ text: String) -> [Int] {
        let scalars = Array(text.unicodeScalars)
        var ids: [Int] = []
        var pieceStart = 0, position = 0
        while position < scalars.count {
            if let control = controlToken(at: position, in: scalars) {
                encodeOrdinary(scalars[pieceStart..<position], into: &ids)
                ids.append(control.id)
                position += control.scalars.count
                pieceStart = position
            } else {
                position += 1
            }
        }
        encodeOrdinary(scalars[pieceStart..<scalars.count], into: &ids)
        return ids
    }

    private func controlToken(at position: Int, in scalars: [Unicode.Scalar]) -> ControlToken? {
        controlTokens.first { token in
            position + token.scalars.count <= scalars.count && scalars[position..<position + token.scalars.count].elementsEqual(token.scalars)
        }
    }

    private func encodeOrdinary(_ scalars: ArraySlice<Unicode.Scalar>, into ids: inout [Int]) {
        var symbols: [Int32] = []
        for word in GPT2Split.words(scalars) {
            symbols.removeAll(keepingCapacity: true)
            // A byte without a token is skipped, as `tokenizers`' BPE skips a character missing
            // from the vocabulary when the model has no unknown token (GPT2Converter sets none);
            // its neighbours then become adjacent and may merge.
            for scalar in scalars[word] {
                for byte in UTF8.encode(scalar)! {
                    if let id = byteTokenIDs[Int(byte)] { symbols.append(id) }
                }
            }
            applyMerges(&symbols)
            ids.append(contentsOf: symbols.lazy.map(Int.init))
        }
    }

    /// Merges the adjacent pair of lowest rank (leftmost on a tie) until no pair has a merge:
    /// the order `tokenizers`' `Word::merge_all` pops from its priority queue. Only the two pairs
    /// beside a merge change, so their ranks are the only ones looked up again.
    private func applyMerges(_ symbols: inout [Int32]) {
        guard symbols.count > 1 else { return }
        var pairs = (0..<symbols.count - 1).map { merges[pairKey(symbols[$0], symbols[$0 + 1])] }
        while true {
            var best: Int?
            for index in pairs.indices {
                guard let merge = pairs[index] else { continue }
                if best == nil || merge.rank < pairs[best!]!.rank { best = index }
            }
            guard let index = best, let merge = pairs[index] else { return }
            symbols[index] = merge.merged
            symbols.remove(at: index + 1)
            pairs.remove(at: index)
            if index < pairs.count { pairs[index] = merges[pairKey(symbols[index], symbols[index + 1])] }
            if index > 0 { pairs[index - 1] = merges[pairKey(symbols[index - 1], symbols[index])] }
        }
    }

    @inline(__always)
    private func pairKey(_ left: Int32, _ right: Int32) -> UInt64 { UInt64(UInt32(left)) << 32 | UInt64(UInt32(right)) }

    // MARK: decoding

    /// The text of `ids`, control tokens included, as `tokenizers`' ByteLevel decoder gives it
    /// (`decode(ids, clean_up_tokenization_spaces=False)`): each token's bytes concatenated, and
    /// invalid UTF-8 replaced by U+FFFD.
    public func decode(_ ids: [Int]) throws -> String {
        var bytes: [UInt8] = []
        for id in ids {
            guard tokens.indices.contains(id) else { throw ByteLevelBPEError.unknownTokenID(id: id, vocabularySize: tokens.count) }
            bytes.append(contentsOf: tokenBytes[id])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// GPT-2's reversible map between bytes and printable characters (`bytes_to_unicode` in
/// openai/gpt-2 encoder.py): the printable Latin-1 bytes `!`…`~`, `¡`…`¬`, `®`…`ÿ` stand for
/// themselves; the other 68 bytes, in increasing order, become U+0100, U+0101, ….
enum ByteLevelAlphabet {
    private static func isPrintable(_ byte: UInt8) -> Bool {
        (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
    }

    static let characters: [Unicode.Scalar] = {
        var next: UInt32 = 0x100
        return (0...255).map { (byte: Int) -> Unicode.Scalar in
            if isPrintable(UInt8(byte)) { return Unicode.Scalar(UInt8(byte)) }
            defer { next += 1 }
            return Unicode.Scalar(next)!
        }
    }()

    private static let bytesByCharacter: [Unicode.Scalar: UInt8] =
        Dictionary(uniqueKeysWithValues: characters.enumerated().map { ($0.element, UInt8($0.offset)) })

    static func character(for byte: UInt8) -> Unicode.Scalar { characters[Int(byte)] }

    /// A token's bytes: each character mapped back to its byte, or, when some character is not
    /// in the alphabet (a control token written with a space, say), the token's own UTF-8 bytes,
    /// as `tokenizers`' ByteLevel decoder does.
    static func bytes(of token: String) -> [UInt8] {
        var bytes: [UInt8] = []
        for scalar in token.unicodeScalars {
            guard let byte = bytesByCharacter[scalar] else { return Array(token.utf8) }
            bytes.append(byte)
        }
        return bytes
    }
}

/// The GPT-2 split pattern, `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`,
/// matched by hand: at each position the first alternative that matches wins, and each `+` is
/// greedy. `\s` is Unicode White_Space (Oniguruma's and Swift's `isWhitespace`), `\p{L}` and
/// `\p{N}` the letter and number general categories.
enum GPT2Split {
    private enum Kind { case letter, number, whitespace, other }

    private static func kind(_ scalar: Unicode.Scalar) -> Kind {
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return .letter
        case .decimalNumber, .letterNumber, .otherNumber: return .number
        default: return scalar.properties.isWhitespace ? .whitespace : .other
        }
    }

    /// The words of `scalars`, as index ranges into it, in order; together they cover it.
    static func words(_ scalars: ArraySlice<Unicode.Scalar>) -> [Range<Int>] {
        let kinds = scalars.map(kind)
        let start = scalars.startIndex, end = scalars.endIndex
        func kindAt(_ index: Int) -> Kind { kinds[index - start] }
        func run(of wanted: Kind, from index: Int) -> Int {
            var cursor = index
            while cursor < end, kindAt(cursor) == wanted { cursor += 1 }
            return cursor
        }

        var words: [Range<Int>] = []
        var index = start
        while index < end {
            let length = contractionLength(scalars, at: index)
            if length > 0 {
                words.append(index..<index + length)
                index += length
                continue
            }
            // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: an optional space, then a run of one kind.
            let afterSpace = scalars[index] == " " && index + 1 < end ? index + 1 : index
            let runKind = kindAt(afterSpace)
            if runKind != .whitespace {
                let stop = run(of: runKind, from: afterSpace)
                words.append(index..<stop)
                index = stop
                continue
            }
            // `\s+(?!\S)` gives back the run's last whitespace when a non-space follows (that one
            // then prefixes the next word); a run of one followed by a non-space falls to `\s+`.
            let stop = run(of: .whitespace, from: index)
            let wordEnd = stop < end && stop - index > 1 ? stop - 1 : stop
            words.append(index..<wordEnd)
            index = wordEnd
        }
        return words
    }

    /// 2 or 3 when one of `'s 't 're 've 'm 'll 'd` (case-sensitive) starts at `index`, else 0.
    private static func contractionLength(_ scalars: ArraySlice<Unicode.Scalar>, at index: Int) -> Int {
        guard scalars[index] == "'", index + 1 < scalars.endIndex else { return 0 }
        let next = scalars[index + 1]
        if next == "s" || next == "t" || next == "m" || next == "d" { return 2 }
        guard index + 2 < scalars.endIndex else { return 0 }
        let third = scalars[index + 2]
        if (next == "r" && third == "e") || (next == "v" && third == "e") || (next == "l" && third == "l") { return 3 }
        return 0
    }
}
