"""bench.py: rescoring VLM4D-format prediction folders (hand-made fixtures; published files when present)."""
import json
from pathlib import Path

import pytest

from mllm4d import bench

FIX = Path(__file__).resolve().parent / "fixtures" / "vlm4d"
EXTERNAL = Path(__file__).resolve().parents[2] / "shared" / "external"  # /work/shared/external; absent in clones
VLM4D = EXTERNAL / "vlm4d"


@pytest.mark.parametrize("extracted,choices,letter", [
    ("B: there are no buses in the video", {"A": "x", "B": "y"}, "B"),
    ("No Valid Answer", {"A": "x"}, ""),
    ("", {"A": "x"}, ""),
    (None, {"A": "x"}, ""),
    ("not moving", {"A": "left", "B": "not moving"}, "B"),     # bare option text
    ("The car moves towards the camera.", {"A": "left"}, ""),
])
def test_judge_letter(extracted, choices, letter):
    assert bench.judge_letter(extracted, choices) == letter


def test_discover_both_layouts():
    assert [m["key"] for m in bench.discover(FIX / "judged")] == ["cot/model-x_8frame"]
    (model,) = bench.discover(FIX / "letters")
    assert model["key"] == "MLLM-4D-X" and set(model["files"]) == {"real", "synthetic"}
    with pytest.raises(FileNotFoundError, match="no real_mc"):
        bench.discover(FIX / "questions")


def test_rescore_with_judge_fields():
    r = bench.rescore(FIX / "questions", FIX / "judged", judge_fields=True)["cot/model-x_8frame"]
    # real: T T F T (exo = ids 1, 633; ego = 923, 1000); synthetic: T T
    assert (r["real"], r["real_exo"], r["real_ego"]) == (75.0, 100.0, 50.0)
    assert (r["synthetic"], r["synthetic_fp"], r["synthetic_directional"]) == (100.0, 100.0, 100.0)
    assert r["overall"] == pytest.approx(500 / 6) and r["n_overall"] == 6 and r["n_real_ego"] == 2
    assert r["scored_by"] == ["judge"]


def test_rescore_with_extractor_and_agreement():
    r = bench.rescore(FIX / "questions", FIX / "judged")["cot/model-x_8frame"]
    # extractor: A, D (C = D duplicate: right), "" (hedge), B | B, C (judge said B)
    assert (r["real"], r["synthetic"], r["synthetic_directional"]) == (75.0, 50.0, 0.0)
    assert r["overall"] == pytest.approx(400 / 6) and r["empty"] == 1
    assert (r["judge_agree"], r["n_judge"]) == (5, 6)
    assert r["judge_agreement_real"] == 100.0 and r["judge_agreement_synthetic"] == 50.0
    summ = bench.agreement_summary({"m": r})
    assert summ["agree"] == 5 and summ["n"] == 6 and summ["worst"] == "m"


def test_rescore_letters_layout_skips_unknown_ids(capsys):
    r = bench.rescore(FIX / "questions", FIX / "letters", judge_fields=True)["MLLM-4D-X"]
    # real: A right, C right (duplicate option), "" wrong, D wrong; synthetic: both B, both right
    assert (r["real"], r["real_exo"], r["real_ego"], r["synthetic"]) == (50.0, 100.0, 0.0, 100.0)
    assert r["empty"] == 1 and r["skipped"] == 1 and r["judge_agreement"] is None
    assert r["scored_by"] == ["extractor"]  # no judge fields in these files
    assert "1 item(s) without a matching question" in capsys.readouterr().err


def test_cli_writes_json_and_table(tmp_path, capsys):
    out = tmp_path / "res.json"
    assert bench.main(["rescore", "--questions", str(FIX / "questions"), "--predictions", str(FIX / "judged"),
                       "--out", str(out), "--summary", str(tmp_path / "s.json")]) == 0
    res = json.loads(out.read_text())
    assert set(res) == {"cot/model-x_8frame"}
    printed = capsys.readouterr().out
    assert "cot/model-x_8frame" in printed and "Overall" in printed and "5/6" in printed
    assert json.loads((tmp_path / "s.json").read_text())["agree"] == 5


def test_missing_questions_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="real_mc.json"):
        bench.rescore(tmp_path, FIX / "judged")


# ----------------------------------------------------------------------------------------------------------
# The published numbers (external data, /work/shared/external; skipped where absent)
# ----------------------------------------------------------------------------------------------------------
needs_external = pytest.mark.skipif(not VLM4D.is_dir(), reason="third-party data /work/shared/external absent")

PUBLISHED = {  # Real / Synthetic / Overall (%), /work/shared/external/README.md (VLM4D judged `correct` fields)
    "cot/gpt-4o_32frame": (60.0, 49.9, 57.5),
    "cot/gemini-2.5-pro-preview-06-05_1fps": (63.5, 57.3, 61.9),
    "cot/Qwen2.5-VL-7B-Instruct_1fps": (43.3, 45.6, 43.8),
    "cot/Qwen2.5-VL-72B-Instruct_1fps": (53.1, 52.6, 53.0),
}
DEMO = {"MLLM-4D-SFT-1.0": (58.6, 53.5, 57.4), "MLLM-4D-RFT-1.0": (60.2, 54.4, 58.8)}  # letter match, paper.md §5.6


@pytest.fixture(scope="module")
def vlm4d_results():
    return bench.rescore(VLM4D / "data", VLM4D / "processed_outputs_paper_results", judge_fields=True)


@needs_external
@pytest.mark.parametrize("key", sorted(PUBLISHED))
def test_reproduces_published_vlm4d_numbers(vlm4d_results, key):
    r = vlm4d_results[key]
    assert (round(r["real"], 1), round(r["synthetic"], 1), round(r["overall"], 1)) == PUBLISHED[key]
    assert (r["n_real"], r["n_synthetic"]) == (1371, 445)


@needs_external
def test_reproduces_mllm4d_demo_numbers():
    res = bench.rescore(VLM4D / "data", EXTERNAL / "mllm4d_outputs_demo", judge_fields=True)
    for key, want in DEMO.items():
        r = res[key]
        assert (round(r["real"], 1), round(r["synthetic"], 1), round(r["overall"], 1)) == want
    assert res["MLLM-4D-RFT-1.0"]["empty"] == 71  # 70 real + 1 synthetic extraction failures (paper.md §5.6)


@needs_external
def test_extractor_agrees_with_the_judge(vlm4d_results):
    summ = bench.agreement_summary(vlm4d_results)
    assert summ["n"] == 81720 and summ["n_models"] == 45  # 90 files
    assert summ["agreement"] >= 99.5


# ----------------------------------------------------------------------------------------------------------
# The optional judge (judge.py): a local fake OpenAI-compatible server, no network
# ----------------------------------------------------------------------------------------------------------
def test_judge_over_http_with_a_local_fake_server():
    import http.server
    import threading

    from mllm4d import judge
    seen = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            seen["path"] = self.path
            seen["body"] = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            reply = {"choices": [{"message": {"content": '{"extracted_answer": "A: left", "correct": false}'}}]}
            data = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    srv = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        out = judge.judge("Which way?", {"A": "left", "B": "right"}, "right", "left, I think",
                          url=f"http://127.0.0.1:{srv.server_port}/v1", model="qwen", api_key_env="")
    finally:
        srv.shutdown()
    assert seen["path"] == "/v1/chat/completions" and seen["body"]["model"] == "qwen"
    assert seen["body"]["temperature"] == 0.0 and seen["body"]["max_tokens"] == 256
    assert out["letter"] == "A" and out["correct"] is False and out["error"] == ""


def test_judge_failures_are_incorrect_not_fatal():
    from mllm4d import judge

    def down(*a):
        raise OSError("connection refused")

    out = judge.judge("Q", {"A": "x"}, "x", "A", url="http://127.0.0.1:9", model="m", transport=down)
    assert out["correct"] is False and "connection refused" in out["error"]
    garbled = lambda *a: {"choices": [{"message": {"content": "I think it is right"}}]}  # noqa: E731
    out = judge.judge("Q", {"A": "x"}, "x", "A", url="u", model="m", transport=garbled)
    assert out["correct"] is False and out["error"] == "unparsable reply"
