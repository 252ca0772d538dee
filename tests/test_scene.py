"""Scene sampling, closed-form trajectories, JSON round trip and render-free ground-truth metadata."""
import dataclasses

import numpy as np
import pytest

from mllm4d import scene, scene_meta

DIGEST_V2 = "2bd34c6e59da85e6"   # test_generator_version_pins_the_scenes


@pytest.fixture(scope="module")
def specs():
    return scene.sample_scenes(np.random.default_rng(0), 40, names=[f"s{i}" for i in range(40)])


def _static_spec(objects, cam_pos=(0.0, 0.0, 1.5), yaw=0.0, pitch=0.0, T=6):
    tex = scene.Texture((0.5, 0.5, 0.5), 1)
    room = scene.Room((10.0, 10.0, 3.0), tex, tex, (tex,) * 4)
    cam = scene.CameraMotion("static", cam_pos, yaw, pitch)
    return scene.SceneSpec("hand", T, 10.0, room, tuple(objects), cam, (0.0, 0.0, 2.7))


def _obj(shape, size, pos, kind="static", name="red box", **mot):
    return scene.ObjectSpec(name, f"the {name}", name.split()[-1], name.split()[0], shape, size,
                            scene.Texture((0.8, 0.1, 0.1), 2), scene.Motion(kind, pos, **mot))


def test_json_round_trip_and_determinism(specs):
    for s in specs[:10]:
        assert scene.from_json(scene.to_json(s)) == s
    a = scene.sample_scene(np.random.default_rng(7))
    b = scene.sample_scene(np.random.default_rng(7))
    c = scene.sample_scene(np.random.default_rng(8))
    assert a == b and a != c
    assert [s.name for s in specs] == [f"s{i}" for i in range(40)]
    assert len({scene.to_json(s) for s in specs}) == 40


def test_sampled_scenes_respect_constraints(specs):
    kinds = set()
    for s in specs:
        T, M = s.num_frames, len(s.objects)
        assert T == 32 and s.fps == 10.0 and 2 <= M <= 6
        assert len({o.name for o in s.objects}) == M and len({o.description for o in s.objects}) == M
        c = scene.object_centres(s)
        half = np.array(s.room.size[:2]) / 2
        sizes = np.array([o.size for o in s.objects])
        foot = np.where([o.shape == "box" for o in s.objects], np.hypot(sizes[:, 0], sizes[:, 1]), sizes[:, 0]) / 2
        assert np.all(np.abs(c[..., :2]) <= half - foot[None, :, None] + 1e-9), s.name       # inside the walls
        assert np.all(c[..., 2] + sizes[None, :, 2] / 2 <= s.room.size[2])                     # below the ceiling
        assert np.all(c[..., 2] >= sizes[None, :, 2] / 2 - 1e-9)                              # not in the floor
        for i in range(M):                                                                    # no interpenetration
            for j in range(i):
                assert np.linalg.norm(c[:, i, :2] - c[:, j, :2], axis=-1).min() >= foot[i] + foot[j]
        moving = [o.motion.kind != "static" for o in s.objects]
        assert any(moving)
        disp = np.linalg.norm(c - c[:1], axis=-1).max(0)
        assert np.all(disp[np.array(moving)] >= 0.3)
        cam = scene.camera2world(s)[:, :, 3]
        assert np.all(np.abs(cam[:, :2]) <= half - 0.4)
        kinds |= {o.motion.kind for o in s.objects} | {s.camera.kind}
    assert kinds >= set(scene.OBJECT_MOTIONS) | set(scene.CAMERA_MOTIONS)


def test_camera2world_is_a_rigid_opencv_pose(specs):
    for s in specs[:10]:
        P = scene.camera2world(s)
        R = P[:, :, :3]
        assert P.shape == (32, 3, 4)
        np.testing.assert_allclose(R @ R.transpose(0, 2, 1), np.broadcast_to(np.eye(3), R.shape), atol=1e-12)
        np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-12)
        if s.camera.jitter_rot == 0:
            assert np.all(R[:, 2, 0] == 0)              # camera +X (right) stays horizontal: no roll
            assert np.all(R[:, 2, 1] < 0)               # camera +Y (down) points down in the Z-up world


@pytest.mark.parametrize("kind,kw,check", [
    ("dolly", dict(speed=0.4), lambda P: np.linalg.norm(P[-1, :, 3] - P[0, :, 3]) == pytest.approx(0.4 * 0.9)),
    ("truck", dict(speed=-0.3), lambda P: (P[-1, :, 3] - P[0, :, 3]) @ P[0, :, 0] == pytest.approx(-0.27)),
    ("pan", dict(yaw_rate=0.2), lambda P: np.arccos(P[0, :, 2] @ P[-1, :, 2]) == pytest.approx(0.18)),
    ("orbit", dict(yaw_rate=0.2, target=(3.0, 0.0)),
     lambda P: np.allclose(np.linalg.norm(P[:, :2, 3] - [3, 0], axis=1), 3.0)
     and np.allclose(np.cross(P[:, :2, 2], [3, 0] - P[:, :2, 3]), 0, atol=1e-9)),
])
def test_camera_motions(kind, kw, check):
    s = _static_spec([], T=10)
    s = dataclasses.replace(s, camera=scene.CameraMotion(kind, (0.0, 0.0, 1.5), 0.0, 0.0, **kw))
    assert check(scene.camera2world(s))


def test_object_motions_closed_form():
    t = np.arange(32) / 10.0
    lin = scene.Motion("linear", (0.0, 0.0, 0.2), 0.0, (0.5, -0.2))
    turn = scene.Motion("turning", (0.0, 0.0, 0.2), 0.0, (0.5, 0.0), yaw_rate=0.6)
    circ = scene.Motion("circling", (1.0, 0.0, 0.2), 0.0, radius=0.5, omega=1.2, phase=0.0)
    bnc = scene.Motion("bouncing", (0.0, 0.0, 0.2), 0.0, (0.3, 0.0), height=0.4, period=1.0)
    q = scene._motion_xyzyaw([lin, turn, circ, bnc], t)
    np.testing.assert_allclose(q[0, :, :2], t[:, None] * [0.5, -0.2])
    speed = np.linalg.norm(np.diff(q[1, :, :2], axis=0), axis=1) / 0.1
    np.testing.assert_allclose(speed, 0.5, rtol=2e-3)                    # chord ~ arc at 0.06 rad per frame
    np.testing.assert_allclose(np.diff(q[1, :, 3]), 0.06)               # the body turns with its heading
    np.testing.assert_allclose(np.linalg.norm(q[2, :, :2] - [0.5, 0.0], axis=1), 0.5)
    assert q[3, :, 2].min() == pytest.approx(0.2) and q[3, :, 2].max() == pytest.approx(0.6, abs=0.01)


def test_gt_meta_fast_geometry():
    # Sphere straight ahead (visible, centred), a box behind the camera (never visible) and a tall box cut by
    # the left image border (truncated).
    objs = [_obj("sphere", (0.6,) * 3, (4.0, 0.0, 1.5), name="blue ball"),
            _obj("box", (0.5, 0.5, 0.5), (-2.0, 0.0, 0.25), name="red box"),
            _obj("box", (0.4, 0.4, 3.0), (3.0, 1.9, 1.5), name="green box")]
    s = _static_spec(objs)
    m = scene.gt_meta_fast(s, size=(240, 320), fx=260.0, points_per_object=96)
    m.check()
    assert m.obj_names == ("blue ball", "red box", "green box")
    # Visible-surface centroid of a sphere seen from 4 m: on the axis, pulled towards the camera by < r.
    c = m.obj_centre[0, 0]
    assert abs(c[1]) < 1e-3 and abs(c[2] - 1.5) < 1e-3 and 3.7 < c[0] < 4.0
    assert m.obj_valid[:, 0].all() and not m.obj_truncated[:, 0].any()
    assert np.all(m.obj_point_counts[:, 1] == 0) and np.isnan(m.obj_centre[:, 1]).all() and not m.obj_valid[:, 1].any()
    assert m.obj_truncated[:, 2].all() and not m.obj_valid[:, 2].any()
    # Only front faces are kept: every kept point of the sphere is nearer to the camera than the centre.
    pts = m.points(0, 0)
    assert len(pts) > 20 and np.all(pts[:, 0] < 4.0 + 1e-6)


def test_gt_meta_fast_sampled(specs):
    valid = []
    for s in specs[:10]:
        m = scene.gt_meta_fast(s)
        m.check()
        assert m.source == "gt" and m.name == s.name and m.num_objects == len(s.objects)
        obs = m.obj_point_counts > 0
        true = scene.object_centres(s)
        rad = np.array([scene.bounding_radius(o) for o in s.objects])
        # The visible centroid lies within the object's bounding sphere.
        assert np.all(np.linalg.norm(m.obj_centre - true, axis=-1)[obs] <= np.broadcast_to(rad, obs.shape)[obs])
        valid.append(m.obj_valid.mean())
        for t in (0, 17, 31):                                # obj_points are ordered (t, m) row-major
            for k in range(m.num_objects):
                pts = m.points(t, k)
                assert len(pts) == m.obj_point_counts[t, k]
                assert np.all(np.linalg.norm(pts - true[t, k], axis=1) <= rad[k] + 1e-4)
    assert np.mean(valid) > 0.6


def test_surface_samples_batch_matches_each_object(specs):
    """One batch over mixed shapes = per-object samples; areas sum to the surface area; unit outward normals."""
    objs = [o for s in specs[:6] for o in s.objects]
    assert {o.shape for o in objs} == set(scene.SHAPES)
    pts, nrm, area = scene_meta.surface_samples_batch(objs, 54)
    for k, o in enumerate(objs):
        p1, n1, a1 = scene.surface_samples(o, 54)
        np.testing.assert_array_equal(pts[k], p1), np.testing.assert_array_equal(nrm[k], n1)
        np.testing.assert_array_equal(area[k], a1)
        sx, sy, sz = o.size
        full = {"box": 2 * (sx * sy + sy * sz + sx * sz), "sphere": np.pi * sx * sx,
                "cylinder": np.pi * sx * sz + np.pi * sx * sx / 2}[o.shape]
        assert area[k].sum() == pytest.approx(full) and np.allclose(np.linalg.norm(nrm[k], axis=1), 1.0)
        assert np.all((pts[k] * nrm[k]).sum(1) > 0)                            # convex shapes: normals point out


def test_gt_meta_batch_equals_single(specs):
    batch = scene.gt_meta_batch(specs[:7], size=(120, 160), fx=130.0, points_per_object=30)
    for s, b in zip(specs[:7], batch):
        one = scene.gt_meta_fast(s, size=(120, 160), fx=130.0, points_per_object=30)
        for f in ("obj_centre", "obj_points", "obj_point_counts", "obj_truncated", "obj_valid", "camera2world"):
            np.testing.assert_array_equal(getattr(b, f), getattr(one, f))
    with pytest.raises(ValueError, match="num_frames"):
        scene.gt_meta_batch([specs[0], scene.sample_scene(np.random.default_rng(1), num_frames=8)])


def test_gt_meta_fast_occlusion():
    """A big box hides the left half of a ball behind it: only occlusion=True sees that."""
    objs = [_obj("sphere", (0.6,) * 3, (5.0, 0.0, 1.5), name="blue ball"),
            _obj("box", (0.2, 0.6, 3.0), (3.0, 0.3, 1.5), name="red box")]
    s = _static_spec(objs)
    plain, occ = scene.gt_meta_fast(s), scene.gt_meta_fast(s, occlusion=True)
    np.testing.assert_array_equal(plain.obj_visible_frac, 1.0)
    assert np.all((occ.obj_visible_frac[:, 0] > 0.3) & (occ.obj_visible_frac[:, 0] < 0.7))
    np.testing.assert_allclose(occ.obj_visible_frac[:, 1], 1.0)            # nothing in front of the box
    assert np.all(occ.obj_point_counts[:, 0] < plain.obj_point_counts[:, 0])
    assert np.all(occ.obj_centre[:, 0, 1] < -0.05)                          # the visible half is at -y (right)
    assert np.all(occ.points(0, 0)[:, 1] < 0.02)


def test_generator_version_pins_the_scenes():
    """The same seeds must sample the same scenes under one ``GENERATOR_VERSION``: curation resumes clips by it.
    A change to the sampler changes this digest: bump ``scene.GENERATOR_VERSION`` and record the new digest."""
    import hashlib
    specs = [scene.to_json(scene.sample_scene(np.random.default_rng([0, i]), num_frames=8)) for i in range(4)]
    digest = hashlib.sha256("\n".join(specs).encode()).hexdigest()[:16]
    assert {2: DIGEST_V2}[scene.GENERATOR_VERSION] == digest
