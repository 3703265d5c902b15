import Foundation
import Testing
import LoRABenchTensorIO
@testable import LoRABenchData
import LoRABenchInterop
import LoRABenchTestSupport

@Suite("byte-level BPE and ChatML: SmolLM2's tokenizer against transformers")
struct ByteLevelBPEParityTests {
    private struct Fixture: Decodable {
        struct Case: Decodable {
            var text: String
            var input_ids: [Int]
            var tokens: [String]
            var decoded: String?
        }
        struct Message: Decodable {
            var role: String
            var content: String
        }
        struct Chat: Decodable {
            var messages: [Message]
            var add_generation_prompt: Bool
            var rendered: String
            var input_ids: [Int]
        }
        var cases: [Case]
        var chat_template: Chat
    }

    private static func fixtures() throws -> [(name: String, fixture: Fixture)] {
        try SmolLM2.cases(kind: "tokenizer").map { folder in
            (folder.lastPathComponent, try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: folder.appendingPathComponent("case.json"))))
        }
    }

    @Test("every fixture text gives transformers' input_ids and tokens, and decodes back")
    func texts() throws {
        let cases = try Self.fixtures()
        #expect(!cases.isEmpty, "no tokenizer case in \(SmolLM2.fixturesDirectory.path)")
        let tokenizer = try ByteLevelBPE(gguf: SmolLM2.ggufOrSkip())
        #expect(tokenizer.vocabularySize == 49152)
        #expect(tokenizer.controlTokenIDs == Array(0...16))
        #expect(tokenizer.specialTokens == ByteLevelBPE.SpecialTokens(bos: 1, eos: 2, unknown: 0, padding: 2))
        for (name, fixture) in cases {
            for example in fixture.cases {
                let ids = tokenizer.encode(example.text)
                #expect(ids == example.input_ids, "\(name): \(example.text.debugDescription)")
                #expect(ids.map { tokenizer.tokens[$0] } == example.tokens, "\(name): tokens of \(example.text.debugDescription)")
                #expect(try tokenizer.decode(example.input_ids) == example.decoded ?? example.text, "\(name): decoding \(example.text.debugDescription)")
            }
        }
    }

    @Test("the conversation renders with the file's ChatML template and tokenizes exactly")
    func conversation() throws {
        let cases = try Self.fixtures()
        #expect(!cases.isEmpty)
        let file = try SmolLM2.ggufOrSkip()
        let tokenizer = try ByteLevelBPE(gguf: file)
        let template = try ChatMLTemplate(gguf: file)
        #expect(template.defaultSystemPrompt == "You are a helpful AI assistant named SmolLM, trained by Hugging Face")
        for (name, fixture) in cases {
            let chat = fixture.chat_template
            let rendered = template.render(chat.messages.map { ChatMessage(role: $0.role, content: $0.content) },
                                           addGenerationPrompt: chat.add_generation_prompt)
            #expect(rendered == chat.rendered, "\(name)")
            #expect(tokenizer.encode(rendered) == chat.input_ids, "\(name)")
        }
    }

    @Test("a decoded id outside the vocabulary is an error naming it")
    func unknownID() throws {
        let tokenizer = try ByteLevelBPE(gguf: SmolLM2.ggufOrSkip())
        #expect(throws: ByteLevelBPEError.unknownTokenID(id: 49152, vocabularySize: 49152)) { try tokenizer.decode([1, 49152]) }
    }
}

@Suite("byte-level BPE on a small vocabulary")
struct ByteLevelBPETests {
    /// The 256 byte tokens in byte order, then the merges' products.
    private static let byteTokens = (0...255).map { String(Character(ByteLevelAlphabet.character(for: UInt8($0)))) }

    private static func tokenizer(extra: [String], merges: [String], control: [String] = []) throws -> ByteLevelBPE {
        let tokens = control + byteTokens + extra
        let types = control.map { _ in ByteLevelBPE.controlTokenType } + Array(repeating: 1, count: byteTokens.count + extra.count)
        return try ByteLevelBPE(tokens: tokens, merges: merges, tokenTypes: types, specialTokens: .init(), source: "test")
    }

    @Test("merges apply lowest rank first, control tokens split the text whole, and bytes round-trip")
    func merging() throws {
        let bpe = try Self.tokenizer(extra: ["ab", "bc", "abc", "Ġab"], merges: ["b c", "a b", "Ġ ab", "a bc"], control: ["<s>", "<s>x"])
        let id = { (token: String) in bpe.tokens.firstIndex(of: token)! }
        // "abc": "b c" (rank 0) beats "a b" (rank 1), then "a bc".
        #expect(bpe.encode("abc") == [id("abc")])
        #expect(bpe.encode(" ab") == [id("Ġab")])
        // Leftmost-longest control tokens: "<s>x" wins over "<s>"; a control token never merges with its neighbours.
        #expect(bpe.encode("ab<s>xab<s>") == [id("ab"), id("<s>x"), id("ab"), id("<s>")])
        let text = "é 東京 😀\t\n"
        #expect(try bpe.decode(bpe.encode(text)) == text)
        #expect(try bpe.decode([id("Ã")]) == "\u{FFFD}", "a lone lead byte decodes to U+FFFD, as from_utf8_lossy does")
    }

    @Test("a byte the vocabulary lacks is skipped, as tokenizers' BPE without an unknown token skips it, and its neighbours may merge")
    func missingByte() throws {
        // U+0004 is byte 4, spelled "Ą"; with "!" and "?" it makes one word of [^\s\p{L}\p{N}]+.
        let tokens = Self.byteTokens.filter { $0 != "Ą" } + ["!?"]
        let bpe = try ByteLevelBPE(tokens: tokens, merges: ["! ?"], tokenTypes: Array(repeating: 1, count: tokens.count),
                                   specialTokens: .init(), source: "test")
        #expect(bpe.encode("!\u{4}?") == [tokens.firstIndex(of: "!?")!])
    }

    @Test("the GPT-2 pattern: contractions, optional space, whitespace runs that give their last space to the next word")
    func split() {
        func words(_ text: String) -> [String] {
            let scalars = Array(text.unicodeScalars)
            return GPT2Split.words(scalars[...]).map { String(String.UnicodeScalarView(scalars[$0])) }
        }
        #expect(words("it's") == ["it", "'s"])
        #expect(words("IT'S we'll") == ["IT", "'", "S", " we", "'ll"])
        #expect(words("  1") == [" ", " 1"])
        #expect(words("a  \n b") == ["a", "  \n", " b"])
        #expect(words("x\t") == ["x", "\t"])
        #expect(words("x \u{00A0}y") == ["x", " ", "\u{00A0}", "y"], "only U+0020 is the optional space")
        #expect(words("?! ...½") == ["?!", " ...", "½"])
    }

    @Test("a malformed vocabulary is an error naming the source and the entry")
    func malformed() {
        let types = Array(repeating: 1, count: Self.byteTokens.count)
        #expect(throws: ByteLevelBPEError.invalidVocabulary(source: "f.gguf", problem: "tokenizer.ggml.merges[0] 'a  b' is not two vocabulary tokens separated by one space whose concatenation is a token")) {
            try ByteLevelBPE(tokens: Self.byteTokens + ["ab"], merges: ["a  b"], tokenTypes: types + [1], specialTokens: .init(), source: "f.gguf")
        }
        #expect(throws: ByteLevelBPEError.invalidVocabulary(source: "f.gguf", problem: "tokenizer.ggml.merges[0] 'a b' is not two vocabulary tokens separated by one space whose concatenation is a token")) {
            try ByteLevelBPE(tokens: Self.byteTokens, merges: ["a b"], tokenTypes: types, specialTokens: .init(), source: "f.gguf")
        }
        #expect(throws: ByteLevelBPEError.invalidVocabulary(source: "f.gguf", problem: "tokenizer.ggml.tokens[256] 'a' repeats token 97")) {
            try ByteLevelBPE(tokens: Self.byteTokens + ["a"], merges: [], tokenTypes: types + [1], specialTokens: .init(), source: "f.gguf")
        }
        #expect(throws: ByteLevelBPEError.invalidVocabulary(source: "f.gguf", problem: "tokenizer.ggml.token_type has 255 entries for 256 tokens")) {
            try ByteLevelBPE(tokens: Self.byteTokens, merges: [], tokenTypes: Array(types.dropFirst()), specialTokens: .init(), source: "f.gguf")
        }
        #expect(throws: ByteLevelBPEError.invalidVocabulary(source: "f.gguf", problem: "the eos token id 256 is outside the 256 tokens")) {
            try ByteLevelBPE(tokens: Self.byteTokens, merges: [], tokenTypes: types, specialTokens: .init(eos: 256), source: "f.gguf")
        }
    }
}

@Suite("ChatML templates")
struct ChatMLTemplateTests {
    private static let turns = "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
    private static let plain = "{% for message in messages %}" + turns
    private static let withSystem = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nBe brief.<|im_end|>\n' }}{% endif %}" + turns

    @Test("plain ChatML has no default system turn; a conversation that opens with one keeps its own")
    func forms() throws {
        let user = ChatMessage(role: "user", content: "Hi")
        #expect(try ChatMLTemplate(template: Self.plain, source: "t").render([user], addGenerationPrompt: false)
            == "<|im_start|>user\nHi<|im_end|>\n")
        let template = try ChatMLTemplate(template: Self.withSystem, source: "t")
        #expect(template.render([user], addGenerationPrompt: true)
            == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
        #expect(template.render([ChatMessage(role: "system", content: "Rhyme."), user], addGenerationPrompt: false)
            == "<|im_start|>system\nRhyme.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n")
        #expect(template.render([], addGenerationPrompt: false) == "")
    }

    @Test("any other template is an error naming its source")
    func unsupported() {
        let llama3 = "{% set loop_messages = messages %}{% for message in loop_messages %}{{ '<|start_header_id|>' + message['role'] }}{% endfor %}"
        let quoted = Self.withSystem.replacingOccurrences(of: "Be brief.", with: "Don't.")
        let extraLine = Self.plain.replacingOccurrences(of: "'<|im_end|>' + '\n'", with: "'<|im_end|>' + '\n\n'")
        for template in [llama3, quoted, extraLine, ""] {
            #expect { try ChatMLTemplate(template: template, source: "m.gguf: tokenizer.chat_template") } throws: { error in
                "\(error)".hasPrefix("m.gguf: tokenizer.chat_template: the chat template is not a ChatML form")
            }
        }
    }
}
