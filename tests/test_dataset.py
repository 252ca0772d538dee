"""03_dataset build (mllm4d/dataset.py) on a small fake curation run made from the scene generator's metadata."""
import dataclasses
import hashlib
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from mllm4d import clips, common, cot, dataset, prompts, reward, scene, selection

SOLVER = dict(min_frame_gap=4, pairs_per_clip=6, min_visible_frac=0.3, min_points=20, nearest_percentile=2.0,
              min_camera_move=0.3, min_object_move=0.3, min_distance=0.3, tau_crd=0.15, crd_dominance=1.5,
              crd_min_straightness=0.6, tau_ocrd=0.15, tau_lateral=0.15, tau_longitudinal=0.15, band_lo=0.5,
              band_hi=2.0)
N_CLIPS = 12


def params(root: Path, **over) -> dataset.DatasetParams:
    base = dict(outputs_root=str(root), run_name="t", seed=0, curation_run="c", solver_run="s", use_gt_meta=False,
                cap_per_clip=20, option_order="shuffled", distractor_lo=0.25, distractor_hi=1.75, min_gap_rel=0.15,
                min_gap_abs=0.1, decimals=1, numeric_mode="relative", ladder_cad=[0.3, 0.5, 0.8, 1.2],
                ladder_oad=[0.5, 0.7, 1.0, 1.5], ladder_ocad=[1.5, 2.5, 3.5, 5.0], ladder_margin=0.05,
                bench_fraction=0.34, balance_labels=False, sft_items_per_slice=8, bench_items_per_subtask=5,
                rft_items=24, rft_mix=list(dataset.RFT_MIX_FIG8), rft_min_motion_m=0.3, coldstart_per_scenario=3,
                coldstart_k=3, coldstart_reward="st", teacher="geometric", teacher_noise_m=0.2,
                teacher_wrong_prob=0.3, cot_style="full", teacher_url="", teacher_model="")
    base.update(over)
    return common.validate(dataset.DatasetParams, base)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """outputs/01_curation/c (index, meta = GT + 3 cm noise, gt, 8x8 frames) and outputs/02_solver/s/params.json."""
    root = tmp_path_factory.mktemp("outputs")
    cur = root / "01_curation" / "c"
    rng = np.random.default_rng(0)
    index = []
    for k in range(N_CLIPS):
        cid = f"clip{k:04d}"
        gt = scene.gt_meta_fast(scene.sample_scene(rng, name=cid), points_per_object=60)
        centre = gt.obj_centre + rng.normal(0, 0.03, gt.obj_centre.shape)
        noisy = dataclasses.replace(gt, source="curated", obj_centre=centre)
        clips.save_meta(cur / "gt" / f"{cid}.npz", gt)
        clips.save_meta(cur / "meta" / f"{cid}.npz", noisy)
        (cur / "frames" / cid).mkdir(parents=True)
        for t in range(gt.num_frames):
            cv2.imwrite(str(cur / "frames" / cid / f"{t:02d}.jpg"), np.full((8, 8, 3), 10 * t % 255, np.uint8))
        index.append({"clip_id": cid, "status": "ok", "reason": "", "source": "synthetic"})
    index.append({"clip_id": "clip9999", "status": "failed", "reason": "test", "source": "synthetic"})
    common.write_jsonl(cur / "index.jsonl", index)
    common.write_json(root / "02_solver" / "s" / "params.json", {"params": {**SOLVER, "run_name": "s"}})
    return root


def _digests(d: Path) -> dict[str, str]:
    names = ["sft.jsonl", "coldstart.jsonl", "rft.jsonl", "bench.jsonl", "cards.md", "coldstart_candidates.jsonl",
             "export/qwen_sft.json", "export/qwen_coldstart.json", "export/swift_rft.jsonl", "export/hf/README.md"]
    return {n: hashlib.sha256((d / n).read_bytes()).hexdigest() for n in names}


@pytest.fixture(scope="module")
def built(root):
    cfg = params(root)
    run = common.start_run("03_dataset", cfg)
    return cfg, run, dataset.build(cfg, run)


def test_splits_are_disjoint_by_clip(built):
    cfg, run, m = built
    rows = {s: common.read_jsonl(run / f"{s}.jsonl") for s in dataset.SPLITS}
    train = {r["clip_id"] for s in ("sft", "coldstart", "rft") for r in rows[s]}
    bench = {r["clip_id"] for r in rows["bench"]}
    assert m["leakage_clips"] == len(train & bench) == 0
    assert train and bench
    ok = [f"clip{k:04d}" for k in range(N_CLIPS)]
    tr, be = dataset.split_clips(ok, cfg.bench_fraction, cfg.seed)
    assert bench <= set(be) and train <= set(tr) and len(be) == 4
    assert m["clips"]["ok"] == N_CLIPS and m["clips"]["skipped"] == 0


def test_rows_follow_the_contract(built):
    cfg, run, m = built
    for s in dataset.SPLITS:
        rows = common.read_jsonl(run / f"{s}.jsonl")
        assert m["splits"][s]["rows"] == len(rows)
        assert len({r["id"] for r in rows}) == len(rows)
        for r in rows:
            assert r["subtask"] in prompts.SUBTASKS and set(r["options"]) == set(prompts.LETTERS)
            assert r["solution"]["answer"] == r["answer"] and len(r["frames"]) == 32
            assert all((run / f).is_file() for f in r["frames"])
            assert ("cot" in r) == (s == "coldstart")
    bench = common.read_jsonl(run / "bench.jsonl")
    per = [m["splits"]["bench"]["subtask"].get(s, 0) for s in prompts.SUBTASKS]
    present = [p for p in per if p]  # a subtask no bench clip can pose is absent, the others are balanced
    assert len(set(present)) == 1 and len(present) >= 4
    sft = m["splits"]["sft"]["scenario"]
    assert set(sft) == set(cot.SCENARIOS) and max(sft.values()) <= cfg.sft_items_per_slice
    assert sum(m["splits"]["bench"]["answer"].values()) == len(bench)


def test_rft_mix_motion_and_sft_overlap_only_to_fill(built):
    cfg, run, m = built
    rft, sft = common.read_jsonl(run / "rft.jsonl"), common.read_jsonl(run / "sft.jsonl")
    sft_ids = {r["id"] for r in sft}
    assert m["rft_in_sft"] == len({r["id"] for r in rft} & sft_ids)
    target = dict(zip(prompts.SUBTASKS, selection.allocate(cfg.rft_items, cfg.rft_mix)))
    assert all(m["splits"]["rft"]["subtask"].get(s, 0) <= n for s, n in target.items())
    items = [it for f in sorted((run).glob("items-*/*.json")) for it in common.read_json(f)["items"]]
    meta = {r["clip_id"]: clips.load_meta(Path(cfg.outputs_root) / "01_curation/c/meta" / f"{r['clip_id']}.npz")
            for r in rft}
    bench_clips = set(dataset.split_clips([f"clip{k:04d}" for k in range(N_CLIPS)], cfg.bench_fraction, cfg.seed)[1])
    for s in prompts.SUBTASKS:  # an SFT item is reused only when the subtask's fresh pool is exhausted
        got = [r for r in rft if r["subtask"] == s]
        fresh = [it for it in items if it["row"]["subtask"] == s and it["row"]["id"] not in sft_ids
                 and selection.significant_motion(it, cfg.rft_min_motion_m) and it["row"]["clip_id"] not in bench_clips]
        if any(r["id"] in sft_ids for r in got):
            assert len(fresh) < len(got) == target[s]
    for r in rft:
        g = cot.geometry_from_meta(meta[r["clip_id"]], r["frame_i"], r["frame_j"], r["object"])
        moved = [np.linalg.norm(g.cam[1] - g.cam[0])] + ([] if g.obj is None else [np.linalg.norm(g.obj[1] - g.obj[0])])
        assert max(moved) >= cfg.rft_min_motion_m


def test_coldstart_alg1(built):
    cfg, run, m = built
    cold = common.read_jsonl(run / "coldstart.jsonl")
    cands = {r["id"]: r for r in common.read_jsonl(run / "coldstart_candidates.jsonl")}
    st = m["coldstart"]
    assert st["sampled"] == len(cands) and st["kept"] == len(cold) and 0 < len(cold) < len(cands)
    for r in cold:
        scores = cands[r["id"]]["scores"]
        assert r["cot"] == cands[r["id"]]["candidates"][int(np.argmax(scores))]
        assert max(scores) >= st["tau"][cot.scenario(r["subtask"], r["variant"])] - 1e-9
        assert reward.REWARDS["st"]([r["cot"]], [[r["solution"]]])[0] == pytest.approx(max(scores))
        assert "**Spatial State (Initial Frame):**" in r["cot"] and r["cot"].endswith("</answer>")
    assert set(st["acceptance"]) <= set(cot.SCENARIOS) and all(0 <= a <= 1 for a in st["acceptance"].values())


def test_same_seed_same_bytes_and_resume(root, built, monkeypatch):
    cfg, run, _ = built
    again = params(root, run_name="t2")
    run2 = common.start_run("03_dataset", again)
    dataset.build(again, run2)
    assert _digests(run) == _digests(run2)
    for name in ("sft.jsonl", "metrics.json", "coldstart.jsonl"):
        (run2 / name).unlink()
    monkeypatch.setitem(cot.TEACHERS, "geometric", lambda *a: pytest.fail("cached candidates were regenerated"))
    dataset.build(again, run2)  # resumes from the item and candidate caches
    assert _digests(run) == _digests(run2)


def test_other_seed_and_gt_meta_change_the_data(root, built):
    cfg, run, _ = built
    other = params(root, run_name="t3", seed=1, coldstart_per_scenario=0, use_gt_meta=True)
    m = dataset.build(other, common.start_run("03_dataset", other))
    assert m["source"] == "gt" and m["coldstart"]["kept"] == 0 and m["leakage_clips"] == 0
    d3 = Path(cfg.outputs_root) / "03_dataset" / "t3"
    assert (d3 / "sft.jsonl").read_bytes() != (run / "sft.jsonl").read_bytes()
    gt = {}
    for r in common.read_jsonl(d3 / "sft.jsonl"):
        if r["clip_id"] not in gt:
            gt[r["clip_id"]] = clips.load_meta(Path(cfg.outputs_root) / "01_curation/c/gt" / f"{r['clip_id']}.npz")
        meta = gt[r["clip_id"]]
        if r["subtask"] == "oad":
            g = cot.geometry_from_meta(meta, r["frame_i"], r["frame_j"], r["object"])
            np.testing.assert_allclose(r["solution"]["object_center"], g.obj, atol=1e-4)


def test_bad_clip_is_skipped_and_counted(root):
    bad_root = root / "bad"
    cur = bad_root / "01_curation" / "c"
    src = root / "01_curation" / "c"
    for sub in ("meta", "gt", "frames"):
        for p in sorted((src / sub).rglob("*")):
            if p.is_file() and ("clip0000" in str(p) or "clip0001" in str(p)):
                (cur / p.relative_to(src)).parent.mkdir(parents=True, exist_ok=True)
                (cur / p.relative_to(src)).write_bytes(p.read_bytes())
    (cur / "meta" / "clip0001.npz").write_bytes(b"not an npz")
    common.write_jsonl(cur / "index.jsonl", [  # an appended log: the last row of a clip wins
        {"clip_id": "clip0000", "status": "failed"}, {"clip_id": "clip0000", "status": "ok"},
        {"clip_id": "clip0001", "status": "ok"}, {"clip_id": "clip0002", "status": "ok"},
        {"clip_id": "clip0002", "status": "failed"}])
    common.write_json(bad_root / "02_solver" / "s" / "params.json", {"params": SOLVER})
    cfg = params(bad_root, coldstart_per_scenario=1)
    m = dataset.build(cfg, common.start_run("03_dataset", cfg))
    assert m["clips"]["ok"] == 2 and m["clips"]["skipped"] == 1
    assert "clip0001.npz" in next(iter(m["clips"]["skip_reasons"]))


@pytest.mark.parametrize("n,frac", [(1, 0.3), (2, 0.5), (10, 0.0), (10, 0.25), (101, 0.2)])
def test_split_clips(n, frac):
    ids = [f"c{k}" for k in range(n)]
    tr, be = dataset.split_clips(ids, frac, 7)
    assert not set(tr) & set(be) and sorted(tr + be) == sorted(ids)
    assert len(be) == (0 if frac == 0 or n < 2 else max(1, round(frac * n)))
    assert (tr, be) == dataset.split_clips(list(reversed(ids)), frac, 7)  # order of the input does not matter
    if n > 50 and frac > 0:
        assert be != dataset.split_clips(ids, frac, 8)[1]  # the seed does


def _item(sub, variant="", cam=0.0, obj=None, k=0):
    return {"row": {"id": f"{sub}{variant}{k}", "subtask": sub, "variant": variant, "clip_id": "c"},
            "motion": {"camera": cam, "object": obj}}


def test_balanced_build_has_equal_labels(root):
    cfg = params(root, run_name="bal", balance_labels=True, bench_items_per_subtask=50)
    dataset.build(cfg, common.stage_dir("03_dataset", "bal", str(root)))
    rows = common.read_jsonl(root / "03_dataset" / "bal" / "bench.jsonl")
    for sub in prompts.SUBTASKS:   # categorical labels, and numeric answer ranks
        labels = [selection.answer_label(r) for r in rows if r["subtask"] == sub]
        counts = {l: labels.count(l) for l in set(labels)}
        assert counts and max(counts.values()) - min(counts.values()) <= 1, (sub, counts)


def test_ladder_build_counts_boundary_values_and_offers_fixed_rungs(root):
    cfg = params(root, run_name="lad", numeric_mode="ladder", balance_labels=True)
    m = dataset.build(cfg, common.stage_dir("03_dataset", "lad", str(root)))
    assert m["relations"]["ladder_ambiguous"] > 0
    rows = [r for s in ("sft", "bench") for r in common.read_jsonl(root / "03_dataset" / "lad" / f"{s}.jsonl")]
    for sub in ("cad", "oad", "ocad"):
        opts = {tuple(sorted(float(v) for v in r["options"].values())) for r in rows if r["subtask"] == sub}
        assert opts == {tuple(getattr(cfg, f"ladder_{sub}"))}, sub
    with pytest.raises(common.ParamError, match="ladder_"):
        dataset.build(params(root, run_name="bad", numeric_mode="ladder", ladder_oad=[0.5, 0.4, 1.0, 1.5]),
                      common.stage_dir("03_dataset", "bad", str(root)))


def test_rows_for_clips_rewinds_to_clip_by_clip_templating_when_a_value_is_rejected():
    """At 0 decimals small numeric values admit no four options: the rejected relations are counted and the rows
    equal the one-by-one path from the same generator state; without rejections the bulk path gives them too."""
    from mllm4d import qa, solver
    metas = scene.gt_meta_batch(scene.sample_scenes(np.random.default_rng(3), 6))
    scfg = solver.config_from(SOLVER)
    for decimals, rejected in ((0, True), (1, False)):
        qcfg = qa.QAConfig("shuffled", 0.25, 1.75, 0.15, 0.1, decimals)
        rows, counts = dataset.rows_for_clips(metas, scfg, qcfg, [None, 3, 5, None, 0, 8], np.random.default_rng(4))
        rng = np.random.default_rng(4)
        per_clip, ref_counts = solver.solve_clips(metas, scfg, rng)
        ref = dataset._rows_one_by_one(per_clip, metas, qcfg, [None, 3, 5, None, 0, 8], rng, ref_counts)
        assert [[{k: v for k, v in r.items() if k != "frames"} for r in rs] for rs in rows] == ref
        assert (counts["qa_rejected"] > 0) == rejected and counts == ref_counts
        assert all(r["frames"] == dataset.frame_paths(m.name, 32) for m, rs in zip(metas, rows) for r in rs)


def _bench_module():
    import importlib.util
    path = Path(__file__).parents[1] / "benchmarks" / "dataset_scale.py"
    spec = importlib.util.spec_from_file_location("dataset_scale", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # worker processes unpickle run_shard by module name
    spec.loader.exec_module(mod)
    return mod


def test_scale_benchmark_is_byte_deterministic(tmp_path):
    """benchmarks/dataset_scale.py at a small size: two runs, same seed -> same sha256 per shard; exact item count."""
    bench = _bench_module()
    args = ["--clips", "24", "--items", "300", "--workers", "2", "--batch", "8", "--repeat", "2", "--out",
            str(tmp_path / "a"), "--solver-params", str(tmp_path / "s.json"),
            "--dataset-params", str(tmp_path / "d.json")]
    (tmp_path / "s.json").write_text(json.dumps(SOLVER))
    (tmp_path / "d.json").write_text(json.dumps(dict(option_order="shuffled", distractor_lo=0.25, distractor_hi=1.75,
                                                     min_gap_rel=0.15, min_gap_abs=0.1, decimals=1)))
    rep = bench.main(args)
    assert rep["byte_identical"] is True and all(r["items"] == 300 for r in rep["runs"])
    other = bench.main(args[:-6] + ["--seed", "1", "--repeat", "1"] + args[-6:])
    assert [s["sha256"] for s in other["runs"][0]["shards"]] != [s["sha256"] for s in rep["runs"][0]["shards"]]
    import gzip
    lines = [line for s in sorted((tmp_path / "a" / "rep0").glob("shard-*.jsonl.gz")) for line in gzip.open(s, "rt")]
    rows = [json.loads(line) for line in lines]
    assert lines == [json.dumps(r, ensure_ascii=False) + "\n" for r in rows]  # the spliced encoder == json.dumps
    assert len(rows) == 300 and len({r["id"] for r in rows}) == 300
    assert all(len(r["frames"]) == 32 and r["solution"]["answer"] == r["answer"] for r in rows)


def test_openai_teacher_through_build_with_a_flaky_fake_endpoint(root, monkeypatch):
    """teacher="openai": requests go to the (fake) endpoint; a failing request skips its item, counted."""
    calls = []

    def fake(url, headers, body, timeout):
        msgs = json.loads(body)["messages"]
        calls.append(url)
        if len(calls) % 4 == 0:
            raise OSError("connection reset")
        target = msgs[1]["content"].split("Internal Target: ")[1][0]
        reply = {"chain_of_thought": "**Spatial State (Initial Frame):**\n- Camera Center: [0, 0, 0]\n"
                                     "- Object Center: [0, 0, 2]", "answer": target}
        return json.dumps({"choices": [{"message": {"content": json.dumps(reply)}}]}).encode()

    monkeypatch.setitem(cot.TEACHERS, "openai",
                        lambda row, geom, rng, cfg: cot.openai_teacher(row, geom, rng, cfg, fake))
    cfg = params(root, run_name="oa", teacher="openai", teacher_url="http://fake.invalid/v1", teacher_model="m",
                 coldstart_per_scenario=2, coldstart_k=2)
    m = dataset.build(cfg, common.start_run("03_dataset", cfg))
    st = m["coldstart"]
    assert calls and set(calls) == {"http://fake.invalid/v1/chat/completions"}
    assert st["teacher_errors"] > 0 and st["sampled"] + st["teacher_errors"] == 14 and st["kept"] > 0
    cold = common.read_jsonl(Path(cfg.outputs_root) / "03_dataset" / "oa" / "coldstart.jsonl")
    assert all(r["cot"].startswith("<thinking>") and r["cot"].endswith(f"<answer>{r['answer']}</answer>") for r in cold)


def test_solver_params_missing_a_field_names_the_file(root, tmp_path):
    bad = tmp_path / "o"
    (bad / "01_curation").mkdir(parents=True)
    (bad / "01_curation" / "c").symlink_to(root / "01_curation" / "c")
    common.write_json(bad / "02_solver" / "s" / "params.json",
                      {"params": {k: v for k, v in SOLVER.items() if k != "tau_crd"}})
    cfg = params(bad)
    with pytest.raises(ValueError, match=r"02_solver/s/params.json: field\(s\) \['tau_crd'\] missing"):
        dataset.build(cfg, common.start_run("03_dataset", cfg))


def test_items_cache_key_does_not_depend_on_the_hash_seed(tmp_path):
    """The items cache is keyed by the QA config; a set-ordered field would give every process its own key (and
    a rerun would never resume)."""
    import subprocess
    code = ("import json, sys; sys.path.insert(0, 'tests'); from test_dataset import params; "
            "from mllm4d import common, dataset; "
            "print(json.dumps(common.as_dict(dataset.qa_config(params(__import__('pathlib').Path('.'))))))")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           cwd=Path(__file__).parents[1], env={**__import__("os").environ, "PYTHONHASHSEED": seed}
                           ).stdout for seed in ("1", "2", "3")}
    assert len(outs) == 1 and "ladders" in next(iter(outs))
