"""EstimatePose through a real in-process server and the real client: round trip and status codes for bad input."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from prelabel.client import PrelabelClient, encode_image
from prelabel.service.server import PrelabelServer
from prelabel.settings import Settings
from prelabel.v1 import prelabel_pb2 as pb

MODEL = "arch-yolo11n-pose"  # architecture-only: untrained, but exercises the whole path


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrelabelClient]:
    tmp: Path = tmp_path_factory.mktemp("pose-rpc")
    settings = Settings(port=0, preload=[], data_dir=tmp / "data", allowed_roots=[tmp], drain_s=0.0, grace_s=1.0)
    srv = PrelabelServer(settings)
    srv.start()
    with PrelabelClient(f"127.0.0.1:{srv.port}", timeout_s=120) as c:
        yield c
    srv.stop()


def test_estimate_pose_round_trip(client: PrelabelClient) -> None:
    images = [np.full((96, 128, 3), 127, np.uint8), np.zeros((64, 80, 3), np.uint8)]
    req = pb.EstimatePoseRequest(
        model=MODEL,
        images=[encode_image(img, ".png") for img in images],
        options=pb.DetectOptions(conf=0.001, max_det=3, imgsz=128),
    )
    resp = client.stub.EstimatePose(req, timeout=120)
    assert resp.model == MODEL
    assert [(r.index, r.width, r.height) for r in resp.results] == [(0, 128, 96), (1, 80, 64)]
    for r in resp.results:
        assert len(r.skeletons) <= 3
        for sk in r.skeletons:
            assert len(sk.keypoints) == 17
            assert sk.box.x2 >= sk.box.x1 and sk.box.y2 >= sk.box.y1
            assert all(k.present == (k.confidence >= 0.3) or not k.present for k in sk.keypoints)
    # the Python client turns the reply into domain skeletons
    poses = client.estimate_pose(images, MODEL, conf=0.001, imgsz=128)
    assert len(poses) == 2
    for p in (p for per_image in poses for p in per_image):
        assert p.skeleton.keypoints.shape == (17, 3) and p.xyxy.shape == (4,)


@pytest.mark.parametrize(
    ("model", "images", "code", "text"),
    [
        (MODEL, [b"definitely not an image"], grpc.StatusCode.INVALID_ARGUMENT, "image 0"),
        (MODEL, [], grpc.StatusCode.INVALID_ARGUMENT, "no images"),
        ("no-such-pose-model", [b"x"], grpc.StatusCode.NOT_FOUND, "unknown model"),
        ("arch-yolo11n", [b"x"], grpc.StatusCode.NOT_FOUND, "not a pose model"),
    ],
)
def test_bad_requests_get_clear_status_codes(
    client: PrelabelClient, model: str, images: list[bytes], code: grpc.StatusCode, text: str
) -> None:
    with pytest.raises(grpc.RpcError) as err:
        client.stub.EstimatePose(pb.EstimatePoseRequest(model=model, images=images), timeout=60)
    assert err.value.code() == code
    assert text in (err.value.details() or "")
