"""edgellm's tokenizer against the reference implementations, line by line on the whole corpus.

References: Hugging Face `tokenizers` (and `transformers`' AutoTokenizer) for tokenizer.json vocabularies,
`tiktoken` with qwen.tiktoken and Qwen 1's split pattern, `sentencepiece` for a Llama-2-style (SentencePiece
BPE) vocabulary. Corpus: tests/data/tokenizer/{corpus,random}.jsonl (tests/data/tokenizer/make_corpus.py).
Run with `-s` to see the per-vocabulary match counts.
"""
import base64
import json
import os
import struct
import subprocess
import unicodedata

import pytest

BIN = os.environ.get("EDGELLM_BIN", "")
SHARED = os.environ.get("EDGELLM_SHARED") or os.path.join(
    os.environ.get("EDGELLM_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build")), "reference")
TEST_DATA = os.environ.get("EDGELLM_TEST_DATA", os.path.join(os.path.dirname(__file__), "../data"))
DATA = os.path.join(SHARED, "data")

HF_VOCABS = {
    "qwen3": "qwen3-tokenizer/tokenizer.json",
    "llama3": "llama3-tokenizer/tokenizer.json",
    "stories260K-hf": "stories260K-hf/tokenizer.json",
}


def need_bin():
    if not BIN or not os.path.exists(BIN):
        pytest.skip("EDGELLM_BIN is not set to the edgellm executable (run through ctest)")


def shared_file(rel):
    path = os.path.join(DATA, rel)
    if not os.path.exists(path):
        pytest.fail(f"reference file {path} is absent (tests/data/reference is unpacked into BUILD/reference when CMake configures the build)")
    return path


def load_corpus():
    rows = []
    for name in ("corpus.jsonl", "random.jsonl"):
        with open(os.path.join(TEST_DATA, "tokenizer", name), encoding="utf-8") as f:
            rows += [json.loads(line) for line in f]
    return rows


CORPUS = load_corpus()
TEXTS = [r["text"] for r in CORPUS]


def run_lines(tokenizer_path, texts, tmp_path, *flags):
    """edgellm tokenize --lines: one id list per text."""
    src = tmp_path / "lines.jsonl"
    src.write_text("".join(json.dumps(t) + "\n" for t in texts), encoding="utf-8")
    out = subprocess.run([BIN, "tokenize", "--tokenizer", str(tokenizer_path), "--lines", str(src), "--no-bos", *flags],
                         capture_output=True, timeout=600)
    assert out.returncode == 0, out.stderr.decode(errors="replace")
    lines = out.stdout.decode().split("\n")
    assert lines[-1] == ""
    return [[int(x) for x in line.split()] for line in lines[:-1]]


def run_decode(tokenizer_path, id_lists, tmp_path):
    src = tmp_path / "ids.txt"
    src.write_text("".join(" ".join(map(str, ids)) + "\n" for ids in id_lists))
    out = subprocess.run([BIN, "tokenize", "--tokenizer", str(tokenizer_path), "--lines", str(src), "--decode"],
                         capture_output=True, timeout=600)
    assert out.returncode == 0, out.stderr.decode(errors="replace")
    return [json.loads(line) for line in out.stdout.decode().split("\n")[:-1]]


def compare(name, texts, got, want):
    assert len(got) == len(want), f"{name}: {len(got)} output lines for {len(want)} inputs"
    bad = [i for i in range(len(want)) if got[i] != want[i]]
    print(f"\n{name}: {len(want) - len(bad)}/{len(want)} lines identical")
    detail = "\n".join(f"  line {i}: {texts[i]!r}\n    edgellm {got[i]}\n    ref     {want[i]}" for i in bad[:5])
    assert not bad, f"{name}: {len(bad)} of {len(want)} lines differ, e.g.\n{detail}"


def hf_tokenizer(rel):
    from tokenizers import Tokenizer
    return Tokenizer.from_file(shared_file(rel))


def hf_encode(tok, texts, allow_special):
    tok.encode_special_tokens = not allow_special
    try:
        return [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]
    finally:
        tok.encode_special_tokens = False


@pytest.mark.parametrize("vocab", sorted(HF_VOCABS))
@pytest.mark.parametrize("allow_special", [True, False], ids=["special", "plain"])
def test_tokenizer_json_matches_hf(vocab, allow_special, tmp_path):
    need_bin()
    path = shared_file(HF_VOCABS[vocab])
    want = hf_encode(hf_tokenizer(HF_VOCABS[vocab]), TEXTS, allow_special)
    got = run_lines(path, TEXTS, tmp_path, *([] if allow_special else ["--no-special"]))
    compare(f"{vocab} tokenizer.json ({'special' if allow_special else 'plain'})", TEXTS, got, want)


@pytest.mark.parametrize("vocab", sorted(HF_VOCABS))
def test_gguf_written_from_tokenizer_json_matches_hf(vocab, tmp_path):
    need_bin()
    path = shared_file(HF_VOCABS[vocab])
    gguf_path = tmp_path / f"{vocab}.gguf"
    out = subprocess.run([BIN, "tokenize", "--tokenizer", path, "--write-gguf", str(gguf_path)], capture_output=True)
    assert out.returncode == 0, out.stderr.decode(errors="replace")

    # The keys llama.cpp reads, checked with the gguf package.
    import gguf
    reader = gguf.GGUFReader(str(gguf_path))
    fields = reader.fields
    hf = hf_tokenizer(HF_VOCABS[vocab])
    model = bytes(fields["tokenizer.ggml.model"].parts[-1]).decode()
    assert model == ("llama" if vocab == "stories260K-hf" else "gpt2")
    tokens = fields["tokenizer.ggml.tokens"]
    assert len(tokens.data) == hf.get_vocab_size(with_added_tokens=True)
    vocab_map = hf.get_vocab(with_added_tokens=True)
    for piece in list(vocab_map)[:2000]:
        idx = tokens.data[vocab_map[piece]]
        assert bytes(tokens.parts[idx]).decode() == piece
    if model == "gpt2":
        pre = bytes(fields["tokenizer.ggml.pre"].parts[-1]).decode()
        assert pre == {"qwen3": "qwen2", "llama3": "llama-bpe"}[vocab]
        merges = fields["tokenizer.ggml.merges"]
        assert len(merges.data) == len(json.load(open(path, encoding="utf-8"))["model"]["merges"])

    want = hf_encode(hf, TEXTS, True)
    got = run_lines(gguf_path, TEXTS, tmp_path)
    compare(f"{vocab} GGUF", TEXTS, got, want)
    want_plain = hf_encode(hf, TEXTS, False)
    got_plain = run_lines(gguf_path, TEXTS, tmp_path, "--no-special")
    compare(f"{vocab} GGUF (plain)", TEXTS, got_plain, want_plain)


@pytest.mark.parametrize("vocab", sorted(HF_VOCABS))
def test_decode_roundtrip(vocab, tmp_path):
    need_bin()
    path = shared_file(HF_VOCABS[vocab])
    hf = hf_tokenizer(HF_VOCABS[vocab])
    ids = hf_encode(hf, TEXTS, False)
    got = run_decode(path, ids, tmp_path)
    want = [hf.decode(x, skip_special_tokens=False) for x in ids]
    compare(f"{vocab} decode", TEXTS, got, want)
    # decode(encode(x)) == x, up to the NFC normalization the vocabulary applies.
    nfc = vocab == "qwen3"
    expect = [unicodedata.normalize("NFC", t) if nfc else t for t in TEXTS]
    compare(f"{vocab} decode(encode(x)) == x", TEXTS, got, expect)


# ---- Qwen3.5's pre-tokenizer (issue 16) ----
# No Qwen3.5 vocabulary is bundled (its 248k-token tokenizer.json is a download); what Qwen3.5 changes is the
# pipeline: transformers' Qwen3_5Tokenizer = NFC, Split(PRETOKENIZE_REGEX, isolated), ByteLevel. The stand-in
# below runs that pipeline over Qwen3's vocabulary and merges, so edgellm's handling of the new regex (and of
# llama.cpp's "qwen35" pre name in GGUF) is checked against the `tokenizers` library.
MARKED_TEXTS = [
    "नमस्ते दुनिया, यह एक परीक्षण है।", "สวัสดีครับ ทดสอบภาษาไทย", "שָׁלוֹם עוֹלָם", "مَرْحَبًا بِالْعَالَمِ",
    "x\u0302\u0323 y\u0301\u0301 q\u0307", "Tiếng Việt có dấu", "I \u2764\ufe0f tests\u20dd!", "Z\u0351\u0352a\u0353l\u0354g\u0355o",
    "a\u0300b\u0301c\u0302 123\u0303 !\u0304?", "கணினி அறிவியல்", "ქართული ენა", "\u0301leading mark", "ok\u0301's and it\u0301'll",
]


@pytest.fixture(scope="module")
def qwen35_tokenizer_json(tmp_path_factory):
    from transformers.models.qwen3_5.tokenization_qwen3_5 import PRETOKENIZE_REGEX
    data = json.load(open(shared_file(HF_VOCABS["qwen3"]), encoding="utf-8"))
    steps = data["pre_tokenizer"]["pretokenizers"]
    assert steps[0]["type"] == "Split" and data["normalizer"]["type"] == "NFC"
    steps[0]["pattern"] = {"Regex": PRETOKENIZE_REGEX}
    path = tmp_path_factory.mktemp("qwen35-tok") / "tokenizer.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_qwen35_pretokenizer_matches_hf(qwen35_tokenizer_json, tmp_path):
    need_bin()
    from tokenizers import Tokenizer
    texts = TEXTS + MARKED_TEXTS
    hf = Tokenizer.from_file(str(qwen35_tokenizer_json))
    want = hf_encode(hf, texts, True)
    compare("qwen3.5 pipeline tokenizer.json", texts, run_lines(qwen35_tokenizer_json, texts, tmp_path), want)
    # The regex matters: Qwen3's own pipeline splits marked text differently.
    qwen3 = hf_encode(hf_tokenizer(HF_VOCABS["qwen3"]), MARKED_TEXTS, True)
    assert sum(a != b for a, b in zip(qwen3, want[len(TEXTS):])) >= 3
    # Written to GGUF it is llama.cpp's "qwen35" pre-tokenizer, without a regex of edgellm's own.
    gguf_path = tmp_path / "qwen35.gguf"
    out = subprocess.run([BIN, "tokenize", "--tokenizer", str(qwen35_tokenizer_json), "--write-gguf", str(gguf_path)],
                         capture_output=True)
    assert out.returncode == 0, out.stderr.decode(errors="replace")
    import gguf
    fields = gguf.GGUFReader(str(gguf_path)).fields
    assert bytes(fields["tokenizer.ggml.pre"].parts[-1]).decode() == "qwen35"
    assert "tokenizer.edgellm.pre_regex" not in fields and "tokenizer.edgellm.nfc" not in fields
    compare("qwen3.5 pipeline GGUF", texts, run_lines(gguf_path, texts, tmp_path), want)


def test_autotokenizer_qwen3(tmp_path):
    need_bin()
    directory = os.path.dirname(shared_file(HF_VOCABS["qwen3"]))
    from transformers import AutoTokenizer
    auto = AutoTokenizer.from_pretrained(directory)
    want = [auto(t, add_special_tokens=False)["input_ids"] for t in TEXTS]
    got = run_lines(directory, TEXTS, tmp_path)
    compare("qwen3 AutoTokenizer", TEXTS, got, want)


def tiktoken_qwen1():
    import tiktoken
    path = shared_file("qwen1-tiktoken/qwen.tiktoken")
    ranks = {}
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                tok, rank = line.split()
                ranks[base64.b64decode(tok)] = int(rank)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] + [f"<|extra_{i}|>" for i in range(205)]
    pat = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"""
           r"""\s*[\r\n]+|\s+(?!\S)|\s+""")
    enc = tiktoken.Encoding("qwen1", pat_str=pat, mergeable_ranks=ranks,
                            special_tokens={s: len(ranks) + i for i, s in enumerate(specials)})
    return path, enc


@pytest.mark.parametrize("allow_special", [True, False], ids=["special", "plain"])
def test_qwen1_tiktoken_matches_tiktoken(allow_special, tmp_path):
    need_bin()
    path, enc = tiktoken_qwen1()
    # Qwen 1's tokenize() normalizes to NFC first (FACTS.md).
    nfc = [unicodedata.normalize("NFC", t) for t in TEXTS]
    if allow_special:
        want = [enc.encode(t, allowed_special="all") for t in nfc]
    else:
        want = [enc.encode(t, allowed_special=set(), disallowed_special=()) for t in nfc]
    got = run_lines(path, TEXTS, tmp_path, *([] if allow_special else ["--no-special"]))
    compare(f"qwen1 tiktoken ({'special' if allow_special else 'plain'})", TEXTS, got, want)
    decoded = run_decode(path, got, tmp_path)
    compare("qwen1 decode(encode(x)) == NFC(x)", TEXTS, decoded, nfc)


# ---- SentencePiece (Llama 2 style) ----

def read_tok512(path):
    """llama2.c tokenizer.bin: i32 max_token_length, then per token f32 score, i32 length, bytes."""
    with open(path, "rb") as f:
        data = f.read()
    pos = 4
    pieces, scores = [], []
    while pos < len(data):
        score, length = struct.unpack_from("<fi", data, pos)
        pos += 8
        pieces.append(data[pos:pos + length].decode("utf-8"))
        pos += length
        scores.append(score)
    return pieces, scores


def spm_pieces_and_types():
    """tok512 as SentencePiece pieces: llama2.c stores ' ' where SentencePiece has '▁', and BOS/EOS with
    newlines around them."""
    pieces, scores = read_tok512(shared_file("stories260K/tok512.bin"))
    out, types = [], []
    for i, p in enumerate(pieces):
        if i == 0:
            out.append("<unk>"); types.append(2)
        elif i in (1, 2):
            out.append("<s>" if i == 1 else "</s>"); types.append(3)
        elif p.startswith("<0x") and len(p) == 6:
            out.append(p); types.append(6)
        else:
            out.append(p.replace(" ", "\u2581")); types.append(1)
    return out, scores, types


def sentencepiece_processor(pieces, scores, types):
    from sentencepiece import SentencePieceProcessor, sentencepiece_model_pb2 as pb
    m = pb.ModelProto()
    type_map = {1: pb.ModelProto.SentencePiece.NORMAL, 2: pb.ModelProto.SentencePiece.UNKNOWN,
                3: pb.ModelProto.SentencePiece.CONTROL, 6: pb.ModelProto.SentencePiece.BYTE}
    for p, s, t in zip(pieces, scores, types):
        sp = m.pieces.add()
        sp.piece, sp.score, sp.type = p, s, type_map[t]
    m.trainer_spec.model_type = pb.TrainerSpec.BPE
    m.trainer_spec.byte_fallback = True
    m.trainer_spec.unk_id, m.trainer_spec.bos_id, m.trainer_spec.eos_id, m.trainer_spec.pad_id = 0, 1, 2, -1
    m.normalizer_spec.name = "identity"
    m.normalizer_spec.add_dummy_prefix = True
    m.normalizer_spec.remove_extra_whitespaces = False
    m.normalizer_spec.escape_whitespaces = True
    proc = SentencePieceProcessor()
    proc.LoadFromSerializedProto(m.SerializeToString())
    return proc


def test_sentencepiece_llama_gguf_matches_sentencepiece(tmp_path):
    """A Llama-2-style GGUF (tokenizer.ggml.model=llama, scores, byte tokens), as llama.cpp's converter
    writes it, against sentencepiece itself on the same pieces and scores."""
    need_bin()
    import gguf
    pieces, scores, types = spm_pieces_and_types()
    proc = sentencepiece_processor(pieces, scores, types)
    path = tmp_path / "tok512.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_tokenizer_model("llama")
    w.add_token_list(pieces)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    # sentencepiece treats the whole input as text; compare the lines without special-token strings.
    texts = [t for t in TEXTS if not any(s in t for s in ("<s>", "</s>", "<unk>"))]
    want = [proc.encode(t) for t in texts]
    got = run_lines(path, texts, tmp_path)
    compare("tok512 llama GGUF vs sentencepiece", texts, got, want)
    decoded = run_decode(path, got, tmp_path)
    compare("tok512 llama GGUF decode", texts, decoded, [proc.decode(x) for x in want])


def test_stories260k_expected_prompt_encodings(tmp_path):
    need_bin()
    expected = json.load(open(shared_file("stories260K/expected.json"), encoding="utf-8"))
    cases = list(expected.get("encode_with_bos", {}).items())
    if not cases:
        pytest.skip("stories260K/expected.json has no 'encode_with_bos' table")
    path = shared_file(HF_VOCABS["stories260K-hf"])
    src = tmp_path / "p.jsonl"
    src.write_text("".join(json.dumps(t) + "\n" for t, _ in cases))
    out = subprocess.run([BIN, "tokenize", "--tokenizer", path, "--lines", str(src)], capture_output=True)
    assert out.returncode == 0, out.stderr.decode()
    got = [[int(x) for x in line.split()] for line in out.stdout.decode().split("\n")[:-1]]
    assert got == [ids for _, ids in cases]
