#!/usr/bin/env python3
"""Expected outputs of Qdrant's `multilingual` tokenizer, taken from Qdrant Edge (`qdrant-edge-py`,
Qdrant's shard engine in process, built from Qdrant's code with its default features).

Edge exposes no tokenizer, so the tokens are read two ways:
- `Bm25.embed_document` with `tokenizer: multilingual`: its sparse vector has one dimension per
  distinct token, the token's murmur3 hash (sign dropped), and a weight that grows with the count.
  The hashes are turned back into strings by hashing every substring of a few normalizations of the
  text; a hash that no substring explains stops the script.
- a shard with a `multilingual` text index: which points each `match.text` query finds.

Writes text/testdata/multilingual_parity.json, which `quiver-text`'s tests compare against.

    pip install qdrant-edge-py==0.9.0
    python scripts/multilingual_parity.py
"""

import json
import pathlib
import tempfile
import unicodedata

import qdrant_edge as q

OUT = pathlib.Path(__file__).resolve().parent.parent / "text" / "testdata" / "multilingual_parity.json"

SENTENCES = [
    ("english", "This is english text. It's being used within Qdrant's code in a unit test."),
    ("english", "What are you waiting for? 42 apples, 3.5 pears!"),
    ("german", "Straße über Äpfel: Größere Bäume blühen früh, naïve Ørsted."),
    ("french", "L'été dernier, nous étions à Paris; le café était très déçu."),
    ("spanish", "El niño comió jalapeño en la montaña con ñandú."),
    ("russian", "Привет, мир! Ёлка стоит в лесу, ещё зелёная."),
    ("greek", "Καλημέρα κόσμε, ένα τεστ για τους φίλους μας."),
    ("chinese", "今天是星期一"),
    ("chinese", "这是一段德语文本。它用于 Qdrant 代码的单元测试中。"),
    ("chinese", "這是一段德文文本。它用於 Qdrant 程式碼的單元測試中。"),
    ("chinese", "我们在北京大学学习自然语言处理"),
    ("japanese", "これはテストです"),
    ("japanese", "日本語のテキストです。Qdrantのコードで単体テストで使用されています。"),
    ("japanese", "本日の日付は"),
    ("thai", "มาทำงานกันเถอะ"),
    ("thai", "ภาษาไทยง่ายนิดเดียว"),
    ("arabic", "مرحبا بالعالم، هذا اختبار للنص العربي"),
    ("hebrew", "שָׁלוֹם עוֹלָם, זה מבחן"),
    ("korean", "안녕하세요 세계"),
    ("mixed", "Hello 世界, café Привет 123"),
    ("mixed", "naïve résumé — ﬁnal Ⅻ ①"),
    ("mixed", "Łódź ﬀ Æsop Œuvre straße Ørsted ⑫ ½"),
]

# Pipelines around the tokenizer; `None` leaves Qdrant's default.
CONFIGS = {
    "plain": dict(stopwords=q.StopwordsSet(custom=set()), stemmer=q.DisabledStemmer()),
    "english": dict(language="english"),
    "no_lowercase": dict(lowercase=False, stopwords=q.StopwordsSet(custom=set()), stemmer=q.DisabledStemmer()),
    "min_len_3": dict(min_token_len=3, stopwords=q.StopwordsSet(custom=set()), stemmer=q.DisabledStemmer()),
    "ascii_folding": dict(ascii_folding=True, stopwords=q.StopwordsSet(custom=set()), stemmer=q.DisabledStemmer()),
}
# The same pipelines as Quiver's `Analysis` fields.
CONFIGS_FOR_QUIVER = {
    "plain": {"lowercase": True, "stopwords": None, "stemmer": None, "min_token_len": None},
    "english": {"lowercase": True, "stopwords": "english", "stemmer": "english", "min_token_len": None},
    "no_lowercase": {"lowercase": False, "stopwords": None, "stemmer": None, "min_token_len": None},
    "min_len_3": {"lowercase": True, "stopwords": None, "stemmer": None, "min_token_len": 3},
    "ascii_folding": {"lowercase": True, "stopwords": None, "stemmer": None, "min_token_len": None, "ascii_folding": True},
}

# Words looked for with `match.text` in a text index over every sentence.
QUERIES = [
    "テスト", "日本", "日本語", "使用", "コード", "星期", "今天", "测试", "德语", "北京大学", "自然语言",
    "apfel", "Äpfel", "strasse", "straße", "GRÖSSERE", "baume", "naive", "orsted", "ørsted",
    "ete", "été", "cafe", "deçu", "nino", "jalapeno", "елка", "ёлка", "еще", "καλημερα", "Καλημέρα",
    "τεστ", "ทำงาน", "ภาษาไทย", "مرحبا", "שלום", "세계", "qdrant", "Qdrant's code", "42", "hello 世界",
]


def murmur3(data: bytes) -> int:
    c1, c2 = 0xCC9E2D51, 0x1B873593
    mask = 0xFFFFFFFF
    h, n = 0, len(data)
    body = n - n % 4
    for i in range(0, body, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * c1) & mask
        k = ((k << 15) | (k >> 17)) & mask
        k = (k * c2) & mask
        h ^= k
        h = ((h << 13) | (h >> 19)) & mask
        h = (h * 5 + 0xE6546B64) & mask
    k = 0
    tail = data[body:]
    for i in reversed(range(len(tail))):
        k ^= tail[i] << (8 * i)
    if tail:
        k = (k * c1) & mask
        k = ((k << 15) | (k >> 17)) & mask
        k = (k * c2) & mask
        h ^= k
    h ^= n
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & mask
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & mask
    h ^= h >> 16
    return h


def token_id(token: str) -> int:
    h = murmur3(token.encode())
    return abs(h - (1 << 32) if h >= 1 << 31 else h)


def unmarked(s: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", s) if unicodedata.category(c) != "Mn")


# Chinese lemmas come out as charabia's kvariants (mostly the traditional forms), which Python cannot
# make: their substrings are offered for every text.
KVARIANT_HINTS = ["這是一段德語文本。它用於代碼的單元測試中。", "我們在北京大學學習自然語言處理"]


def candidates(text: str) -> dict:
    """Every substring (up to 30 characters) of the text's likely normalizations, by hash."""
    text = text + " " + " ".join(KVARIANT_HINTS)
    nfkd = unicodedata.normalize("NFKD", text)
    forms = {text, text.lower(), nfkd, nfkd.lower(), unmarked(text), unmarked(text).lower()}
    forms |= {f.replace("ς", "σ") for f in forms}
    forms |= {f.replace("ß", "ss").replace("ø", "o").replace("ł", "l").replace("æ", "ae").replace("œ", "oe") for f in forms}
    out = {}
    for form in forms:
        for i in range(len(form)):
            for j in range(i + 1, min(len(form), i + 30) + 1):
                out.setdefault(token_id(form[i:j]), form[i:j])
    return out


def tokens_of(bm25, text: str) -> dict:
    """Token -> count, from the document vector: with b = 0 the weight is tf (k + 1) / (tf + k)."""
    vector = bm25.embed_document(text)
    names = candidates(text)
    out = {}
    for index, weight in zip(vector.indices, vector.values):
        if index not in names:
            raise SystemExit(f"{text!r}: token hash {index} matches no substring")
        k = 1.2
        tf = round(weight * k / (k + 1 - weight))
        out[names[index]] = tf
    return dict(sorted(out.items()))


def main():
    cases = []
    for name, options in CONFIGS.items():
        bm25 = q.Bm25(q.Bm25Config(tokenizer=q.TokenizerType.Multilingual, k=1.2, b=0.0, **options))
        for language, text in SENTENCES:
            cases.append(
                {
                    "language": language,
                    "config": name,
                    "text": text,
                    "tokens": tokens_of(bm25, text),
                }
            )
    # The Qdrant unit test's stemmed example.
    bm25 = q.Bm25(q.Bm25Config(tokenizer=q.TokenizerType.Multilingual, k=1.2, b=0.0, language="english"))
    cases.append({"language": "english", "config": "english", "text": "Testing this", "tokens": tokens_of(bm25, "Testing this")})

    with tempfile.TemporaryDirectory() as d:
        shard = q.EdgeShard.create(d, q.EdgeConfig(vectors={"": q.EdgeVectorParams(1, q.Distance.Dot)}))
        shard.update(
            q.UpdateOperation.upsert_points(
                [q.Point(i, [1.0], {"t": text}) for i, (_, text) in enumerate(SENTENCES)]
            )
        )
        shard.update(q.UpdateOperation.create_field_index("t", q.TextIndexParams(tokenizer=q.TokenizerType.Multilingual)))
        matches = []
        for query in QUERIES:
            condition = q.FieldCondition("t", match=q.MatchText(query))
            found = shard.scroll(q.ScrollRequest(filter=q.Filter(must=[condition]), limit=100))
            points = found[0] if isinstance(found, tuple) else found
            matches.append({"query": query, "sentences": sorted(int(p.id) for p in points)})
        shard.close()

    fixture = {
        "made_by": "scripts/multilingual_parity.py with qdrant-edge-py 0.9.0",
        "configs": CONFIGS_FOR_QUIVER,
        "sentences": [text for _, text in SENTENCES],
        "cases": cases,
        "matches": matches,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(fixture, ensure_ascii=False, indent=1) + "\n")
    print(f"wrote {len(cases)} token cases and {len(matches)} queries to {OUT}")


if __name__ == "__main__":
    main()
