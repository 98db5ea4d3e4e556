"""The official `openai` Python client, unchanged, against Quiver's /v1/embeddings and /v1/models.

Usage: openai_client_scenario.py BASE_URL MODEL_NAME
The server serves MODEL_NAME (the tiny random jina-v4 fixture in CI). Prints one line per check and
exits non-zero if any fails.
"""

import math
import sys

import openai
from openai import OpenAI

base, model = sys.argv[1], sys.argv[2]
client = OpenAI(base_url=base + "/v1", api_key="not-needed-without-server-keys", max_retries=0)
passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok: {name}")
    else:
        failed += 1
        print(f"FAIL: {name} {detail}")


def norm(v):
    return math.sqrt(sum(x * x for x in v))


# The client asks for base64 unless told otherwise and decodes it itself.
texts = ["What is the weather like in Berlin today?", "Berlin is the capital of Germany."]
res = client.embeddings.create(model=model, input=texts)
check("two embeddings, in order", [d.index for d in res.data] == [0, 1])
full = res.data[0].embedding
check("unit length", abs(norm(full) - 1.0) < 1e-4, norm(full))
check("model echoed", res.model == model, res.model)
check("usage counts tokens", res.usage.prompt_tokens > 0 and res.usage.total_tokens == res.usage.prompt_tokens)

as_float = client.embeddings.create(model=model, input=texts[0], encoding_format="float")
diff = max(abs(a - b) for a, b in zip(as_float.data[0].embedding, full))
check("float equals base64", diff < 1e-6 and len(as_float.data[0].embedding) == len(full), diff)

short = client.embeddings.create(model=model, input=texts[0], dimensions=16).data[0].embedding
prefix = full[:16]
cos = sum(a * b for a, b in zip(short, prefix)) / norm(prefix)
check("dimensions: a renormalised prefix", len(short) == 16 and abs(norm(short) - 1) < 1e-4 and cos > 0.9999, cos)

passage = client.embeddings.create(
    model=model, input=texts[1], extra_body={"prompt": "passage"}
).data[0].embedding
check("prompt passage differs from query", max(abs(a - b) for a, b in zip(passage, res.data[1].embedding)) > 1e-4)

ids = [m.id for m in client.models.list()]
check("models.list names the model", model in ids, ids)

try:
    client.embeddings.create(model="no-such-model", input="x")
    check("unknown model is refused", False)
except openai.NotFoundError as e:
    check("unknown model is NotFoundError", "no-such-model" in str(e), e)

try:
    client.embeddings.create(model=model, input=[[1, 2, 3]])
    check("token ids are refused", False)
except openai.BadRequestError as e:
    check("token ids are BadRequestError", "token ids" in str(e), e)

# With the real all-MiniLM-L6-v2 served as a second model (optional third argument): embeddings.create
# finds the labelled documents of tests/fixtures/retrieval_set.json (recall@1 >= 0.8).
if len(sys.argv) > 3:
    import json
    import pathlib
    minilm = sys.argv[3]
    labelled = json.loads((pathlib.Path(__file__).parent / "fixtures" / "retrieval_set.json").read_text())
    docs = [d.embedding for d in client.embeddings.create(model=minilm, input=labelled["documents"]).data]
    queries = [d.embedding for d in client.embeddings.create(
        model=minilm, input=[q for q, _ in labelled["queries"]]).data]
    check("MiniLM vectors have 384 dimensions", len(docs[0]) == 384, len(docs[0]))
    top = [max(range(len(docs)), key=lambda i: sum(a * b for a, b in zip(q, docs[i]))) for q in queries]
    recall = sum(t == want for t, (_, want) in zip(top, labelled["queries"])) / len(top)
    check("MiniLM recall@1 through embeddings.create >= 0.8", recall >= 0.8, recall)

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
