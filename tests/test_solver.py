"""Solver: each paper formula against hand-built geometry (camera-to-world, OpenCV axes), skips, sampling."""
import dataclasses
from collections import Counter

import numpy as np
import pytest

from mllm4d import clips, solver
from mllm4d.solver import SkipReason

CFG = solver.SolverConfig(
    min_frame_gap=4, pairs_per_clip=6, min_visible_frac=0.3, min_points=20, nearest_percentile=2.0,
    min_camera_move=0.3, min_object_move=0.3, min_distance=0.3, tau_crd=0.15, crd_dominance=1.5,
    crd_min_straightness=0.6, tau_ocrd=0.15, tau_lateral=0.15, tau_longitudinal=0.15, band_lo=0.5, band_hi=2.0)

# camera-to-world rotation whose camera +Z (forward) is world +X and camera +X (right) is world −Y, +Y down = −Z
YAW = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def sphere_points(centre, radius, n, rng):
    d = rng.normal(size=(n, 3))
    return centre + radius * d / np.linalg.norm(d, axis=1, keepdims=True)


def make_meta(cam_c, obj_c, R=YAW, radius=0.2, n_pts=64, seed=0, name="clip0000", **over):
    """ClipMeta: camera centres (T,3), object centres (T,M,3) world; points on spheres; everything valid."""
    rng = np.random.default_rng(seed)
    cam_c, obj_c = np.asarray(cam_c, float), np.asarray(obj_c, float)
    T, M = obj_c.shape[:2]
    Rs = np.broadcast_to(R, (T, 3, 3))
    c2w = np.concatenate([Rs, cam_c[:, :, None]], axis=2)
    pts = [sphere_points(obj_c[t, m], radius, n_pts, rng) for t in range(T) for m in range(M)]
    f = dict(name=name, source="gt", timestamps=np.arange(T) / 10.0, camera2world=c2w, K=np.eye(3),
             baseline=0.12, image_size=(240, 320), obj_names=tuple(f"obj{m}" for m in range(M)),
             obj_descriptions=tuple(f"the object number {m}" for m in range(M)),
             obj_categories=("thing",) * M, obj_centre=obj_c.copy(), obj_point_counts=np.full((T, M), n_pts, np.int32),
             obj_points=np.concatenate(pts or [np.zeros((0, 3))]).astype(np.float32), obj_visible_frac=np.ones((T, M), np.float32),
             obj_truncated=np.zeros((T, M), bool), obj_valid=np.ones((T, M), bool))
    f.update(over)
    meta = clips.ClipMeta(**f)
    meta.check()
    return meta


def line(T, start, vel):
    return np.asarray(start, float) + np.arange(T)[:, None] * np.asarray(vel, float)


def test_camera_distance_and_direction_use_camera_to_world():
    T = 32
    meta = make_meta(line(T, [0, 0, 1.5], [0.1, 0, 0]), line(T, [5, 1, 0.5], [0, 0, 0])[:, None])
    rel = solver.solve_pair(meta, 2, 12, "cad", -1, CFG)
    assert rel.value == pytest.approx(1.0) and rel.label is None and rel.object_center == (None, None)
    # camera-frame-0 coordinates: world +X is camera forward (+Z)
    np.testing.assert_allclose(rel.camera_center, [[0, 0, 0.2], [0, 0, 1.2]], atol=1e-9)
    assert solver.solve_pair(meta, 2, 12, "crd", -1, CFG).label == "forward"
    side = make_meta(line(T, [0, 0, 1.5], [0, 0.05, 0]), line(T, [5, 1, 0.5], [0, 0, 0])[:, None])
    assert solver.solve_pair(side, 0, 20, "crd", -1, CFG).label == "left"    # world +Y = camera −X
    up = make_meta(line(T, [0, 0, 1.5], [0, 0, 0.05]), line(T, [5, 1, 0.5], [0, 0, 0])[:, None])
    assert solver.solve_pair(up, 0, 20, "crd", -1, CFG).label == "up"        # world +Z = camera −Y


@pytest.mark.parametrize("vel, i, j, reason", [
    ([0.005, 0, 0], 0, 10, SkipReason.SMALL_MOTION),    # 0.05 m < tau/2
    ([0.02, 0, 0], 0, 10, SkipReason.AMBIGUOUS),        # 0.2 m in [0.075, 0.3]
    ([0.05, 0.045, 0], 0, 20, SkipReason.NOT_DOMINANT),  # forward 1.0 vs left 0.9
])
def test_crd_skips(vel, i, j, reason):
    meta = make_meta(line(32, [0, 0, 1.5], vel), line(32, [5, 1, 0.5], [0, 0, 0])[:, None])
    assert solver.solve_pair(meta, i, j, "crd", -1, CFG) is reason


def test_crd_skips_a_camera_that_goes_and_comes_back():
    x = np.concatenate([np.linspace(0, 3, 16), np.linspace(3, 0.8, 16)])
    meta = make_meta(np.stack([x, 0 * x, 0 * x + 1.5], 1), line(32, [5, 1, 0.5], [0, 0, 0])[:, None])
    assert solver.solve_pair(meta, 0, 31, "crd", -1, CFG) is SkipReason.INCONSISTENT
    assert solver.solve_pair(meta, 0, 15, "crd", -1, CFG).label == "forward"


def test_crd_excludes_a_secondary_direction_that_also_moved():
    meta = make_meta(line(32, [0, 0, 1.5], [0.1, 0.03, 0]), line(32, [5, 1, 0.5], [0, 0, 0])[:, None])
    rel = solver.solve_pair(meta, 0, 20, "crd", -1, CFG)
    assert rel.label == "forward" and rel.exclude == ("left",)


def test_object_distances_and_relative_distance():
    T, cam = 32, line(32, [0, 0, 1.5], [0, 0, 0])
    # object 0 drives straight at the camera along world −X; object 1 stays put
    obj = np.stack([line(T, [6, 0, 1.5], [-0.1, 0, 0]), line(T, [4, 2, 1.5], [0, 0, 0])], axis=1)
    meta = make_meta(cam, obj, radius=0.2, n_pts=200)
    rel = solver.solve_pair(meta, 0, 20, "oad", 0, CFG)
    assert rel.value == pytest.approx(2.0) and rel.camera_center == (None, None)
    np.testing.assert_allclose(rel.object_center, [[0, 0, 6], [0, 0, 4]], atol=1e-9)
    assert solver.solve_pair(meta, 0, 20, "oad", 1, CFG) is SkipReason.SMALL_MOTION
    ocad = solver.solve_pair(meta, 0, 20, "ocad", 0, CFG)
    assert ocad.value == pytest.approx(4.0 - 0.2, abs=0.02)     # nearest surface point, 2nd percentile
    assert solver.solve_pair(meta, 0, 20, "ocrd", 0, CFG).label == "closer"
    assert solver.solve_pair(meta, 0, 20, "ocrd", 1, CFG).label == "not moving"
    assert solver.solve_pair(meta, 20, 22, "ocrd", 0, CFG) is SkipReason.AMBIGUOUS   # Δ = −0.2 m, in band
    assert solver.solve_pair(meta, 0, 20, "ocrdir", 0, CFG, "longitudinal").label == "closer"
    assert solver.solve_pair(meta, 0, 20, "ocrdir", 0, CFG, "lateral").label == "not moving"


def test_relative_direction_is_taken_in_camera_i_axes():
    T = 32
    # the camera turns 90° at frame 10 (now facing world +Y, right = +X); the object moves along world +X
    R2 = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])
    obj = line(T, [0, 5, 1.0], [0.05, 0, 0])[:, None]
    meta = make_meta(line(T, [0, 0, 1.5], [0, 0, 0]), obj)
    c2w = meta.camera2world.copy()
    c2w[10:, :, :3] = R2
    turned = make_meta(line(T, [0, 0, 1.5], [0, 0, 0]), obj, camera2world=c2w)
    assert solver.solve_pair(meta, 12, 30, "ocrdir", 0, CFG, "longitudinal").label == "farther"  # YAW: +X = forward
    assert solver.solve_pair(turned, 12, 30, "ocrdir", 0, CFG, "lateral").label == "right"      # R2: +X = right
    assert solver.solve_pair(turned, 12, 30, "ocrdir", 0, CFG, "longitudinal").label == "not moving"


@pytest.mark.parametrize("field, value, reason", [
    ("obj_valid", False, SkipReason.INVALID), ("obj_truncated", True, SkipReason.INVALID),
    ("obj_visible_frac", 0.1, SkipReason.LOW_VISIBILITY)])
def test_bad_observations_are_skipped(field, value, reason):
    obj = line(32, [6, 0, 1.5], [-0.1, 0, 0])[:, None]
    good = make_meta(line(32, [0, 0, 1.5], [0, 0, 0]), obj)
    arr = getattr(good, field).copy()
    arr[20, 0] = value
    meta = make_meta(line(32, [0, 0, 1.5], [0, 0, 0]), obj, **{field: arr})
    for sub, var in (("oad", ""), ("ocad", ""), ("ocrd", ""), ("ocrdir", "lateral")):
        assert solver.solve_pair(meta, 0, 20, sub, 0, CFG, var) is reason
        assert isinstance(solver.solve_pair(meta, 0, 21, sub, 0, CFG, var), (solver.Relation, SkipReason))
    assert solver.solve_pair(meta, 0, 20, "cad", -1, CFG) == solver.solve_pair(good, 0, 20, "cad", -1, CFG)


def test_few_points_skip_nearest_point_questions_only():
    obj = line(32, [6, 0, 1.5], [-0.1, 0, 0])[:, None]
    meta = make_meta(line(32, [0, 0, 1.5], [0, 0, 0]), obj, n_pts=10)
    assert solver.solve_pair(meta, 0, 20, "ocad", 0, CFG) is SkipReason.FEW_POINTS
    assert solver.solve_pair(meta, 0, 20, "oad", 0, CFG).value == pytest.approx(2.0)


def test_nearest_distance_matches_numpy_percentile_on_ragged_points():
    rng = np.random.default_rng(3)
    T, M = 5, 3
    counts = rng.integers(0, 40, size=(T, M)).astype(np.int32)
    counts[1, 2] = 0
    meta = make_meta(np.zeros((T, 3)), np.zeros((T, M, 3)), obj_point_counts=counts,
                     obj_points=rng.normal(size=(int(counts.sum()), 3)).astype(np.float32))
    t, m = np.repeat(np.arange(T), M), np.tile(np.arange(M), T)
    centre = rng.normal(size=(T * M, 3))
    got = solver.nearest_distance(meta, t, m, centre, 2.0)
    for q in range(T * M):
        p = meta.points(t[q], m[q]).astype(float)
        want = np.percentile(np.linalg.norm(p - centre[q], axis=1), 2.0) if len(p) else np.nan
        np.testing.assert_allclose(got[q], want, rtol=1e-5, equal_nan=True)  # float32 points


def moving_scene(seed=0, T=32, M=4):
    rng = np.random.default_rng(seed)
    cam = line(T, [0, 0, 1.5], rng.uniform(-0.06, 0.06, 3) * [1, 1, 0.2])
    obj = np.stack([line(T, [rng.uniform(3, 7), rng.uniform(-2, 2), 0.5], rng.uniform(-0.06, 0.06, 3) * [1, 1, 0])
                    for _ in range(M)], axis=1)
    return make_meta(cam, obj, seed=seed, name=f"clip{seed:04d}")


def test_solve_clip_is_deterministic_counts_everything_and_matches_solve_pair():
    meta = moving_scene(1)
    rels, counts = solver.solve_clip(meta, CFG, np.random.default_rng(7))
    rels2, counts2 = solver.solve_clip(meta, CFG, np.random.default_rng(7))
    assert rels == rels2 and counts == counts2 and rels
    pairs = {(r.frame_i, r.frame_j) for r in rels}
    assert len(pairs) <= CFG.pairs_per_clip
    per = Counter((r.frame_i, r.frame_j, r.scenario) for r in rels)
    assert max(per.values()) == 1
    for r in rels:
        assert r.frame_j - r.frame_i >= CFG.min_frame_gap
        assert solver.solve_pair(meta, r.frame_i, r.frame_j, r.subtask, r.obj, CFG, r.variant) == r
    # re-solve every (pair, scenario, object) query of the sampled pairs one by one: skips and emissions agree
    redo, emittable = Counter(), set()
    for i, j in pairs:
        for key in solver.SCENARIOS:
            sub, _, var = key.partition("-")
            for m in ([-1] if key in solver.CAMERA_ONLY else range(meta.num_objects)):
                out = solver.solve_pair(meta, i, j, sub, m, CFG, var)
                if isinstance(out, SkipReason):
                    redo[out] += 1
                else:
                    emittable.add((i, j, key))
    assert set(per) == emittable
    if len(pairs) == CFG.pairs_per_clip:  # pairs with no emitted question are invisible in `rels`
        assert redo == Counter({k: v for k, v in counts.items() if k != "emitted"})
    assert counts["emitted"] == len(rels)


def test_config_from_params_and_validation():
    d = {f: getattr(CFG, f) for f in CFG.__dataclass_fields__} | {"run_name": "x"}
    assert solver.config_from(d) == CFG
    with pytest.raises(ValueError):
        solver.SolverConfig(**{**{f: getattr(CFG, f) for f in CFG.__dataclass_fields__}, "band_lo": 1.5})


def test_bad_queries_raise():
    meta = moving_scene(0)
    with pytest.raises(ValueError):
        solver.solve_pair(meta, 5, 5, "cad", -1, CFG)
    with pytest.raises(ValueError):
        solver.solve_pair(meta, 0, 5, "ocrdir", 0, CFG, "diagonal")
    with pytest.raises(ValueError):
        solver.solve_pair(meta, 0, 5, "oad", 9, CFG)


# ---------------------------------------------------------------------------------------------------------
# agreement (mllm4d/agreement.py)
# ---------------------------------------------------------------------------------------------------------
def test_agreement_is_perfect_on_identical_metadata():
    from mllm4d import agreement
    metas = [moving_scene(s) for s in range(3)]
    m = agreement.agreement(metas, metas, CFG, min_gap_rel=0.15, min_gap_abs=0.1)
    assert m["label_agreement_all"] == 1.0 and m["label_agreement_rawgt_categorical"] == 1.0
    assert m["label_agreement_all_pooled"] == 1.0
    assert m["emitted_only_curated_all"] == 0 and m["emitted_only_gt_all"] == 0
    assert m["numeric_relerr_p90_cad"] == 0.0 and m["emitted_both_ocrdir"] > 0
    T = 32
    pairs = len(solver.eligible_pairs(T, CFG.min_frame_gap)[0])
    assert m["n_queries_cad"] == 3 * pairs and m["n_queries_oad"] == 3 * pairs * 4


def test_agreement_counts_flips_and_one_sided_questions():
    from mllm4d import agreement
    T = 32
    cam = line(T, [0, 0, 1.5], [0, 0, 0])
    gt = make_meta(cam, line(T, [5, 0, 0.5], [0, 0.02, 0])[:, None])          # drifts left at 2 cm/frame
    cur = make_meta(cam, line(T, [5, 0, 0.5], [0, -0.02, 0])[:, None])        # curated: drifts right instead
    comp = agreement.compare(cur, gt, CFG)
    m = agreement.summarize(comp, 0.15, 0.1)
    assert m["label_agreement_ocrdir-lateral"] == 0.0 and m["label_agreement_ocrdir-longitudinal"] == 1.0
    bad = agreement.disagreements(comp, "ocrdir-lateral", [gt.name], min_gap_rel=0.15, min_gap_abs=0.1)
    assert len(bad) == m["emitted_both_ocrdir-lateral"] and all(r["curated"] > 0 > r["gt"] for r in bad)
    hidden = make_meta(cam, line(T, [5, 0, 0.5], [0, 0.02, 0])[:, None], obj_valid=np.zeros((T, 1), bool))
    m2 = agreement.agreement(gt, hidden, CFG, min_gap_rel=0.15, min_gap_abs=0.1)
    assert m2["emitted_both_oad"] == 0 and m2["emitted_only_curated_oad"] > 0 and m2["label_agreement_oad"] is None
    with pytest.raises(ValueError, match="does not match"):
        agreement.compare(gt, moving_scene(0), CFG)


def test_solve_clips_batch_matches_single_clip_solving():
    T = 32
    metas = [moving_scene(5, M=2), moving_scene(6, M=5), moving_scene(7, M=3),
             make_meta(line(T, [0, 0, 1.5], [0.05, 0, 0]), np.zeros((T, 0, 3)), name="empty")]
    per_clip, counts = solver.solve_clips(metas, CFG, np.random.default_rng(3))
    assert len(per_clip) == 4 and counts["emitted"] == sum(map(len, per_clip))
    assert all(r.subtask in ("cad", "crd") for r in per_clip[3]) and per_clip[3]
    for meta, rels in zip(metas, per_clip):
        assert rels and {r.clip_id for r in rels} == {meta.name}
        for r in rels:
            assert solver.solve_pair(meta, r.frame_i, r.frame_j, r.subtask, r.obj, CFG, r.variant) == r


def test_agreement_groups_average_slices():
    from mllm4d import agreement
    T = 32
    cam = line(T, [0, 0, 1.5], [0.05, 0, 0])
    gt = make_meta(cam, line(T, [5, 0, 0.5], [0, 0.03, 0])[:, None])
    cur = make_meta(cam, line(T, [5, 0, 0.5], [0, -0.03, 0])[:, None])   # lateral always wrong, the rest right
    m = agreement.agreement(cur, gt, CFG, min_gap_rel=0.15, min_gap_abs=0.1)
    per = [m[f"label_agreement_{k}"] for k in ("ocrdir-lateral", "ocrdir-longitudinal")]
    assert per[0] == 0.0 and m["label_agreement_ocrdir"] == pytest.approx(np.mean(per))
    n = {k: m[f"emitted_both_{k}"] for k in ("ocrdir-lateral", "ocrdir-longitudinal")}
    pooled = n["ocrdir-longitudinal"] * per[1] / (n["ocrdir-lateral"] + n["ocrdir-longitudinal"])
    assert m["label_agreement_ocrdir_pooled"] == pytest.approx(pooled)


def test_short_clip_has_no_frame_pair():
    meta = make_meta(line(3, [0, 0, 1.5], [0.5, 0, 0]), line(3, [5, 0, 0.5], [0, 0, 0])[:, None])
    rels, counts = solver.solve_clip(meta, CFG, np.random.default_rng(0))
    assert rels == [] and counts == Counter({"no_frame_pair": 1})
    from mllm4d import agreement
    m = agreement.agreement(meta, meta, CFG, min_gap_rel=0.2, min_gap_abs=0.1)
    assert m["label_agreement_all"] is None and m["n_queries_all"] == 0
    assert agreement.agreement([], [], CFG, min_gap_rel=0.2, min_gap_abs=0.1)["emitted_both_all"] == 0


def test_oad_depth_uncertainty_skips_motion_along_far_rays_on_curated_metadata_only():
    """σ = δ·z²/(f·B)·|u·ê| per end (f·B = 31.2 px·m): far motion along the ray is skipped, across it is not."""
    K = np.array([[260.0, 0, 160], [0, 260, 120], [0, 0, 1]])
    cfg = dataclasses.replace(CFG, oad_disparity_err_px=0.1, oad_rel_tolerance=0.1)
    cam = line(32, [0, 0, 1.5], [0, 0, 0])
    # YAW: camera +Z = world +X. Far object receding along the ray (6 -> 7 m), far object crossing the view
    # (lateral, 6 m), near object receding (2 -> 3 m); 1 m in frames 0..20 each.
    obj = np.stack([line(32, [6, 0, 1.5], [0.05, 0, 0]), line(32, [6, 0.5, 1.5], [0, -0.05, 0]),
                    line(32, [2, 0, 1.5], [0.05, 0, 0])], 1)
    cur = make_meta(cam, obj, K=K, source="curated")
    want = 0.1 * np.hypot(36.0, 49.0) / 31.2                    # receding: u·ê = 1 at both ends
    st = solver.stack([cur])
    sig = solver.oad_sigma(st, np.array([0]), np.array([20]), obj[20:21] - obj[0:1], 0.1)[0]
    assert sig[0] == pytest.approx(want, rel=1e-9)
    assert sig[1] < 0.1 * sig[0] and sig[2] < 0.1
    assert solver.solve_pair(cur, 0, 20, "oad", 0, cfg) is SkipReason.UNCERTAIN
    assert solver.solve_pair(cur, 0, 20, "oad", 1, cfg).value == pytest.approx(1.0)
    assert solver.solve_pair(cur, 0, 20, "oad", 2, cfg).value == pytest.approx(1.0)
    gt = make_meta(cam, obj, K=K)                                  # exact metadata: no depth noise, no skip
    assert solver.solve_pair(gt, 0, 20, "oad", 0, cfg).value == pytest.approx(1.0)
    assert isinstance(solver.solve_pair(cur, 0, 20, "oad", 0, CFG), solver.Relation)  # 0 px: no check
