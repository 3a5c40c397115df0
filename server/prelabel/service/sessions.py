"""What the Interpolate RPC keeps of a video between calls, for clients that call it after every keyframe.

An annotation tool asks for interpolation each time its user adds or moves a keyframe, on the same video, many times a
minute. Per video file (path, size and modification time: a replaced file is another video) a session keeps:

- the reader, with what it learnt of the file (frame count, fingerprints for exact seeks);
- the detections already run, per detector set and options: a later call runs the detectors only on frames no
  earlier call covered;
- the method objects per method name and track label, with their caches (guided's background model and propagation
  passes, auto's leave-one-out checks). Their decoded frames are dropped after each call (memory); what they
  computed from them stays;
- each track's answer, by everything it was computed from (the track as the request sent it, the method, the
  detections and the number of suggestions): a call repeats no work for a track that did not change since (up to
  ``RESULT_CACHE_BYTES`` of answers, least recently used dropped first).

A session serves one call at a time (its lock); calls on different videos run in parallel. The least recently used
session is closed when more than ``max_sessions`` are open.

Caches never change an answer: backgrounds are kept per window of frames (a function of the run alone), the
passes and the checks are keyed by what they were computed from.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from prelabel.detect.base import DetectOptions, Detector
from prelabel.interpolate.base import InterpolationMethod
from prelabel.interpolate.frames import VideoFileFrames
from prelabel.interpolate.registry import default_registry
from prelabel.interpolate.support import detect_frames, for_label
from prelabel.types import Detections

logger = logging.getLogger(__name__)

FileKey = tuple[str, int, int]
DetKey = tuple[tuple[str, ...], str]
ResultKey = tuple[str, DetKey, int, bytes]  # method, detectors, suggestions, the track's message (deterministic bytes)
RESULT_CACHE_BYTES = 64 << 20  # answers kept per session


def file_key(path: Path) -> FileKey:
    """(path, size, modification time in ns) of a video file: the identity of a session."""
    st = path.stat()
    return str(path), st.st_size, st.st_mtime_ns


@dataclass
class InterpolationSession:
    """One video's reader, detections and method objects (see the module docstring)."""

    reader: VideoFileFrames
    lock: threading.Lock = field(default_factory=threading.Lock)
    _detections: dict[DetKey, Mapping[int, Detections]] = field(default_factory=dict)
    _views: dict[tuple[DetKey, str], tuple[Mapping[int, Detections], Mapping[int, Detections]]] = field(
        default_factory=dict
    )
    _methods: dict[tuple[str, str], InterpolationMethod] = field(default_factory=dict)
    # Answers: the detections they were computed with (compared by identity: a call that detects more frames makes
    # a new mapping) and the serialized answer.
    _results: OrderedDict[ResultKey, tuple[object, bytes]] = field(default_factory=OrderedDict)
    _result_bytes: int = 0
    detected_frames: int = 0

    def detections(
        self,
        key: DetKey,
        detectors: Sequence[Detector],
        frames: Iterable[int],
        options: DetectOptions | None,
        run: Callable[..., dict[int, Detections]] = detect_frames,
    ) -> Mapping[int, Detections]:
        """Detections of ``detectors`` on ``frames`` (and on any frame an earlier call covered); runs them only on
        frames not yet detected. A call that adds frames returns a new mapping (caches keyed by the old one then
        know it changed)."""
        have = self._detections.get(key, {})
        missing = sorted(set(int(f) for f in frames) - set(have))
        if missing:
            new = run(detectors, self.reader, missing, options)
            have = {**have, **new}
            self._detections[key] = have
            self.detected_frames += len(missing)
            # Answers computed with the old detections can no longer be served (they are compared by identity):
            # drop them, and the detections they hold, now.
            for rk in [rk for rk in self._results if rk[1] == key]:
                self._forget(rk)
        return have

    def for_label(self, key: DetKey, detections: Mapping[int, Detections], label: str) -> Mapping[int, Detections]:
        """:func:`prelabel.interpolate.support.for_label`, the same mapping object while ``detections`` is."""
        hit = self._views.get((key, label))
        if hit is not None and hit[0] is detections:
            return hit[1]
        view = for_label(detections, label)
        self._views[(key, label)] = (detections, view)
        return view

    def result(self, key: ResultKey, detections: object) -> bytes | None:
        """A track's answer from an earlier call with the same ``key`` and the same ``detections`` object, or None."""
        hit = self._results.get(key)
        if hit is None or hit[0] is not detections:
            return None
        self._results.move_to_end(key)
        return hit[1]

    def store_result(self, key: ResultKey, detections: object, answer: bytes) -> None:
        """Keep a track's answer (see :meth:`result`); the least recently used go beyond ``RESULT_CACHE_BYTES``."""
        self._forget(key)
        size = len(answer) + len(key[3])
        if size > RESULT_CACHE_BYTES // 4:
            return  # one huge answer would push out every other
        self._results[key] = (detections, answer)
        self._result_bytes += size
        while self._result_bytes > RESULT_CACHE_BYTES:
            self._forget(next(iter(self._results)))

    def _forget(self, key: ResultKey) -> None:
        old = self._results.pop(key, None)
        if old is not None:
            self._result_bytes -= len(old[1]) + len(key[3])

    def method(self, name: str, label: str) -> InterpolationMethod:
        """The session's method object for ``name`` and the track label ``label`` (built on first use)."""
        m = self._methods.get((name, label))
        if m is None:
            m = default_registry().create(name)
            self._methods[(name, label)] = m
        return m

    def release_frames(self) -> None:
        """Drop decoded frames the reader and the method objects keep (their results stay)."""
        self.reader.release_frames()
        for m in self._methods.values():
            release = getattr(m, "release_frames", None)
            if release is not None:
                release()

    def close(self) -> None:
        """Release the reader and the decoded frames."""
        self.release_frames()
        self.reader.close()


class InterpolationSessions:
    """Sessions per video file, least recently used closed first beyond ``max_sessions``."""

    def __init__(self, max_sessions: int = 8) -> None:
        self.max_sessions = max_sessions
        self._sessions: OrderedDict[FileKey, InterpolationSession] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: Path) -> InterpolationSession:
        """The session of the video file at ``path`` (a new one for a new or changed file)."""
        key = file_key(path)
        closed: list[InterpolationSession] = []
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                session = InterpolationSession(VideoFileFrames(path))
                self._sessions[key] = session
            self._sessions.move_to_end(key)
            while len(self._sessions) > self.max_sessions:
                closed.append(self._sessions.popitem(last=False)[1])
        for old in closed:
            with old.lock:  # a call still using it finishes first
                old.close()
        return session

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)
