"""YuNet detector on real photographs, with the real weights from ../shared/models/yunet (skipped
when absent), checked against OpenCV's own YuNet decoder and for bounded cost."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from faceprint.detection.yunet import YuNetDetector
from faceprint.errors import ConfigurationError, ModelChecksumError, ModelFormatError, ModelNotFoundError
from faceprint.io import load_image
from faceprint.registry import detectors

from ..conftest import DATA, data_path, shared_model_path


@pytest.fixture(scope="module")
def yunet() -> YuNetDetector:
    return YuNetDetector(model=shared_model_path("yunet", "yunet_s_dynamic.onnx"), landmarks="yunet")


class _RecordingSession:
    """Wraps the real ONNX Runtime session and records each input's shape (counts work, not time)."""

    def __init__(self, session: object) -> None:
        self._s = session
        self.shapes: list[tuple[int, ...]] = []

    def run(self, names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        self.shapes.extend(v.shape for v in feeds.values())
        return self._s.run(names, feeds)  # type: ignore[attr-defined, no-any-return]


def test_finds_the_lfw_face_with_landmarks_in_arcface5_order(yunet: YuNetDetector) -> None:
    img = load_image(data_path("lfw_view1", "AJ_Cook", "AJ_Cook_0001.jpg"))
    (d,) = yunet.detect(img)
    assert d.detector == "yunet" and 0.7 <= d.score <= 1.0
    assert 60 < d.bbox.width < 140 and abs(d.bbox.center[0] - 125) < 30  # LFW centres its face
    lm = d.landmarks
    assert lm is not None and lm.scheme == "arcface5"
    p = lm.points
    assert p[0, 0] < p[1, 0] and p[3, 0] < p[4, 0]  # image-left eye / mouth corner first
    assert max(p[0, 1], p[1, 1]) < p[2, 1] < min(p[3, 1], p[4, 1])  # eyes above nose above mouth
    assert np.all((p[:, 0] > d.bbox.x1) & (p[:, 0] < d.bbox.x2) & (p[:, 1] > d.bbox.y1) & (p[:, 1] < d.bbox.y2))


@pytest.mark.parametrize(
    "name,count",
    [
        ("insightface_t1.jpg", 6),
        ("facenet_pytorch_multiface.jpg", 6),
        ("face_recognition_obama_and_biden.jpg", 3),
        ("deepface_couple.jpg", 2),
    ],
)
def test_group_photos(yunet: YuNetDetector, name: str, count: int) -> None:
    dets = yunet.detect(load_image(data_path("group_photos", name)))
    assert len(dets) == count
    assert [d.score for d in dets] == sorted((d.score for d in dets), reverse=True)


@pytest.mark.parametrize("path", sorted(p.name for p in (DATA / "non_faces").glob("*")) or ["missing"])
def test_non_faces_give_no_face(yunet: YuNetDetector, path: str) -> None:
    assert yunet.detect(load_image(data_path("non_faces", path))) == []


def test_same_faces_as_opencv_facedetectoryn() -> None:
    """OpenCV's C++ decoder on OpenCV Zoo's fixed 640 × 640 file is the reference."""
    cv2 = pytest.importorskip("cv2")
    path = shared_model_path("yunet", "yunet_s_640_640.onnx")
    ours = YuNetDetector(model=path, score_threshold=0.7, landmarks="yunet")
    ref = cv2.FaceDetectorYN.create(str(path), "", (640, 640), 0.7, 0.3, 5000)
    for name in ("insightface_t1.jpg", "face_recognition_obama_and_biden.jpg", "facenet_pytorch_multiface.jpg"):
        img = load_image(data_path("group_photos", name))
        h, w = img.shape[:2]
        s = ours.scan_scale(h, w)
        small = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
        ref.setInputSize((small.shape[1], small.shape[0]))
        _, faces = ref.detect(np.ascontiguousarray(small[:, :, ::-1]))
        mine = ours.detect(img)
        assert faces is not None and len(mine) == len(faces)
        for f in faces:  # each OpenCV face has one of ours within a pixel (boxes and landmarks)
            box = np.array([f[0], f[1], f[0] + f[2], f[1] + f[3]]) / s
            d = min(mine, key=lambda m: np.abs(np.array(m.bbox.as_list()) - box).max())
            assert np.abs(np.array(d.bbox.as_list()) - np.clip(box, 0, [w, h, w, h])).max() < 1.5
            assert np.abs(d.landmarks.points - f[4:14].reshape(5, 2) / s).max() < 1.5  # type: ignore[union-attr]
            assert abs(d.score - f[14]) < 0.01  # two inference engines: float rounding differs


def test_cost_is_one_scan_of_bounded_size(yunet: YuNetDetector) -> None:
    rec = _RecordingSession(yunet._session)
    yunet._session = rec  # type: ignore[assignment]
    try:
        big = np.zeros((1500, 2000, 3), np.uint8)  # shrunk to 640 px: faces ≥ 31 px are still seen
        assert yunet.detect(big) == []
        small = load_image(data_path("lfw_view1", "AJ_Cook", "AJ_Cook_0001.jpg"))
        assert len(yunet.detect(small)) == 1
    finally:
        yunet._session = rec._s  # type: ignore[assignment]
    assert len(rec.shapes) == 2
    (n, c, h, w), (_, _, h2, w2) = rec.shapes
    assert (n, c, h, w) == (1, 3, 480, 640)
    assert (h2, w2) == (256, 256)  # 250 px: not resized, padded to a multiple of 32


def test_min_face_below_what_the_scale_sees_scans_larger() -> None:
    det = YuNetDetector(model=shared_model_path("yunet", "yunet_s_dynamic.onnx"), min_face=20)
    assert det.scan_scale(4000, 3000) == pytest.approx(0.5)  # 20 px faces → 10 px
    assert YuNetDetector(model=det.path).scan_scale(4000, 3000) == pytest.approx(0.25)  # default 40 px
    assert det.scan_scale(500, 400) == 1.0
    assert YuNetDetector(model=det.path, min_face=5).scan_scale(250, 250) == 2.0


def test_model_comes_from_the_model_dir_and_is_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = shared_model_path("yunet", "yunet_s_dynamic.onnx")
    monkeypatch.setenv("FACEPRINT_MODEL_DIR", str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="model directory"):
        detectors.create("yunet")
    (tmp_path / "yunet").mkdir()
    shutil.copy(src, tmp_path / "yunet" / "yunet_s_dynamic.onnx")
    det = detectors.create("yunet")
    assert isinstance(det, YuNetDetector) and det.model_version == "daede24002cc"
    bad = tmp_path / "bad" / "yunet"
    bad.mkdir(parents=True)
    data = bytearray(src.read_bytes())
    data[-1] ^= 1
    (bad / "yunet_s_dynamic.onnx").write_bytes(bytes(data))
    monkeypatch.setenv("FACEPRINT_MODEL_DIR", str(tmp_path / "bad"))
    with pytest.raises(ModelChecksumError):
        detectors.create("yunet")


def test_other_graphs_and_settings_are_clear_errors(tmp_path: Path) -> None:
    from ..embedding.test_onnx_arcface import build_model

    with pytest.raises(ModelFormatError, match="YuNet"):
        YuNetDetector(model=build_model(tmp_path / "arc.onnx"))
    path = shared_model_path("yunet", "yunet_s_dynamic.onnx")
    for bad in ({"score_threshold": 2.0}, {"nms_threshold": 0.0}, {"min_face": 1}, {"max_side": 8}, {"max_faces": 0}):
        with pytest.raises(ConfigurationError):
            YuNetDetector(model=path, **bad)  # type: ignore[arg-type]
    with pytest.raises(ModelChecksumError):
        YuNetDetector(model=path, sha256="0" * 64)


def test_dlib5_landmarks_on_yunet_boxes_match_dlibs_own(hog) -> None:
    """landmarks='dlib5' places dlib's predictor on the box HOG would draw: the points land where
    they land from HOG's own box (within a few pixels on a 250 px LFW image)."""
    from faceprint.detection.yunet import hog_box

    det = YuNetDetector(model=shared_model_path("yunet", "yunet_s_dynamic.onnx"))  # landmarks="dlib5"
    for who in (("AJ_Cook", "AJ_Cook_0001.jpg"), ("Aaron_Sorkin", "Aaron_Sorkin_0002.jpg")):
        img = load_image(data_path("lfw_view1", *who))
        (y,), h = det.detect(img), hog.detect(img)[0]
        assert y.landmarks is not None and y.landmarks.scheme == "dlib5" and y.detector == "yunet"
        assert np.abs(y.landmarks.points - h.landmarks.points).max() < 4.0  # type: ignore[union-attr]
        mapped = hog_box(y.bbox)
        assert abs(mapped.center[0] - h.bbox.center[0]) < 8 and abs(mapped.width - h.bbox.width) < 0.2 * h.bbox.width
    assert det.landmarks == "dlib5"
    with pytest.raises(ConfigurationError):
        YuNetDetector(model=det.path, landmarks="dlib68")
