"""The banded keyframe smoother equals a per-frame Kalman filter + RTS smoother (filterpy) run frame by frame."""

from __future__ import annotations

import numpy as np
import pytest
from filterpy.kalman import KalmanFilter

from prelabel.errors import InvalidInputError
from prelabel.interpolate import interpolate_track, kalman
from prelabel.interpolate.geometric import KalmanMethod
from prelabel.interpolate.kalman import (
    Q_GRID_DECADES,
    SmootherParams,
    likely_keyframe_states,
    process_noise,
    rest_velocities,
    rts_smooth,
    transition,
)
from prelabel.types import Keyframe


def _reference(key_frames: np.ndarray, values: np.ndarray, params: SmootherParams) -> np.ndarray:
    """filterpy, one coordinate at a time, a step per frame, an update only at keyframes."""
    order = 2 if params.model == "cv" else 3
    t0, t1 = int(key_frames[0]), int(key_frames[-1])
    f = transition(np.array([1.0]), order)[0]
    q = process_noise(np.array([1.0]), order, params.q)[0]
    out = np.zeros((t1 - t0 + 1, values.shape[1]))
    for d in range(values.shape[1]):
        kf = KalmanFilter(dim_x=order, dim_z=1)
        kf.F, kf.Q = f, q
        kf.H = np.eye(1, order)
        kf.R = np.array([[params.r]])
        kf.x = np.zeros(order)
        kf.x[0] = values[0, d]
        kf.P = np.diag([params.r] + [params.prior_var] * (order - 1))
        zs = [None] * (t1 - t0 + 1)
        for k, v in zip(key_frames[1:], values[1:, d], strict=True):
            zs[int(k) - t0] = np.array([v])
        xs, ps = [kf.x.copy()], [kf.P.copy()]
        for z in zs[1:]:
            kf.predict()
            kf.update(z)
            xs.append(kf.x.copy())
            ps.append(kf.P.copy())
        sm, _, _, _ = kf.rts_smoother(np.array(xs), np.array(ps), [f] * len(xs), [q] * len(xs))
        out[:, d] = sm[:, 0]
    return out


@pytest.mark.parametrize("model", ["cv", "ca"])
def test_banded_smoother_matches_per_frame_rts(model: str) -> None:
    rng = np.random.default_rng(3)
    key_frames = np.array([0, 6, 13, 30, 34, 50], dtype=np.int64)
    values = rng.uniform(0, 300, (len(key_frames), 3))
    params = SmootherParams(model, q=4.0 if model == "cv" else 0.05, r=1e-3, prior_var=1e6)
    ours, std = rts_smooth(key_frames, values, params)
    ref = _reference(key_frames, values, params)
    np.testing.assert_allclose(ours, ref, atol=0.05)
    assert std[key_frames - key_frames[0]].max() == 0.0 and (std[1:6] > 0).all()


def test_irregular_gap_lengths_take_the_general_path() -> None:
    # More than 64 distinct gap lengths: the per-frame gather path, same answer as filterpy.
    key_frames = np.concatenate([[0], np.cumsum(np.arange(2, 72))]).astype(np.int64)
    values = (np.sin(key_frames / 40.0) * 100)[:, None]
    params = SmootherParams("cv", q=1.0, r=1e-3, prior_var=1e6)
    ours, _ = rts_smooth(key_frames, values, params)
    np.testing.assert_allclose(ours, _reference(key_frames, values, params), atol=0.05)


@pytest.mark.parametrize("model", ["cv", "ca"])
@pytest.mark.parametrize("gaps", [[20, 20, 20], [1000, 1000, 1000], [5000, 5000, 5000], [5, 5000, 5000], [20, 10000]])
def test_constant_velocity_stays_straight_across_long_gaps(model: str, gaps: list[int]) -> None:
    """Constant velocity is a special case of both models: keyframes thousands of frames apart (a person walking
    slowly, keyframed every few minutes) must give the straight path. The velocity prior used to outweigh what the
    keyframes said of the velocity: with ``ca`` the path bent by 3 px at gaps of 1000 frames, 400 px at 5000; after a
    first fix, still by 0.95 px where a short first gap came before gaps of 5000 (a reviewer's case)."""
    key_frames = np.concatenate([[0], np.cumsum(gaps)]).astype(np.int64)
    values = np.c_[100.0 + 0.5 * key_frames, 300.0 - 0.2 * key_frames]
    scale = 60.0
    params = SmootherParams(model, q=1e-3 * scale * scale * (1.0 if model == "cv" else 1e-2), prior_var=1e4 * scale**2)
    ours, _ = rts_smooth(key_frames, values, params)
    t = np.arange(key_frames[-1] + 1, dtype=np.float64)
    np.testing.assert_allclose(ours, np.c_[100.0 + 0.5 * t, 300.0 - 0.2 * t], atol=1e-2)


def _keys(frames: list[int], xs: list[float], w: float = 50.0, h: float = 100.0) -> list[Keyframe]:
    return [Keyframe(f, [x, 100.0, x + w, 100.0 + h]) for f, x in zip(frames, xs, strict=True)]


@pytest.mark.parametrize(
    ("frames", "xs", "size"),
    [
        ([0, 1, 59], [100.0, 102.0, 100.0], 50.0),
        ([0, 1, 30, 59], [100.0, 102.0, 104.0, 100.0], 50.0),
        ([0, 1, 59], [100.0, 102.0, 100.0], 10.0),
    ],
)
def test_a_nudge_on_the_next_frame_is_not_taken_for_speed(frames: list[int], xs: list[float], size: float) -> None:
    """An annotator corrects the box by 2 px on the frame after a keyframe, then keys the object back where it was.
    The natural cubic spline through exact keyframes read the 2 px step as 2 px a frame and carried the box's left
    edge to x = 123.5 (112.3 in the second case), where every keyframe holds it between 100 and 104. A 10-px box is
    placed no closer than a large one (the noise's pixel floor)."""
    res = interpolate_track(_keys(frames, xs, w=size, h=2 * size), "kalman")
    left = res.xyxy[:, 0]
    assert left.min() >= min(xs) - 0.5 and left.max() <= max(xs) + 6.0, (left.min(), left.max())
    np.testing.assert_allclose(res.xyxy[np.array(frames) - frames[0], 0], xs)  # still through every keyframe


def test_a_small_box_nudged_on_two_frames_keeps_its_size() -> None:
    """A still 20x40 box keyed at 0 and 40, corrected on frames 41 and 42 by 3 px, keyed again at 100: with the
    noise at 1% of the diagonal alone (0.45 px) the widths' steps read as speed, and at frame 60 the box was 96 px
    tall and 0 px wide (a user's case)."""
    boxes = {0: [100, 100, 120, 140], 40: [100, 100, 120, 140], 41: [100, 100, 123, 137], 42: [100, 100, 119, 141]}
    boxes[100] = [100, 100, 120, 140]
    res = interpolate_track([Keyframe(f, b) for f, b in boxes.items()], "kalman")
    assert np.abs(res.xyxy - np.array([100.0, 100.0, 120.0, 140.0])).max() <= 3.5


@pytest.mark.parametrize("method", ["kalman", "auto"])
def test_a_keyframe_after_a_stop_does_not_move_the_box_while_it_stands(method: str) -> None:
    """A person keyed at the same place at frames 0, 20, 40 and 60 moves off fast after 60; the annotator keys 66. The
    velocity the smoother carried across frame 60 made the box drift toward the move from frame 40 on (15.6 px with
    kalman on a generated clip, 28 px with guided, 20 frames before the keyframe that showed the move); a gap that
    the keyframes show at rest now holds it."""
    still = [300.0, 120.0, 360.0, 290.0]
    kfs = [Keyframe(f, still) for f in (0, 20, 40, 60)] + [Keyframe(66, [330.0, 80.0, 410.0, 290.0])]
    kfs.append(Keyframe(80, [380.0, 70.0, 430.0, 290.0]))
    res = interpolate_track(kfs, method)
    assert np.abs(res.xyxy[:61] - np.array(still)).max() < 0.5
    # Without the limit it drifts: the limit is what holds it.
    loose = interpolate_track(kfs, method_object=KalmanMethod(rest_rel=None)) if method == "kalman" else None
    if loose is not None:
        assert np.abs(loose.xyxy[40:60] - np.array(still)).max() > 5.0


def test_rest_velocities_limit_only_gaps_at_rest() -> None:
    kf = np.array([0, 10, 20, 30])
    z = np.array([[0.0, 0.0], [1.0, 50.0], [1.5, 100.0], [40.0, 150.0]])  # x at rest over 0-20, then moves; y moves
    v = np.array([[0.5, 5.0], [2.0, 5.0], [-1.0, 5.0], [4.0, 5.0]])
    out = rest_velocities(kf, z, v, rest_speed=0.2)
    # No gap is at rest in every coordinate (y moves 50 px a gap): nothing changes.
    np.testing.assert_array_equal(out, v)
    z[:, 1] = [0.0, 0.5, 1.0, 60.0]
    out = rest_velocities(kf, z, v, rest_speed=0.2)
    # Gaps 0-10 and 10-20 are at rest: velocities at frames 0, 10, 20 clipped into [0, 3 x slope] of each gap.
    np.testing.assert_allclose(out[:3, 0], [0.3, 0.15, 0.0])
    np.testing.assert_allclose(out[:3, 1], [0.15, 0.15, 0.15])
    np.testing.assert_array_equal(out[3], v[3])  # after the moving gap: as it was


def test_keyframes_a_frame_apart_are_not_taken_for_rest() -> None:
    """A walker at 1.5 px a frame, nudged 2 px on the frame after a keyframe: the one-frame gap moves less than the
    box's rest distance over a long gap, but that says nothing of rest (a reviewer measured 8 px of error beside it
    when distance decided)."""
    x = {f: 100 + 1.5 * f + (2.0 if f == 31 else 0.0) for f in (0, 30, 31, 60, 90)}
    kfs = [Keyframe(f, [x0, 100, x0 + 60, 270]) for f, x0 in x.items()]
    got = interpolate_track(kfs, "kalman").xyxy
    loose = interpolate_track(kfs, method_object=KalmanMethod(rest_rel=None)).xyxy
    np.testing.assert_allclose(got, loose)


def test_consecutive_keyframes_pin_a_sharp_turn() -> None:
    """A walker at 4 px a frame turns back at frame 30; the annotator keys 29, 30 and 31 to pin the turn. The box's
    steady size must not damp the turn the x keyframes show (each coordinate weighs its own process noise)."""
    t = np.arange(61)
    x = np.where(t <= 30, 4.0 * t, 240.0 - 4.0 * t)
    kfs = [Keyframe(int(f), [100 + x[f], 100, 130 + x[f], 160]) for f in (0, 29, 30, 31, 60)]
    res = interpolate_track(kfs, "kalman")
    assert np.abs(res.xyxy[:, 0] - 100 - x).max() < 6.0


def test_fast_turning_motion_keeps_its_speed_at_short_gaps() -> None:
    """Where the keyframes bend fast (a circle of 80 px radius, a turn every 60 frames, keyed every 3 to 7 frames),
    the likeliest process noise is large and the keyframes' velocities are what they say, as without jitter."""
    rng = np.random.default_rng(0)
    frames = np.concatenate([[0], np.cumsum(rng.integers(3, 8, 30))])
    t = np.arange(frames[-1] + 1)
    cx, cy = 300 + 80 * np.cos(2 * np.pi * t / 60), 300 + 80 * np.sin(2 * np.pi * t / 60)
    kfs = [Keyframe(int(f), [cx[f] - 20, cy[f] - 20, cx[f] + 20, cy[f] + 20]) for f in frames]
    err = {}
    for jitter in (None, 0.01):
        reg = KalmanMethod(jitter_rel=jitter)
        out = interpolate_track(kfs, method_object=reg).xyxy
        err[jitter] = float(np.hypot((out[:, 0] + out[:, 2]) / 2 - cx, (out[:, 1] + out[:, 3]) / 2 - cy).mean())
    assert err[0.01] <= 1.1 * err[None] and err[None] < 2.0, err


def test_likely_states_weigh_little_process_noise_for_a_still_object_and_much_for_a_bouncing_one() -> None:
    frames = np.arange(0, 100, 10, dtype=np.int64)
    params = SmootherParams("cv", q=10.0, r=1e-4, prior_var=1e8)
    rng = np.random.default_rng(1)
    still = (100.0 + rng.normal(0, 1.0, len(frames)))[:, None]
    bounce = (100.0 + 60.0 * np.abs(np.sin(frames / 9.0)))[:, None]
    states_still, w_still = likely_keyframe_states(frames, still, params, jitter_var=1.0)
    states_bounce, w_bounce = likely_keyframe_states(frames, bounce, params, jitter_var=1.0)
    np.testing.assert_allclose(w_still.sum(axis=0), 1.0)
    mean_decade = {
        name: float((Q_GRID_DECADES[:, None] * w).sum()) for name, w in (("still", w_still), ("bounce", w_bounce))
    }
    assert mean_decade["still"] < mean_decade["bounce"] - 3, mean_decade
    np.testing.assert_array_equal(states_still[:, 0], still)  # the positions are the keyframes'
    np.testing.assert_array_equal(states_bounce[:, 0], bounce)
    assert np.abs(states_still[:, 1]).max() < 0.1  # 1 px of jitter every 10 frames is no motion


def test_kalman_rest_must_be_non_negative() -> None:
    with pytest.raises(InvalidInputError, match="rest_rel"):
        KalmanMethod(rest_rel=-0.1)


def test_kalman_jitter_must_be_positive() -> None:
    for bad in (0.0, -0.01, float("nan")):
        with pytest.raises(InvalidInputError, match="jitter_rel"):
            KalmanMethod(jitter_rel=bad)
    for bad in (-1.0, float("inf")):
        with pytest.raises(InvalidInputError, match="jitter_min_px"):
            KalmanMethod(jitter_min_px=bad)


@pytest.mark.parametrize("model", ["kalman", "kalman-ca"])
def test_tiny_boxes_keyed_a_frame_apart_still_interpolate(model: str) -> None:
    """A 1-px box keyed at 0, 1 and 3: at the smallest process noise weighed, the normal equations are too
    ill-conditioned to factor; that process noise gets no weight instead of raising (kalman-ca raised LinAlgError)."""
    kfs = [Keyframe(f, [100.0 + f, 100.0, 101.0 + f, 100.0]) for f in (0, 1, 3)]
    res = interpolate_track(kfs, model)
    assert np.isfinite(res.xyxy).all()
    np.testing.assert_allclose(res.xyxy[[0, 1, 3]], [k.xyxy for k in kfs])


def test_likely_states_fall_back_to_exact_keyframes_where_nothing_factors(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise np.linalg.LinAlgError("not positive definite")

    monkeypatch.setattr(kalman, "cholesky_banded", refuse)
    frames = np.array([0, 1, 5], dtype=np.int64)
    values = np.array([[0.0], [1.0], [5.0]])
    params = SmootherParams("cv", q=1.0, r=1e-4, prior_var=1e6)
    states, weights = likely_keyframe_states(frames, values, params, jitter_var=1.0)
    np.testing.assert_allclose(states, kalman.keyframe_states(frames, values, params))
    assert not weights.any()


def test_likely_states_leave_unfactored_only_process_noises_the_floor_would_drop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The bound spares factorisations, and the states and weights are those of weighing every process noise."""
    real = kalman.cholesky_banded
    factored: list[int] = []

    def counting(*args: object, **kwargs: object) -> object:
        factored.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(kalman, "cholesky_banded", counting)
    monkeypatch.setattr(kalman, "_BOUND_MIN_KEYS", 0)  # the bound on short tracks too (they weigh every noise)
    rng = np.random.default_rng(3)
    walk_frames = np.arange(0, 40_000, 20, dtype=np.int64)
    walk = np.cumsum(rng.normal(0, 5, (len(walk_frames), 2)), axis=0)
    walk = np.hstack([walk, np.full((len(walk_frames), 2), 60.0)])  # centre wanders, size holds: two optima
    short = np.arange(0, 50, 10, dtype=np.int64)
    cases = [
        (walk_frames, walk, "cv"),
        (walk_frames, walk, "ca"),
        (short, 100.0 + rng.normal(0, 1.0, (5, 4)), "cv"),
        (short, np.outer(short, [3.0, -1.0, 0.2, 0.0]) + rng.normal(0, 0.5, (5, 4)), "ca"),
        (short, (100.0 + 60.0 * np.abs(np.sin(short / 9.0)))[:, None], "cv"),
    ]
    spared = []
    for frames, values, model in cases:
        params = SmootherParams(model, q=1.0 if model == "cv" else 0.01, r=1e-4, prior_var=1e8)
        factored.clear()
        states, weights = likely_keyframe_states(frames, values, params, jitter_var=1.0)
        pruned = len(factored)
        with monkeypatch.context() as m:
            m.setattr(kalman, "_BOUND_MARGIN", np.inf)  # no bound: every process noise factored
            factored.clear()
            all_states, all_weights = likely_keyframe_states(frames, values, params, jitter_var=1.0)
            assert len(factored) == len(Q_GRID_DECADES)
        np.testing.assert_array_equal(weights > 0, all_weights > 0)
        np.testing.assert_allclose(weights, all_weights, rtol=0, atol=1e-12)
        np.testing.assert_allclose(states, all_states, rtol=1e-12, atol=1e-9)
        spared.append(len(Q_GRID_DECADES) - pruned)
    assert spared[0] >= 4 and spared[1] >= 4, spared  # a long track: a narrow band of process noises counts


def test_kalman_solves_on_one_blas_thread_however_many_the_process_has(monkeypatch: pytest.MonkeyPatch) -> None:
    """The banded solves gain nothing from more BLAS threads; the method holds them to one for its solves only."""
    from threadpoolctl import ThreadpoolController

    from prelabel.interpolate import geometric

    seen: list[int] = []
    real = geometric.rts_smooth

    def watching(*args: object, **kwargs: object) -> tuple[np.ndarray, np.ndarray]:
        seen.extend(p["num_threads"] for p in ThreadpoolController().info() if p["user_api"] == "blas")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(geometric, "rts_smooth", watching)
    kfs = [Keyframe(i * 10, np.array([10.0 + 3 * i, 20.0, 60.0 + 3 * i, 120.0])) for i in range(6)]
    controller = ThreadpoolController()
    if not controller.select(user_api="blas").lib_controllers:
        pytest.skip("no BLAS library found to limit")
    with controller.limit(limits=2, user_api="blas"):
        interpolate_track(kfs, "kalman")
        after = [p["num_threads"] for p in controller.info() if p["user_api"] == "blas"]
    assert seen and set(seen) == {1}, seen
    assert set(after) == {2}, after  # given back once the solves are done


def test_a_process_noise_whose_misfit_comes_out_below_zero_gets_no_weight(monkeypatch: pytest.MonkeyPatch) -> None:
    """The misfit is a sum of squares; where the difference that computes it loses it to ill-conditioning it came
    out far below zero (-5e4 on tiny boxes keyed a frame apart next to gaps of thousands), and that process noise
    took all the weight. A noise computed so gets none."""
    frames = np.arange(0, 100, 10, dtype=np.int64)
    values = (100.0 + np.random.default_rng(2).normal(0, 1.0, len(frames)))[:, None]
    params = SmootherParams("cv", q=1.0, r=1e-4, prior_var=1e8)
    _, honest = likely_keyframe_states(frames, values, params, jitter_var=1.0)
    assert honest[0, 0] > 0.01  # a still object: the smallest noise counts
    real = kalman.dtbtrs
    calls: list[int] = []

    def broken_first(*args: object, **kwargs: object) -> tuple[np.ndarray, int]:
        y, info = real(*args, **kwargs)
        calls.append(1)
        return (np.asarray(y) + 10.0 if len(calls) == 1 else y), info  # the first noise weighed: |y|^2 past z^T z

    monkeypatch.setattr(kalman, "dtbtrs", broken_first)
    states, weights = likely_keyframe_states(frames, values, params, jitter_var=1.0)
    assert weights[0, 0] == 0.0 and weights.sum() == pytest.approx(1.0)
    assert np.isfinite(states).all()


def test_overlapping_kalman_calls_give_the_process_its_blas_threads_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two interpolations in threads that overlap (the server's worker pool): the first to leave must not give back
    the process's threads while the other still solves, and the last to leave gives back what the process had, not
    the one thread the first had set (which left BLAS at one thread for the rest of the process)."""
    import threading

    from threadpoolctl import ThreadpoolController

    from prelabel.interpolate import geometric

    controller = ThreadpoolController()

    def blas_threads() -> list[int]:
        return [p["num_threads"] for p in controller.info() if p["user_api"] == "blas"]

    before = blas_threads()
    if not before or max(before) < 2:
        pytest.skip("no BLAS library with more than one thread to limit")
    real = geometric.rts_smooth
    inside = [threading.Event(), threading.Event()]
    leave = [threading.Event(), threading.Event()]
    seen: dict[int, list[int]] = {0: [], 1: []}

    def held(*args: object, **kwargs: object) -> tuple[np.ndarray, np.ndarray]:
        who = int(threading.current_thread().name[-1])
        inside[who].set()
        assert leave[who].wait(10)
        seen[who].extend(blas_threads())
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(geometric, "rts_smooth", held)
    kfs = [Keyframe(i * 10, np.array([10.0 + 3 * i, 20.0, 60.0 + 3 * i, 120.0])) for i in range(6)]
    errors: list[BaseException] = []

    def work() -> None:
        try:
            interpolate_track(kfs, "kalman")
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, name=f"interp-{i}") for i in range(2)]
    threads[0].start()
    assert inside[0].wait(10)
    threads[1].start()
    assert inside[1].wait(10)
    leave[0].set()  # the first in leaves first, while the second still solves
    threads[0].join(10)
    leave[1].set()
    threads[1].join(10)
    assert not errors, errors
    assert set(seen[0]) == {1} and set(seen[1]) == {1}, seen  # the second solved on one thread after the first left
    assert blas_threads() == before  # the process's threads are back
